"""Prometheus metrics of the service: every worker's, summed, when several run.

Request counts and latency per route template (never the raw path, so cardinality stays bounded),
the prediction score distribution, micro-batch sizes, the model, readiness, feedback by predicted
and true label (the live metric), and the prediction log's buffer depth, drops and write errors.
Scores are counted with numpy in bulk: a 10,000-record batch would otherwise pay 10,000 `observe`
calls.

Several uvicorn workers are several processes, and a scrape reaches one of them. With
PROMETHEUS_MULTIPROC_DIR set before the workers start (`python -m serving.serve` does it, and
the image runs that), prometheus_client keeps every value in a memory-mapped file per process and
/metrics adds them up (its documented multiprocess mode). The request path only appends to lists
(`BulkHistogram`); each worker moves them, and the prediction log's counters, into
prometheus_client every `SYNC_SECONDS` and before it answers /metrics, so a scrape sees every
worker's requests and log at most a second late. Without the variable, each
process reports its own values (right for one worker).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.prediction_log import LogStats

log = logging.getLogger("serving.metrics")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
SCORE_EDGES = np.round(np.arange(0.05, 1.0001, 0.05), 2)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SYNC_SECONDS = 1.0
LOG_COUNTERS = (
    ("written", "prediction_log_written", "Rows written to the prediction log"),
    ("dropped", "prediction_log_dropped", "Rows dropped because the buffer was full"),
    ("write_errors", "prediction_log_write_errors", "Failed insert attempts (retried)"),
    ("lost", "prediction_log_lost", "Rows given up on after repeated write failures"),
)


# The files prometheus_client writes per process: counter_123.db, gauge_livesum_123.db, ...
PROMETHEUS_FILE = re.compile(r"^(?:counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db$")


def file_pid(name: str) -> int | None:
    """The process id in the name of one of prometheus_client's files (None for any other)."""
    found = PROMETHEUS_FILE.match(name)
    return int(found[1]) if found else None


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def multiprocess_dir() -> str | None:
    """The shared metrics folder when this process is one of several workers sharing one."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


class BulkHistogram:
    """A prometheus histogram (one labelled child) filled a whole array at a time.

    prometheus_client's Histogram observes one value per call, a Python loop over its buckets (and,
    with workers sharing metrics, a locked write to a memory-mapped file per value). Values are
    kept in a list here (`add`, `add_many`: a list append on the request path) and `flush` adds
    their bucket counts to the histogram's own values (`_buckets`, `_sum`: attributes of the pinned
    prometheus_client, checked here, so an upgrade that renames them falls back to one call per
    value). The service flushes every `SYNC_SECONDS` and before every /metrics answer.
    """

    def __init__(self, histogram: Any, edges: Sequence[float] | np.ndarray) -> None:
        self.histogram = histogram
        self.edges = np.asarray(edges, dtype=np.float64)
        self._bulk = (
            all(hasattr(histogram, a) for a in ("_buckets", "_sum"))
            and len(histogram._buckets) == len(self.edges) + 1
        )
        self._pending: list[float] = []
        self._pending_arrays: list[np.ndarray] = []
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        self._pending.append(value)

    def add_many(self, values: np.ndarray) -> None:
        self._pending_arrays.append(values)

    def flush(self) -> int:
        """Move the values kept so far into the histogram; return how many there were."""
        with self._lock:
            arrays, self._pending_arrays = self._pending_arrays, []
            single, self._pending = self._pending, []
            if single:
                arrays.append(np.asarray(single, dtype=np.float64))
            if not arrays:
                return 0
            values = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
            if not self._bulk:
                for value in values.tolist():
                    self.histogram.observe(value)
                return len(values)
            idx = np.searchsorted(self.edges, values, side="left")
            counts = np.bincount(idx, minlength=len(self.edges) + 1).tolist()
            for bucket, count in zip(self.histogram._buckets, counts, strict=True):
                if count:
                    bucket.inc(count)
            self.histogram._sum.inc(float(np.sum(values)))
            return len(values)


class Metrics:
    """Every metric the service exports."""

    def __init__(
        self,
        model: dict[str, str],
        log_stats: Callable[[], tuple[LogStats, int] | None],
        ready: Callable[[], bool],
    ):
        self.shared_dir = multiprocess_dir()
        if self.shared_dir is None and multiprocessing.parent_process() is not None:
            log.warning(
                "this is one of several worker processes but %s is not set: /metrics shows only "
                "the worker that answers (start with python -m serving.serve)",
                MULTIPROC_ENV,
            )
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to the end of the response, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = BulkHistogram(
            Histogram(
                "prediction_micro_batch_size",
                "Single-record requests scored together in one call",
                buckets=[*BATCH_BUCKETS, float("inf")],
                registry=self.registry,
            ),
            BATCH_BUCKETS,
        )
        self.model_info = Gauge(
            "model_info",
            "The model this process serves (value 1)",
            list(model),
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.model_info.labels(**model).set(1)
        self.scores = BulkHistogram(
            Histogram(
                "prediction_score",
                "Predicted probability of the positive class",
                buckets=[*SCORE_EDGES.tolist(), float("inf")],
                registry=self.registry,
            ),
            SCORE_EDGES,
        )
        # Requests per (route template, method, status): their latency histogram, flushed with
        # the others; the request counter gains what each flush moved.
        self._routes: dict[tuple[str, str, int], tuple[Any, BulkHistogram]] = {}
        # Two classes, so four series: the live metrics (recall, precision, ...) in PromQL.
        self.feedback = Counter(
            "prediction_feedback",
            "Feedback received, by the label the prediction answered and the true one",
            ["predicted", "actual"],
            registry=self.registry,
        )
        self._log_stats = log_stats
        self._ready = ready
        # What /ready answers, at each scrape: the readiness-flapping alert counts its changes.
        self._ready_gauge = Gauge(
            "service_ready",
            "1 while this process answers /ready with 200, else 0",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self._log_depth = Gauge(
            "prediction_log_queue_depth",
            "Rows waiting to be written",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self._log_counters = {
            field: Counter(name, doc, registry=self.registry) for field, name, doc in LOG_COUNTERS
        }
        self._log_seen = dict.fromkeys(self._log_counters, 0)
        self._sync_lock = threading.Lock()

    def sync_log(self) -> None:
        """Copy readiness and the prediction log's counters into the metrics (new counts only)."""
        self._ready_gauge.set(1 if self._ready() else 0)
        current = self._log_stats()
        if current is None:
            return
        stats, depth = current
        with self._sync_lock:
            self._log_depth.set(depth)
            for field, counter in self._log_counters.items():
                value = getattr(stats, field)
                if value > self._log_seen[field]:
                    counter.inc(value - self._log_seen[field])
                    self._log_seen[field] = value

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (kept in memory until the next flush)."""
        key = (route, method, status)
        entry = self._routes.get(key)
        if entry is None:
            # The latency histogram is by route and method; each status keeps its own pending list.
            histogram = self.latency.labels(route, method)
            entry = (
                self.requests.labels(route, method, str(status)),
                BulkHistogram(histogram, LATENCY_BUCKETS),
            )
            self._routes[key] = entry
        entry[1].add(seconds)

    def flush(self) -> None:
        """Move the values kept in memory into the exported metrics."""
        for counter, latency in list(self._routes.values()):
            counter.inc(latency.flush())
        self.scores.flush()
        self.batch_size.flush()

    def sync(self) -> None:
        """What the service does every `SYNC_SECONDS`: flush, and copy the log's counters."""
        self.flush()
        self.sync_log()

    def render(self) -> bytes:
        self.sync()
        if self.shared_dir is None:
            return generate_latest(self.registry)
        # A worker that crashed never said it stopped: its queue depth would stay in the sum.
        for live in Path(self.shared_dir).glob("gauge_live*_*.db"):
            pid = file_pid(live.name)
            if pid is not None and not process_alive(pid):
                prometheus_multiprocess.mark_process_dead(pid, self.shared_dir)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=self.shared_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """This worker is stopping: its live gauges (queue depth) leave the sum."""
        if self.shared_dir is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid(), self.shared_dir)


class MetricsMiddleware:
    """Count and time every HTTP request by route template (plain ASGI: no per-request task).

    The request path only appends the duration to a list (`Metrics.record_request`); the counts
    reach prometheus_client at the next flush.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        finished: float | None = None
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = time.perf_counter()  # a background task (batch logging) runs after

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route: Any = scope.get("route")
            self.metrics.record_request(
                getattr(route, "path", None) or "unmatched",
                scope.get("method", ""),
                status,
                (finished or time.perf_counter()) - started,
            )
