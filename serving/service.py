"""The model service: scoring, logging and feedback, independent of HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydantic import TypeAdapter

from core.bundle import Bundle, read_metadata
from core.config import Config, Contract
from core.settings import Settings
from serving.metrics import SYNC_SECONDS, Metrics
from serving.prediction_log import Features, LogStats, PredictionLog
from serving.predictor import Columns, MicroBatcher, Predictor, Record, load_predictor
from serving.schemas import batch_schema, columns_schema, feedback_schema, record_schema

log = logging.getLogger("serving")


def served_contract(metadata: dict[str, Any], config: Config) -> Contract:
    """The contract the model was trained on wins over the config's: it is what the model knows."""
    raw = metadata.get("contract")
    return Contract.model_validate(raw) if raw else config.contract


class Answers(NamedTuple):
    """A batch's answers, by field, in request order."""

    request_ids: list[str]
    probabilities: list[float]
    labels: list[str]


class ModelService:
    """Hold the verified model, score records, log every answer, take feedback."""

    def __init__(
        self, settings: Settings, config: Config, bundle: Bundle, predictor: Predictor
    ) -> None:
        self.settings = settings
        self.config = config
        self.bundle = bundle
        self.contract = served_contract(bundle.metadata, config)
        self.version = bundle.version
        self.threshold = bundle.threshold  # the model's own; bundle.json only mirrors it
        self.negative, self.positive = self.contract.target.negative, self.contract.target.positive
        self.schemas: dict[str, TypeAdapter[Any]] = {
            "Record": record_schema(self.contract),
            "BatchRequest": batch_schema(self.contract, config.serving.max_batch),
            "BatchColumns": columns_schema(self.contract, config.serving.max_batch),
            "Feedback": feedback_schema(self.contract),
        }
        self.predictor = predictor
        self.log: PredictionLog | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self.metrics = Metrics(
            {
                "name": str(bundle.metadata.get("model_name", "")),
                "version": self.version,
                "run_id": str(bundle.metadata.get("run_id") or ""),
                "scoring": self.predictor.mode,
            },
            self._log_stats,
        )
        self.batcher = MicroBatcher(
            self.predictor,
            max_batch=256,
            offload=not self.predictor.fast,
            on_batch=self.metrics.batch_size.add,
        )

    @classmethod
    def load(cls, settings: Settings, config: Config) -> ModelService:
        """Verify and load the bundle named by the settings, check it on its probes.

        Raises BundleIntegrityError (exit code 5) for a bundle that fails any of the checks.
        """
        path = Path(settings.model_bundle)
        metadata = read_metadata(path)
        bundle, predictor = load_predictor(path, metadata, served_contract(metadata, config))
        return cls(settings, config, bundle, predictor)

    def _log_stats(self) -> tuple[LogStats, int] | None:
        return None if self.log is None else (self.log.stats, self.log.depth)

    async def start(self) -> None:
        """Open the prediction log and start the micro-batcher (the app's start-up)."""
        self.log = await asyncio.to_thread(
            PredictionLog,
            self.settings.prediction_log_url,
            capacity=self.config.serving.log_buffer_rows,
            flush_seconds=self.config.serving.log_flush_seconds,
        )
        self.batcher.start()
        self._sync_task = asyncio.get_running_loop().create_task(
            self._sync_metrics(), name="metrics-sync"
        )
        # Everything loaded so far (libraries, the model) lives as long as the process: keep it out
        # of the collector's full passes, which otherwise stall requests for tens of milliseconds.
        gc.collect()
        gc.freeze()
        log.info(
            "serving %s version %s (%s scoring, pid %d)",
            self.bundle.metadata.get("model_name"),
            self.version,
            self.predictor.mode,
            os.getpid(),
        )

    async def _sync_metrics(self) -> None:
        """Copy the log's counters into the metrics every second (a scrape reaches one worker)."""
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            self.metrics.sync()

    async def stop(self) -> None:
        """Stop scoring and write every buffered prediction (the app's graceful shutdown)."""
        await self.batcher.stop()
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
            self._sync_task = None
        if self.log is not None:
            await asyncio.to_thread(self.log.close)
        self.metrics.sync()
        self.metrics.close()

    @property
    def ready(self) -> bool:
        return self.log is not None and self.log.alive and self.batcher.alive

    def _label(self, score: float) -> str:
        return self.positive if score >= self.threshold else self.negative

    async def predict_one(self, record: Record) -> tuple[str, float, str]:
        """Score one record (micro-batched with concurrent ones); log it; return id, score, label."""
        score = await self.batcher.score(record)
        # 32 random hex digits, as uuid4().hex gave, without building a UUID object per request.
        request_id = secrets.token_hex(16)
        label = self._label(score)
        if self.log is not None:
            self.log.submit(self.version, ((request_id, score, label, record),))
        self.metrics.scores.add(score)
        return request_id, score, label

    async def predict_many(self, records: Sequence[Record]) -> Answers:
        """Score a batch of records in one call; each gets its own id `<batch id>-<index>`."""
        return await self._predict_batch(len(records), lambda: self.predictor(records))

    async def predict_columns(self, columns: Columns, n: int) -> Answers:
        """Score a batch sent by column (validated, `n` values each) in one call."""
        return await self._predict_batch(n, lambda: self.predictor.score_columns(columns))

    async def _predict_batch(self, n: int, score: Callable[[], np.ndarray]) -> Answers:
        """Score, label and count the scores; `log_batch` logs them (after the response)."""
        if self.predictor.fast:
            # numpy on arrays, ~0.6 µs a row: less than validating the body took, inline. A thread
            # hop added ~3 ms to 10,000 rows (the GIL handed back and forth).
            scores = score()
        else:
            # The sklearn path is slow per call: the event loop keeps answering meanwhile.
            scores = await asyncio.to_thread(score)
        batch_id = secrets.token_hex(16)
        request_ids = [f"{batch_id}-{i}" for i in range(n)]
        probabilities = scores.tolist()
        labels = np.where(scores >= self.threshold, self.positive, self.negative).tolist()
        self.metrics.scores.add_many(scores)
        return Answers(request_ids, probabilities, labels)

    def log_batch(self, answers: Answers, features: Features) -> None:
        """Hand a batch to the prediction log, the features as they came (records or columns).

        The route calls this once the response is sent: the log's writer thread wakes for a big
        batch at once and turns it into rows, and that Python work would otherwise hold the GIL
        while the response is still being built (measured: +5 to 10 ms on 10,000 rows).
        """
        if self.log is not None:
            self.log.submit_batch(self.version, *answers, features)

    async def add_feedback(self, request_id: str, label: str) -> bool:
        """Store the true class of a logged prediction; False when no such prediction exists."""
        if self.log is None:
            return False
        return await asyncio.to_thread(self.log.add_feedback, request_id, label)

    def describe(self) -> dict[str, Any]:
        """What is being served: model identity, metrics, threshold, contract, scoring path."""
        meta = self.bundle.metadata
        return {
            "name": meta.get("model_name"),
            "version": self.version,
            "run_id": meta.get("run_id"),
            "threshold": self.threshold,
            "metrics": meta.get("metrics", {}),
            "created_at": meta.get("created_at"),
            "config_sha256": meta.get("config_sha256"),
            "scoring": self.predictor.mode,
            "parity_error": self.predictor.parity_error,
            "contract": self.contract.model_dump(mode="json"),
        }
