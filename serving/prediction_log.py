"""The prediction log: every answer the service gives, written off the request path, in batches.

SQLite (WAL) by default, through the standard library's sqlite3 (core/sqlite_log.py: the worker
imports no SQLAlchemy); PostgreSQL, or any URL naming a driver, through SQLAlchemy Core
(core/prediction_log.py). Both write the same tables. A request appends its
rows to an in-memory buffer and returns; one writer thread inserts what has gathered, in batches.
When the buffer is full the rows are dropped and counted (a metric and a warning), never waited on
silently. `close()` writes everything still buffered, which is what a graceful shutdown calls.
Feedback (ground truth) lives in its own table, joined to the prediction by request id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from core.sqlite_log import SqliteStore, Stored, sqlite_path

log = logging.getLogger("serving.prediction_log")

Features = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
# One buffered single prediction: request_id, ts, model_version, score, label, features. One plain
# tuple per row: wrapping each single prediction in a block (five objects per row) tripled the p99
# latency at concurrency 8 (5 → 16 ms, wrk against two workers).
Row = tuple[str, datetime, str, float, str, Mapping[str, Any]]


class LogStore(Protocol):
    """Where the rows go (core.sqlite_log.SqliteStore, core.prediction_log.SqlAlchemyStore)."""

    errors: tuple[type[Exception], ...]

    def time(self, ts: datetime) -> Any: ...
    def insert(self, rows: list[Stored], chunk: int) -> None: ...
    def logged_label(self, request_id: str) -> str | None: ...
    def put_feedback(self, request_id: str, label: str, ts: datetime) -> None: ...
    def close(self) -> None: ...


def open_store(url: str) -> LogStore:
    """The store for this URL: sqlite3 for a plain `sqlite:///` URL, else SQLAlchemy (imported
    only then: it was 40 % of a worker's start-up)."""
    path = sqlite_path(url)
    if path is not None:
        return SqliteStore(url, path)
    from core.prediction_log import SqlAlchemyStore

    return SqlAlchemyStore(url)


@dataclass(frozen=True)
class _Block:
    """Rows submitted together: kept as given and turned into insert parameters by the writer.

    `features` is one mapping per row, or one sequence per feature (a batch sent by column), so
    a request hands over what it already has and the per-row work happens off the request path.
    """

    ts: datetime
    model_version: str
    request_ids: Sequence[str]
    scores: Sequence[float]
    labels: Sequence[str]
    features: Features

    def __len__(self) -> int:
        return len(self.request_ids)

    def stored(self, store: LogStore) -> list[Stored]:
        """The block's rows as `store` inserts them."""
        features = self.features
        if isinstance(features, Mapping):
            names = list(features)
            rows: Iterable[Mapping[str, Any]] = (
                dict(zip(names, values, strict=True))
                for values in zip(*features.values(), strict=True)
            )
        else:
            rows = features
        ts, version, dumps = store.time(self.ts), self.model_version, orjson.dumps
        return [
            (rid, ts, version, score, label, dumps(feats).decode())
            for rid, score, label, feats in zip(
                self.request_ids, self.scores, self.labels, rows, strict=True
            )
        ]


@dataclass
class LogStats:
    """Counters the metrics endpoint reads."""

    written: int = 0
    dropped: int = 0
    write_errors: int = 0
    lost: int = 0  # rows given up on after repeated write failures
    batches: int = 0
    last_error: str | None = None


class PredictionLog:
    """Buffer rows in memory and insert them from one background thread, in batches."""

    def __init__(
        self,
        url: str,
        *,
        capacity: int = 100_000,
        batch_size: int = 2_000,
        flush_seconds: float = 0.05,
    ) -> None:
        self.store = open_store(url)
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.stats = LogStats()
        self._buffer: list[Row | _Block] = []
        self._buffered = 0  # rows in self._buffer
        self._cond = threading.Condition()
        self._submitted = 0  # rows accepted into the buffer, ever
        self._done = 0  # rows written (or given up on), ever
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closing

    @property
    def depth(self) -> int:
        return self._submitted - self._done

    def submit(
        self, model_version: str, rows: Iterable[tuple[str, float, str, Mapping[str, Any]]]
    ) -> bool:
        """Buffer (request_id, score, label, features) rows; False (and counted) when full."""
        ts = datetime.now(UTC)
        batch = [(rid, ts, model_version, score, label, feats) for rid, score, label, feats in rows]
        return self._add(batch, len(batch))

    def submit_batch(
        self,
        model_version: str,
        request_ids: Sequence[str],
        scores: Sequence[float],
        labels: Sequence[str],
        features: Features,
    ) -> bool:
        """Buffer rows given by field (features per row, or per feature); False when full."""
        block = _Block(datetime.now(UTC), model_version, request_ids, scores, labels, features)
        return self._add([block], len(block))

    def _add(self, items: list[Row] | list[_Block], n: int) -> bool:
        """Put `n` rows (as rows or one block) in the buffer, or drop and count them when full."""
        with self._cond:
            if self._closing or self.depth + n > self.capacity:
                self.stats.dropped += n
                log.warning("prediction log buffer full (%d rows): dropped %d", self.depth, n)
                return False
            self._buffer.extend(items)
            self._buffered += n
            self._submitted += n
            if self._buffered >= self.batch_size:
                self._cond.notify()
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row submitted so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            self._cond.notify_all()
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, self.flush_seconds))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write everything buffered, then stop the writer and release the database."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self.store.close()

    def _take(self) -> list[Row | _Block]:
        with self._cond:
            while not self._buffer and not self._closing:
                self._cond.wait(self.flush_seconds)
            if not self._closing and self._buffered < self.batch_size:
                # Let a burst gather into one insert instead of many small ones.
                self._cond.wait(self.flush_seconds)
            items, self._buffer, self._buffered = self._buffer, [], 0
            return items

    def _run(self) -> None:
        while True:
            items = self._take()
            if items:
                self._write(items)
            with self._cond:
                if self._closing and not self._buffer:
                    self._cond.notify_all()
                    return

    def _write(self, items: list[Row | _Block]) -> None:
        n_rows = sum(len(item) if isinstance(item, _Block) else 1 for item in items)
        store, dumps = self.store, orjson.dumps
        try:
            rows: list[Stored] = []
            for item in items:
                if isinstance(item, _Block):
                    rows.extend(item.stored(store))
                else:
                    rid, ts, version, score, label, feats = item
                    rows.append((rid, store.time(ts), version, score, label, dumps(feats).decode()))
        except (TypeError, ValueError) as exc:  # a value orjson cannot write: never kill the writer
            rows = []
            self.stats.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
            log.error("prediction log: %d rows cannot be serialised: %s", n_rows, exc)
        delay = 0.1
        written = False
        for attempt in range(8 if rows else 0):
            try:
                store.insert(rows, self.batch_size)
                written = True
                break
            except store.errors as exc:
                self.stats.write_errors += 1
                self.stats.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
                log.error("prediction log write failed (attempt %d): %s", attempt + 1, exc)
                if self._closing and attempt >= 2:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        if not written:
            self.stats.lost += n_rows
            log.error("prediction log: gave up on %d rows", n_rows)
        with self._cond:
            if written:
                self.stats.written += n_rows
                self.stats.batches += 1
            self._done += n_rows
            self._cond.notify_all()

    def logged_label(self, request_id: str) -> str | None:
        """The label a logged prediction answered with (None when no such prediction exists)."""
        return self.store.logged_label(request_id)

    def add_feedback(self, request_id: str, label: str) -> str | None:
        """Store ground truth for a logged prediction (latest wins).

        Returns the label that prediction answered with, None for an unknown id.
        """
        self.flush(timeout=5.0)
        predicted = self.logged_label(request_id)
        if predicted is None:
            # Another worker process may still hold it in its buffer: one flush interval later.
            time.sleep(max(0.2, 4 * self.flush_seconds))
            predicted = self.logged_label(request_id)
            if predicted is None:
                return None
        self.store.put_feedback(request_id, label, datetime.now(UTC))
        return predicted
