"""/metrics with several workers, started as the image starts the service (`python -m serving.serve`
with WEB_CONCURRENCY=2): every scrape counts the requests, scores and logged rows of both workers."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import start_server

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def sample(metrics: str, name: str, labels: str = "") -> float:
    """The value of one sample line (`name{labels} value`), 0 when absent."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", metrics, flags=re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_every_scrape_counts_both_workers(
    tmp_path: Path,
    trained_bundle: Path,
    raw_config: dict[str, Any],
    records: list[dict[str, Any]],
) -> None:
    from tests.serving.conftest import serving_config

    shared = tmp_path / "metrics"
    shared.mkdir()
    server = start_server(
        tmp_path,
        bundle=trained_bundle,
        config=serving_config(tmp_path, raw_config),
        env={"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(shared)},
        serve_module=True,
    )
    try:
        (run,) = list(shared.iterdir())  # one new folder for this run's workers
        n = 120

        def predict(i: int) -> int:
            # A new connection each time, 8 at once: both workers are kept accepting.
            return httpx.post(server.url + "/predict", json=records[i], timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(predict, range(n))) == {200}
        batch = {"columns": {k: [r[k] for r in records[:5]] for k in records[0]}}
        assert httpx.post(server.url + "/predict/batch", json=batch, timeout=30).status_code == 200
        pids = {p.stem.rsplit("_", 1)[-1] for p in run.glob("counter_*.db")}
        assert len(pids) == 2, f"requests reached {len(pids)} worker(s): {sorted(pids)}"

        time.sleep(2.5)  # the log writers insert, then each worker copies its log counters
        route = 'method="POST",route="/predict",status="200"'
        for _ in range(6):  # several scrapes, answered by either worker: all see every count
            metrics = httpx.get(server.url + "/metrics", timeout=30).text
            assert sample(metrics, "http_requests_total", route) == n
            assert sample(metrics, "prediction_score_count") == n + 5
            assert sample(metrics, "prediction_log_written_total") == n + 5
            assert sample(metrics, "prediction_log_dropped_total") == 0
            assert len(re.findall(r"^model_info\{", metrics, flags=re.MULTILINE)) == 1
    finally:
        assert server.stop() in (0, -15), server.text()[-2000:]
    assert "PROMETHEUS_MULTIPROC_DIR is not set" not in server.text()
