"""Compile the fitted sklearn pipeline into `core.compiled`'s plain arrays, with probes, at packaging.

`Pipeline.predict_proba` on one row costs milliseconds, almost all of it per-call overhead (a
DataFrame, the ColumnTransformer's checks and concatenations), not arithmetic. `compile_pipeline`
reads the fitted statistics out of the pipeline and returns a `CompiledModel` that replays them on
arrays; anything it does not recognise makes it return None, and serving then loads the sklearn
model itself (through skops). `model_files` writes the bundle files: the compiled form when there
is one and it reproduces sklearn on the probes within `PROBE_TOLERANCE`, and always the probes
with sklearn's scores and labels, which serving checks again before it reports ready.

The decision threshold travels inside the model (a FixedThresholdClassifier around the pipeline):
the compiler unwraps it, and packaging refuses a model whose own `predict` is not
`score >= threshold`, the rule every consumer labels by.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from core.bundle import POSITIVE_LABEL, split_threshold
from core.compiled import (
    PROBE_TOLERANCE,
    PROBES_FILE,
    Branch,
    CompiledModel,
    FloatBranch,
    OneHotBranch,
    Probes,
    Record,
    is_missing,
    write_compiled,
)
from core.config import Contract, FeatureType
from core.errors import BundleIntegrityError
from core.frames import feature_frame, request_records
from core.heads import linear_head
from core.task import model_scores

log = logging.getLogger("training.compile")

# Training rows among the probes (from the bundle's reference), on top of the synthetic ones.
MAX_REFERENCE_PROBES = 1_000


def _steps(transformer: Any) -> list[Any] | None:
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
    if not is_missing(missing):
        return None
    fill = [v.item() if isinstance(v, np.generic) else v for v in step.statistics_]
    if not categorical and any(is_missing(v) for v in fill):
        return None
    return fill


def _scaler_ops(step: Any) -> list[tuple[str, np.ndarray]] | None:
    """A scaler's operations in sklearn's own order, or None when it is not one we can replay."""
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
    return FloatBranch(columns, None if fill is None else np.asarray(fill, dtype=np.float64), ops)


def _one_hot_branch(steps: list[Any], columns: list[str], fill: list[Any] | None) -> Branch | None:
    """Categorical columns: (imputed, then) one-hot encoded as the last and only other step."""
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
    categories = [
        [v.item() if isinstance(v, np.generic) else v for v in c] for c in encoder.categories_
    ]
    if not all(isinstance(v, str | int | float) for c in categories for v in c):
        return None  # only what JSON holds exactly
    return OneHotBranch(columns, categories, fill)


def _compile_branch(transformer: Any, columns: list[str], categorical: bool) -> Branch | None:
    """Replay one ColumnTransformer branch, or None when a step is not one we can replay."""
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


def _all_categorical(columns: Any, kinds: dict[str, FeatureType]) -> bool | None:
    """True when a branch's columns are all categorical, False when none is; None when mixed."""
    if not isinstance(columns, list) or not all(c in kinds for c in columns):
        return None
    categorical = {kinds[c] is FeatureType.categorical for c in columns}
    return categorical.pop() if len(categorical) == 1 else None


def _compile_preprocessor(pre: Any, contract: Contract) -> list[Branch] | None:
    """Replay every branch of a fitted ColumnTransformer; None when one cannot be replayed."""
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


def compile_pipeline(model: Any, contract: Contract) -> CompiledModel | None:
    """Read the fitted statistics out of the model's pipeline; None when a part cannot be replayed.

    A model that carries its decision threshold is unwrapped first: the threshold labels the
    probabilities, it does not change them.
    """
    pipeline = split_threshold(model)[0]
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    estimator = pipeline.steps[1][1]
    branches = _compile_preprocessor(pipeline.steps[0][1], contract)
    head = None if branches is None else linear_head(estimator, contract)
    if branches is None or head is None:
        return None
    return CompiledModel(branches, head, type(estimator).__name__)


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
            elif f.type is FeatureType.text:
                rec[f.name] = probe_text(i, *f.length_bounds)
            else:
                lo = f.min if f.min is not None else -1e3
                hi = f.max if f.max is not None else 1e3
                value = float(rng.uniform(lo, hi)) if i % 5 else (lo if i % 2 else hi)
                rec[f.name] = float(round(value)) if f.integer else value
        records.append(rec)
    return records


# Words in several scripts: the vectoriser's tokens and character n-grams are not only ASCII.
PROBE_WORDS = (
    "good",
    "bad",
    "not",
    "taste",
    "très",
    "bon",
    "gut",
    "schlecht",
    "美味しい",
    "хорошо",
)


def probe_text(i: int, low: int | None, high: int) -> str:
    """A probe document of a few words, cut or padded to lie within the length bounds."""
    words = [PROBE_WORDS[(i * 7 + k * 3) % len(PROBE_WORDS)] for k in range(1 + i % 12)]
    text = " ".join(words)[:high]
    return text.ljust(low or 0, "a")


def _frame(records: Sequence[Record], contract: Contract) -> pd.DataFrame:
    columns = {name: [r[name] for r in records] for name in contract.feature_names}
    return feature_frame(pd.DataFrame(columns), contract)


def sklearn_scores(model: Any, records: Sequence[Record], contract: Contract) -> np.ndarray:
    """The task's scores by the fitted sklearn model itself (the reference; core/task.py)."""
    return model_scores(model, _frame(records, contract), contract.target)


def make_probes(model: Any, contract: Contract, reference: pd.DataFrame | None) -> Probes:
    """Probe records with sklearn's scores and, when the model carries a threshold, its labels.

    Refuses a model whose own `predict` is not `score >= threshold`: serving labels by that rule.
    """
    records = probe_records(contract)
    if reference is not None:
        records += request_records(reference.head(MAX_REFERENCE_PROBES), contract)
    scores = sklearn_scores(model, records, contract)
    threshold = split_threshold(model)[1]
    positive = None
    if threshold is not None:
        positive = np.asarray(model.predict(_frame(records, contract))) == POSITIVE_LABEL
        wrong = int(np.sum(positive != (scores >= threshold)))
        if wrong:
            raise BundleIntegrityError(
                f"the model's own labels differ from score >= {threshold!r} on {wrong} of "
                f"{len(records)} probe records; refusing to package labels that other consumers "
                "of the same model would not give"
            )
    return Probes(records, scores, threshold, positive)


def model_files(
    model: Any, contract: Contract, reference: pd.DataFrame | None = None
) -> dict[str, bytes]:
    """The bundle files beside the model: the compiled form (when it compiles) and the probes.

    `reference`: training rows (the bundle's reference table) to probe with besides the synthetic
    records. A compiled form that does not reproduce sklearn on the probes is left out, with a
    warning: serving then loads the sklearn model.
    """
    probes = make_probes(model, contract, reference)
    files = {PROBES_FILE: probes.to_bytes()}
    compiled = compile_pipeline(model, contract)
    if compiled is None:
        log.warning("the model does not compile to numpy: serving will load it with scikit-learn")
        return files
    ours = compiled.predict(probes.columns(contract.feature_names), len(probes.records))
    if ours.shape != probes.scores.shape:
        log.warning("the compiled model gives scores of shape %s: not compiled", ours.shape)
        return files
    gap = float(np.max(np.abs(ours - probes.scores)))
    t = probes.threshold
    if gap > PROBE_TOLERANCE or (
        t is not None and not np.array_equal(ours >= t, probes.scores >= t)
    ):
        log.warning("the compiled model differs from sklearn by %.2e: not compiled", gap)
        return files
    return {**files, **write_compiled(compiled)}
