"""Score records fast: the fitted pipeline's preprocessing replayed as a few numpy operations.

`Pipeline.predict_proba` on one row costs milliseconds, almost all of it per-call overhead (a
DataFrame, the ColumnTransformer's checks and concatenations), not arithmetic. `compile_pipeline`
reads the fitted statistics out of the pipeline (imputer fill values, scaler means and scales,
one-hot categories) and replays them on plain arrays; a binary linear estimator becomes one dot
product. Anything it does not recognise makes it return None, and the service uses the sklearn
pipeline itself. `Predictor` checks at start-up that both paths agree within 1e-6 on records built
from the contract, and falls back to sklearn when they do not.

The decision threshold travels inside the model (a FixedThresholdClassifier around the pipeline):
`compile_pipeline` unwraps it, `Predictor.threshold` reads it, and the start-up check refuses a
model whose own `predict` is not `score >= threshold`, the rule every consumer labels by.

`MicroBatcher` gathers single-record requests that arrive together into one scoring call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from core.bundle import POSITIVE_LABEL, model_threshold, split_threshold
from core.config import Contract, FeatureType
from core.errors import BundleIntegrityError
from core.frames import feature_frame

log = logging.getLogger("serving.predictor")

Record = dict[str, Any]
# A batch by column: feature name → its values, every column the same length (None = missing).
Columns = Mapping[str, Sequence[Any]]
PARITY_TOLERANCE = 1e-6


def as_columns(records: Sequence[Record], names: Sequence[str]) -> dict[str, list[Any]]:
    """Turn records into columns (one pass per feature; column by column is what numpy wants)."""
    return {name: [r[name] for r in records] for name in names}


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class _FloatBranch:
    """Columns that stay numbers: impute, then the scalers' operations in sklearn's own order.

    The operations are not folded into one affine map: a tree compares values with thresholds
    learnt on sklearn's output, so the last bit matters and only the same sequence reproduces it.
    """

    columns: list[str]
    fill: np.ndarray | None  # per column; None = no imputer
    ops: list[tuple[str, np.ndarray]]  # ("sub" | "div" | "mul" | "add", per-column values)

    def apply(self, columns: Columns, n: int) -> np.ndarray:
        # None becomes NaN here.
        x = np.empty((n, len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):
            x[:, j] = np.asarray(columns[c], dtype=np.float64)
        if self.fill is not None:
            x = np.where(np.isnan(x), self.fill, x)
        for op, values in self.ops:
            if op == "sub":
                x -= values
            elif op == "div":
                x /= values
            elif op == "mul":
                x *= values
            else:
                x += values
        return x


@dataclass(frozen=True)
class _OneHotBranch:
    """Columns that become indicator blocks: impute a constant, then one-hot encode."""

    columns: list[str]
    index: list[dict[Any, int]]  # per column: category (None = missing) → output column
    width: int

    @classmethod
    def build(
        cls, columns: list[str], fill: list[Any] | None, categories: list[Any], offset: int = 0
    ) -> _OneHotBranch:
        index = []
        for j, cats in enumerate(categories):
            lookup = {c: offset + p for p, c in enumerate(cats)}
            if fill is not None and fill[j] in lookup:
                lookup[None] = lookup[fill[j]]  # what the imputer puts in for a missing value
            index.append(lookup)
            offset += len(cats)
        return cls(columns, index, offset)

    def apply(self, columns: Columns, n: int) -> np.ndarray:
        out = np.zeros((n, self.width), dtype=np.float64)
        pos = np.array(
            [
                list(map(lookup.get, columns[c], repeat(-1)))
                for c, lookup in zip(self.columns, self.index, strict=True)
            ],
            dtype=np.int64,
        )
        rows = np.broadcast_to(np.arange(n), pos.shape)
        known = pos >= 0  # an unseen category gives an all-zero block (handle_unknown="ignore")
        out[rows[known], pos[known]] = 1.0
        return out


Branch = _FloatBranch | _OneHotBranch


def _steps(transformer: Any) -> list[Any] | None:
    from sklearn.pipeline import Pipeline

    if isinstance(transformer, str):
        return [] if transformer == "passthrough" else None
    if isinstance(transformer, Pipeline):
        return [t for _, t in transformer.steps if t != "passthrough"]
    return [transformer]


def _imputer_fill(step: Any, k: int, categorical: bool) -> list[Any] | None:
    """The imputer's fill value per column, or None when it does more than fill missing values."""
    missing = step.missing_values
    if step.add_indicator or len(step.statistics_) != k:
        return None
    if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
        return None
    fill = list(step.statistics_)
    if not categorical and any(_is_missing(v) for v in fill):
        return None
    return fill


