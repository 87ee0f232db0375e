"""Score records by the fastest exact path the bundle offers, checked against its probes first.

`load_predictor` loads the compiled form of the model (`core.compiled`: arrays and a description,
numpy alone, no scikit-learn, pandas or joblib imported) when the bundle has one, else the sklearn
model through skops (`serving/fallback.py`, which imports scikit-learn and pandas). Either way it
scores the bundle's probe records and refuses a model whose scores differ from those sklearn gave
at packaging by more than 1e-9, or whose labels differ: the service is not ready before that.

`MicroBatcher` gathers single-record requests that arrive together into one scoring call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.bundle import Bundle, load_model
from core.compiled import (
    PROBES_FILE,
    Columns,
    Probes,
    Record,
    check_probes,
    load_compiled,
    load_probes,
)
from core.config import Contract
from core.errors import BundleIntegrityError

log = logging.getLogger("serving.predictor")


def as_columns(records: Sequence[Record], names: Sequence[str]) -> dict[str, list[object]]:
    """Turn records into columns (one pass per feature; column by column is what numpy wants)."""
    return {name: [r[name] for r in records] for name in names}


@dataclass(frozen=True)
class Predictor:
    """Probabilities of the positive class for validated records, by one checked path."""

    score_columns_n: Callable[[Columns, int], np.ndarray]
    names: list[str]
    # "compiled" (numpy), "sklearn" (the pipeline through skops) or "sklearn-tfidf" (its
    # vectorisers and estimator called directly: serving/fallback.py)
    mode: str
    parity_error: float | None  # the largest gap to the stored probe scores

    @property
    def fast(self) -> bool:
        return self.mode == "compiled"

    def score_columns(self, columns: Columns) -> np.ndarray:
        """Score a batch given by column (validated, equal lengths)."""
        n = len(next(iter(columns.values()))) if columns else 0
        return self.score_columns_n(columns, n)

    def __call__(self, records: Sequence[Record]) -> np.ndarray:
        """Score validated records."""
        return self.score_columns_n(as_columns(records, self.names), len(records))


def load_predictor(
    path: Path, metadata: dict[str, object], contract: Contract
) -> tuple[Bundle, Predictor]:
    """The bundle (verified by the caller) and its predictor, checked against the stored probes.

    The compiled form when the bundle has one; else the sklearn model through skops.
    """
    probes = load_probes(path)
    compiled = load_compiled(path)
    if compiled is None:
        return _sklearn_predictor(path, metadata, contract, probes)
    names = contract.feature_names
    if probes is None:
        raise BundleIntegrityError(f"{path}: has a compiled model but no {PROBES_FILE}")
    unknown = sorted(set(compiled.features) - set(names))
    if unknown:
        raise BundleIntegrityError(
            f"{path}: the compiled model reads {', '.join(unknown)}, not in the contract"
        )
    scores = compiled.predict(probes.columns(names), len(probes.records))
    gap = check_probes(scores, probes, f"{path}: the compiled model")
    bundle = Bundle(path, None, dict(metadata), carried=probes.threshold)
    return bundle, Predictor(compiled.predict, names, "compiled", gap)


def _sklearn_predictor(
    path: Path, metadata: dict[str, object], contract: Contract, probes: Probes | None
) -> tuple[Bundle, Predictor]:
    """The sklearn model through skops, for a bundle without a compiled form."""
    try:
        # scikit-learn and pandas: only for this path
        from serving.fallback import SklearnScorer, tfidf_scorer

        model = load_model(path)
    except ModuleNotFoundError as exc:
        raise BundleIntegrityError(
            f"{path}: the model does not compile to numpy and needs {exc.name}, which is not "
            "installed (an image for such a model is built with MODEL_RUNTIME=sklearn)"
        ) from None
    bundle = Bundle(path, model, dict(metadata))
    scorer: Callable[[Columns, int], np.ndarray] | None = tfidf_scorer(model, contract)
    mode = "sklearn-tfidf" if scorer is not None else "sklearn"
    scorer = scorer or SklearnScorer(model, contract)
    if probes is None:
        return bundle, Predictor(scorer, contract.feature_names, mode, None)
    if probes.threshold != bundle.carried:
        raise BundleIntegrityError(
            f"{path}: {PROBES_FILE} says threshold {probes.threshold!r}, the model carries "
            f"{bundle.carried!r}"
        )
    scores = scorer(probes.columns(contract.feature_names), len(probes.records))
    gap = check_probes(scores, probes, f"{path}: the sklearn model")
    return bundle, Predictor(scorer, contract.feature_names, mode, gap)


class MicroBatcher:
    """Score concurrent single-record requests together, one call per burst.

    Requests wait in a list; one task takes everything waiting and scores it in one call. While a
    call runs, new requests queue up, so the batch grows exactly as fast as load does and an idle
    service adds no delay. A slow scorer (the sklearn path) runs in a thread so the event loop keeps
    accepting requests meanwhile; the compiled path is microseconds and runs inline.
    """

    def __init__(
        self,
        score: Callable[[Sequence[Record]], np.ndarray | list[Any]],
        *,
        max_batch: int = 256,
        offload: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._score = score
        self._max_batch = max_batch
        self._offload = offload
        self._on_batch = on_batch
        self._waiting: list[tuple[Record, asyncio.Future[Any]]] = []
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

    async def score(self, record: Record) -> Any:
        """Score one record together with whatever else is waiting: its item of `score`'s result."""
        if self._wake is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
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
            results = scores.tolist() if isinstance(scores, np.ndarray) else scores
            for (_, fut), s in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(s)
