"""Prometheus metrics of one service process, in a registry of its own (one per app).

Request counts and latency per route template (never the raw path, so cardinality stays bounded),
the prediction score distribution, micro-batch sizes, the model version, and the prediction log's
buffer depth, drops and write errors. Scores are counted with numpy in bulk: a 10,000-record batch
would otherwise pay 10,000 `observe` calls.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.prediction_log import LogStats

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
SCORE_EDGES = np.round(np.arange(0.05, 1.0001, 0.05), 2)


class ScoreHistogram(Collector):
    """Histogram of predicted probabilities, filled a whole array at a time."""

    def __init__(self) -> None:
        self._counts = np.zeros(len(SCORE_EDGES) + 1, dtype=np.int64)
        self._edges = SCORE_EDGES.tolist()
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_one(self, score: float) -> None:
        """Count one score (bisect: a tenth of the numpy call's cost for a single value)."""
        i = bisect_left(self._edges, score)
        with self._lock:
            self._counts[i] += 1
            self._sum += score

    def observe(self, scores: np.ndarray) -> None:
        idx = np.searchsorted(SCORE_EDGES, scores, side="left")
        counts = np.bincount(idx, minlength=len(SCORE_EDGES) + 1)
        with self._lock:
            self._counts += counts
            self._sum += float(np.sum(scores))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total_sum = self._sum
        buckets = [(f"{e:g}", float(c)) for e, c in zip(SCORE_EDGES, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", float(cumulative[-1])))
        family = HistogramMetricFamily(
            "prediction_score", "Predicted probability of the positive class"
        )
        family.add_metric([], buckets, total_sum)
        yield family


class LogCollector(Collector):
    """The prediction log's counters, read at scrape time."""

    def __init__(self, stats: Callable[[], tuple[LogStats, int] | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        current = self._stats()
        if current is None:
            return
        stats, depth = current
        yield GaugeMetricFamily(
            "prediction_log_queue_depth", "Rows waiting to be written", value=depth
        )
        for name, doc, value in (
            ("prediction_log_written", "Rows written to the prediction log", stats.written),
            ("prediction_log_dropped", "Rows dropped because the buffer was full", stats.dropped),
            ("prediction_log_write_errors", "Failed insert attempts (retried)", stats.write_errors),
            ("prediction_log_lost", "Rows given up on after repeated write failures", stats.lost),
        ):
            yield CounterMetricFamily(name, doc, value=value)


class Metrics:
    """Every metric the service exports."""

    def __init__(self, model: dict[str, str], log_stats: Callable[[], tuple[LogStats, int] | None]):
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
        self.batch_size = Histogram(
            "prediction_micro_batch_size",
            "Single-record requests scored together in one call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.model_info = Gauge(
            "model_info",
            "The model this process serves (value 1)",
            list(model),
            registry=self.registry,
        )
        self.model_info.labels(**model).set(1)
        self.scores = ScoreHistogram()
        self.registry.register(self.scores)
        self.registry.register(LogCollector(log_stats))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count and time every HTTP request by route template (plain ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Labelled children, looked up once per (route, method, status) instead of on every request.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route: Any = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            key = (label, scope.get("method", ""), status)
            children = self._children.get(key)
            if children is None:
                children = (
                    self.metrics.requests.labels(key[0], key[1], str(status)),
                    self.metrics.latency.labels(key[0], key[1]),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