def _scaler_ops(step: Any) -> list[tuple[str, np.ndarray]] | None:
    """A scaler's operations in sklearn's own order, or None when it is not one we can replay."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if isinstance(step, StandardScaler):
        ops = []
        if step.mean_ is not None:
            ops.append(("sub", np.asarray(step.mean_, dtype=np.float64)))
        if step.scale_ is not None:
            ops.append(("div", np.asarray(step.scale_, dtype=np.float64)))
        return ops
    if isinstance(step, MinMaxScaler) and not step.clip:
        return [
            ("mul", np.asarray(step.scale_, dtype=np.float64)),
            ("add", np.asarray(step.min_, dtype=np.float64)),
        ]
    return None


def _float_branch(steps: list[Any], columns: list[str], fill: list[Any] | None) -> Branch | None:
    """Numeric columns: (imputed, then) only scalers, replayed one after the other."""
    ops: list[tuple[str, np.ndarray]] = []
    for step in steps:
        step_ops = _scaler_ops(step)
        if step_ops is None:
            return None
        ops.extend(step_ops)
    return _FloatBranch(columns, None if fill is None else np.asarray(fill, dtype=np.float64), ops)


def _one_hot_branch(steps: list[Any], columns: list[str], fill: list[Any] | None) -> Branch | None:
    """Categorical columns: (imputed, then) one-hot encoded as the last and only other step."""
    from sklearn.preprocessing import OneHotEncoder

    # Categories that are not one-hot encoded cannot reach a numeric estimator.
    if len(steps) != 1 or not isinstance(steps[0], OneHotEncoder):
        return None
    encoder = steps[0]
    if (
        encoder.drop_idx_ is not None
        or encoder.handle_unknown != "ignore"
        or encoder._infrequent_enabled
    ):
        return None
    return _OneHotBranch.build(columns, fill, list(encoder.categories_))


def _compile_branch(transformer: Any, columns: list[str], categorical: bool) -> Branch | None:
    """Replay one ColumnTransformer branch, or None when a step is not one we can replay."""
    from sklearn.impute import SimpleImputer

    steps = _steps(transformer)
    if steps is None:
        return None
    fill: list[Any] | None = None
    # An imputer replays only as the first step: later, it would see scaled values.
    if steps and isinstance(steps[0], SimpleImputer):
        fill = _imputer_fill(steps[0], len(columns), categorical)
        if fill is None:
            return None
        steps = steps[1:]
    if categorical:
        return _one_hot_branch(steps, columns, fill)
    return _float_branch(steps, columns, fill)


@dataclass(frozen=True)
class CompiledPipeline:
    """The fitted pipeline as numpy operations: branches, then the estimator on their output."""

    branches: list[Branch]
    estimator: Any
    positive: int
    coef: np.ndarray | None
    intercept: float

    def transform(self, columns: Columns, n: int) -> np.ndarray:
        blocks = [b.apply(columns, n) for b in self.branches]
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)

    def predict(self, columns: Columns, n: int) -> np.ndarray:
        x = self.transform(columns, n)
        if self.coef is not None:
            z = x @ self.coef + self.intercept
            return np.asarray(1.0 / (1.0 + np.exp(-z)))
        return np.asarray(self.estimator.predict_proba(x)[:, self.positive], dtype=np.float64)


def _compile_preprocessor(pre: Any, contract: Contract) -> list[Branch] | None:
    """Replay every branch of a fitted ColumnTransformer; None when one cannot be replayed."""
    from sklearn.compose import ColumnTransformer

    if not isinstance(pre, ColumnTransformer):
        return None
    kinds = {f.name: f.type for f in contract.features}
    branches: list[Branch] = []
    for _name, transformer, columns in pre.transformers_:
        if transformer == "drop" or (isinstance(columns, list) and not columns):
            continue
        categorical = _all_categorical(columns, kinds)
        branch = None if categorical is None else _compile_branch(transformer, columns, categorical)
        if branch is None:
            return None
        branches.append(branch)
    return branches or None


def _all_categorical(columns: Any, kinds: dict[str, FeatureType]) -> bool | None:
    """True when a branch's columns are all categorical, False when none is; None when mixed."""
    if not isinstance(columns, list) or not all(c in kinds for c in columns):
        return None
    categorical = {kinds[c] is FeatureType.categorical for c in columns}
    return categorical.pop() if len(categorical) == 1 else None


