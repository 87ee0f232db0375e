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
from core.columns import (
    LABEL,
    LABELS,
    PROBABILITIES,
    PROBABILITY,
    REQUEST_ID,
    REQUEST_IDS,
    VALUE,
    VALUES,
)
from core.config import Config, Contract, TaskType
from core.settings import Settings
from core.task import labels as task_labels
from core.task import summary_scores
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
    """A batch's answers, by field, in request order.

    `scores` per row: a float (binary probability, regression value) or a list of class
    probabilities (multiclass); `labels` None for a regression; `logged` one float per row for the
    prediction log (core.task.summary_scores).
    """

    request_ids: list[str]
    scores: list[Any]
    labels: list[str] | None
    logged: list[float]


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
        self.threshold = bundle.threshold  # the model's own (binary only); bundle.json mirrors it
        self.target = self.contract.target
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
            lambda: self.ready,
        )
        # Every (predicted, actual) pair is exported from the start, at 0: a series born at its
        # first count would hide that count from increase() (the live metric).
        for predicted in self.contract.target.classes:
            for actual in self.contract.target.classes:
                self.metrics.feedback.labels(predicted, actual)
        self.batcher = MicroBatcher(
            self._score_singles,
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

    def _log_labels(self, scores: np.ndarray, labels: list[str] | None) -> list[str]:
        """The prediction log's label column: the class, or a regression's value as text."""
        return labels if labels is not None else [repr(v) for v in scores.tolist()]

    def answer(self, request_id: str, score: Any, label: str | None) -> dict[str, Any]:
        """One record's answer as the task gives it (the fields of schemas.prediction_model)."""
        if self.target.type is TaskType.regression:
            return {REQUEST_ID: request_id, VALUE: score}
        if self.target.type is TaskType.multiclass:
            probabilities = dict(zip(self.target.classes, score, strict=True))
            return {REQUEST_ID: request_id, PROBABILITIES: probabilities, LABEL: label}
        return {REQUEST_ID: request_id, PROBABILITY: score, LABEL: label}

    def columns_answer(self, answers: Answers) -> dict[str, Any]:
        """A batch's answers by column (the fields of schemas.columns_prediction_model)."""
        if self.target.type is TaskType.regression:
            return {REQUEST_IDS: answers.request_ids, VALUES: answers.scores}
        if self.target.type is TaskType.multiclass:
            by_class = list(zip(*answers.scores, strict=True)) if answers.scores else []
            probabilities = {c: list(v) for c, v in zip(self.target.classes, by_class, strict=True)}
            return {
                REQUEST_IDS: answers.request_ids,
                PROBABILITIES: probabilities,
                LABELS: answers.labels,
            }
        return {
            REQUEST_IDS: answers.request_ids,
            PROBABILITIES: answers.scores,
            LABELS: answers.labels,
        }

    def _score_singles(self, records: Sequence[Record]) -> list[tuple[Any, str | None, float, str]]:
        """Score a micro-batch of single requests: (score, label, logged score, logged label)
        per record, labelled in one numpy pass per batch rather than one per request."""
        scores = self.predictor(records)
        labels = task_labels(scores, self.target, self.threshold)
        logged = summary_scores(scores, self.target).tolist()
        log_labels = self._log_labels(scores, labels)
        answers = labels if labels is not None else [None] * len(logged)
        return list(zip(scores.tolist(), answers, logged, log_labels, strict=True))

    async def predict_one(self, record: Record) -> dict[str, Any]:
        """Score one record (micro-batched with concurrent ones); log it; return its answer."""
        score, label, logged, log_label = await self.batcher.score(record)
        # 32 random hex digits, as uuid4().hex gave, without building a UUID object per request.
        request_id = secrets.token_hex(16)
        if self.log is not None:
            self.log.submit(self.version, ((request_id, logged, log_label, record),))
        self.metrics.scores.add(logged)
        return self.answer(request_id, score, label)

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
        labels = task_labels(scores, self.target, self.threshold)
        logged = summary_scores(scores, self.target)
        self.metrics.scores.add_many(logged)
        return Answers(request_ids, scores.tolist(), labels, logged.tolist())

    def log_batch(self, answers: Answers, features: Features) -> None:
        """Hand a batch to the prediction log, the features as they came (records or columns).

        The route calls this once the response is sent: the log's writer thread wakes for a big
        batch at once and turns it into rows, and that Python work would otherwise hold the GIL
        while the response is still being built (measured: +5 to 10 ms on 10,000 rows).
        """
        if self.log is not None:
            labels = self._log_labels(np.asarray(answers.logged), answers.labels)
            self.log.submit_batch(
                self.version, answers.request_ids, answers.logged, labels, features
            )

    async def add_feedback(self, request_id: str, truth: str | float) -> bool:
        """Store the true class (or a regression's true value, as text) of a logged prediction.

        False when no such prediction exists.
        """
        if self.log is None:
            return False
        label = repr(float(truth)) if self.target.type is TaskType.regression else str(truth)
        predicted = await asyncio.to_thread(self.log.add_feedback, request_id, label)
        if predicted is None:
            return False
        if self.target.is_classifier:  # a regression's values would be a label pair each
            self.metrics.feedback.labels(predicted, label).inc()
        return True

    def describe(self) -> dict[str, Any]:
        """What is being served: model identity, metrics, threshold, contract, scoring path."""
        meta = self.bundle.metadata
        return {
            "name": meta.get("model_name"),
            "version": self.version,
            "run_id": meta.get("run_id"),
            "task": self.target.type.value,
            "threshold": self.threshold,
            "metrics": meta.get("metrics", {}),
            "created_at": meta.get("created_at"),
            "config_sha256": meta.get("config_sha256"),
            "scoring": self.predictor.mode,
            "parity_error": self.predictor.parity_error,
            "contract": self.contract.model_dump(mode="json"),
        }