def _linear_form(estimator: Any, positive: int) -> tuple[np.ndarray | None, float]:
    """A binary logistic regression as (coefficients, intercept) for the positive class."""
    from sklearn.linear_model import LogisticRegression

    if type(estimator) is not LogisticRegression or estimator.coef_.shape[0] != 1:
        return None, 0.0
    coef = np.asarray(estimator.coef_[0], dtype=np.float64)
    intercept = float(estimator.intercept_[0])
    # coef_ scores classes_[1]: turn it round when the positive class comes first.
    return (coef, intercept) if positive == 1 else (-coef, -intercept)


def compile_pipeline(model: Any, contract: Contract) -> CompiledPipeline | None:
    """Read the fitted statistics out of the model's pipeline; None when a part cannot be replayed.

    A model that carries its decision threshold is unwrapped first: the threshold labels the
    probabilities, it does not change them.
    """
    from sklearn.pipeline import Pipeline

    pipeline = split_threshold(model)[0]
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    estimator = pipeline.steps[1][1]
    branches = _compile_preprocessor(pipeline.steps[0][1], contract)
    classes = list(getattr(estimator, "classes_", []))
    if branches is None or len(classes) != 2 or POSITIVE_LABEL not in classes:
        return None
    positive = classes.index(POSITIVE_LABEL)
    coef, intercept = _linear_form(estimator, positive)
    return CompiledPipeline(branches, estimator, positive, coef, intercept)


def probe_records(contract: Contract, n: int = 64) -> list[Record]:
    """Records that touch every category, both booleans, nulls and the numeric range ends."""
    rng = np.random.default_rng(0)
    records: list[Record] = []
    for i in range(n):
        rec: Record = {}
        for f in contract.features:
            if f.nullable and i % 7 == 3:
                rec[f.name] = None
            elif f.type is FeatureType.categorical:
                cats = f.categories or []
                rec[f.name] = cats[(i + len(f.name)) % len(cats)]
            elif f.type is FeatureType.boolean:
                rec[f.name] = bool((i + len(f.name)) % 2)
            else:
                lo = f.min if f.min is not None else -1e3
                hi = f.max if f.max is not None else 1e3
                value = float(rng.uniform(lo, hi)) if i % 5 else (lo if i % 2 else hi)
                rec[f.name] = float(round(value)) if f.integer else value
        records.append(rec)
    return records


class Predictor:
    """Probabilities of the positive class for validated records, by the fastest exact path."""

    def __init__(self, pipeline: Any, contract: Contract, extra_probes: Sequence[Record] = ()):
        self.pipeline = pipeline
        self.contract = contract
        # What labels the scores: the threshold the model carries; None for a bare pipeline
        # (registered before the threshold moved into the model: the bundle's mirror then).
        self.threshold = model_threshold(pipeline)
        self.compiled = compile_pipeline(pipeline, contract)
        self.mode = "sklearn"
        self.parity_error: float | None = None
        if self.compiled is None and self.threshold is None:
            return
        records = [*probe_records(contract), *extra_probes]
        probes = as_columns(records, contract.feature_names)
        if self.threshold is not None:
            self._check_labels(probes, self.threshold)
        if self.compiled is not None:
            self.parity_error = self._parity(self.compiled, probes, len(records))
            if self.parity_error <= PARITY_TOLERANCE:
                self.mode = "compiled"

    def _check_labels(self, probes: Columns, threshold: float) -> None:
        """Refuse a model whose own `predict` is not `score >= threshold`, the rule we label by."""
        frame = feature_frame(pd.DataFrame(dict(probes)), self.contract)
        own = np.asarray(self.pipeline.predict(frame)) == POSITIVE_LABEL
        ours = self.sklearn(probes) >= threshold
        if not np.array_equal(own, ours):
            raise BundleIntegrityError(
                f"the model's own labels differ from score >= {threshold!r} on "
                f"{int(np.sum(own != ours))} of {len(own)} probe records; refusing to serve labels "
                "that other consumers of the same model would not give"
            )

    def _parity(self, compiled: CompiledPipeline, probes: Columns, n: int) -> float:
        """How far the compiled scores are from sklearn's (inf when they cannot be compared)."""
        try:
            fast = compiled.predict(probes, n)
            reference = self.sklearn(probes)
        except (ValueError, TypeError, IndexError) as exc:  # e.g. a width the estimator rejects
            log.warning("compiled scoring failed on probe records (%s); using sklearn", exc)
            return math.inf
        diff = float(np.max(np.abs(fast - reference)))
        # Scores a hair apart can still straddle the threshold: then the labels would differ.
        t = self.threshold
        if t is not None and not np.array_equal(fast >= t, reference >= t):
            diff = math.inf
        if diff > PARITY_TOLERANCE:
            log.warning(
                "compiled scoring differs from the sklearn pipeline by %.2e; using sklearn", diff
            )
        return diff

    @property
    def fast(self) -> bool:
        return self.mode == "compiled"

    def sklearn(self, columns: Columns) -> np.ndarray:
        """Score through the fitted sklearn pipeline itself (the reference path)."""
        frame = feature_frame(pd.DataFrame(dict(columns)), self.contract)
        proba = self.pipeline.predict_proba(frame)
        positive = list(self.pipeline.classes_).index(POSITIVE_LABEL)
        return np.asarray(proba[:, positive], dtype=np.float64)

    def score_columns(self, columns: Columns) -> np.ndarray:
        """Score a batch given by column (validated, equal lengths) by the fastest exact path."""
        if self.fast and self.compiled is not None:
            n = len(next(iter(columns.values()))) if columns else 0
            return self.compiled.predict(columns, n)
        return self.sklearn(columns)

    def __call__(self, records: Sequence[Record]) -> np.ndarray:
        """Score validated records."""
        return self.score_columns(as_columns(records, self.contract.feature_names))


class MicroBatcher:
    """Score concurrent single-record requests together, one call per burst.

    Requests wait in a list; one task takes everything waiting and scores it in one call. While a
    call runs, new requests queue up, so the batch grows exactly as fast as load does and an idle
    service adds no delay. A slow scorer (the sklearn path) runs in a thread so the event loop keeps
    accepting requests meanwhile; the compiled path is microseconds and runs inline.
    """

    def __init__(
        self,
        score: Callable[[Sequence[Record]], np.ndarray],
        *,
        max_batch: int = 256,
        offload: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._score = score
        self._max_batch = max_batch
        self._offload = offload
        self._on_batch = on_batch
        self._waiting: list[tuple[Record, asyncio.Future[float]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def score(self, record: Record) -> float:
        """Score one record together with whatever else is waiting."""
        if self._wake is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            # One loop turn lets requests whose bodies were parsed in the same turn join.
            await asyncio.sleep(0)
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            if not self._waiting:
                self._wake.clear()
            if not batch:
                continue
            records = [r for r, _ in batch]
            try:
                if self._offload:
                    scores = await asyncio.to_thread(self._score, records)
                else:
                    scores = self._score(records)
            except Exception as exc:  # a scoring failure fails those requests, not the batcher
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch))
            for (_, fut), s in zip(batch, scores.tolist(), strict=True):
                if not fut.done():
                    fut.set_result(s)
