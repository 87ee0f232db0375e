"""Graceful shutdown: SIGTERM in the middle of load loses no prediction the service answered, with
one worker under uvicorn and with two under `python -m serving.serve` (the image's command)."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.prediction_log import read_predictions
from tests.serving.conftest import serving_config, start_server


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_during_load_loses_no_logged_prediction(
    tmp_path: Path,
    trained_bundle: Path,
    raw_config: dict[str, Any],
    records: list[dict[str, Any]],
    workers: int,
) -> None:
    # Rows wait up to 2 s in memory, so at SIGTERM many answered predictions are not yet in the
    # database: only the shutdown flush can save them.
    config = serving_config(tmp_path, raw_config, log_flush_seconds=2.0)
    server = start_server(
        tmp_path,
        bundle=trained_bundle,
        config=config,
        env={"WEB_CONCURRENCY": str(workers)},
        serve_module=workers > 1,
    )
    answered: list[str] = []
    depth_at_sigterm = -1

    async def client_loop(k: int, client: httpx.AsyncClient) -> None:
        i = k
        while True:
            try:
                batch = [records[(i + j) % len(records)] for j in range(5)]
                if i % 8 == 0:
                    r = await client.post("/predict/batch", json={"records": batch})
                    if r.status_code == 200:
                        answered.extend(p["request_id"] for p in r.json()["predictions"])
                elif i % 8 == 4:  # by column: logged after the response, in a background task
                    columns = {k: [rec[k] for rec in batch] for k in batch[0]}
                    r = await client.post("/predict/batch", json={"columns": columns})
                    if r.status_code == 200:
                        answered.extend(r.json()["request_ids"])
                else:
                    r = await client.post("/predict", json=records[i % len(records)])
                    if r.status_code == 200:
                        answered.append(r.json()["request_id"])
                assert r.status_code in (200, 503), r.text
            except httpx.TransportError:
                return  # the server has closed: shutdown reached this client
            i += 16

    async def load() -> None:
        nonlocal depth_at_sigterm
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            tasks = [asyncio.create_task(client_loop(k, client)) for k in range(16)]
            await asyncio.sleep(1.5)
            metrics = (await client.get("/metrics")).text
            depth_at_sigterm = int(
                float(re.findall(r"^prediction_log_queue_depth (\S+)", metrics, re.M)[0])
            )
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    asyncio.run(load())
    # uvicorn finishes the shutdown, then re-raises SIGTERM on itself so the exit says why.
    assert server.stop() in (0, -signal.SIGTERM), server.text()[-2000:]
    assert "Application shutdown complete" in server.text()
    assert len(answered) > 100 and depth_at_sigterm > 0
    logged = read_predictions(server.log_url)
    assert logged["request_id"].is_unique
    missing = set(answered) - set(logged["request_id"])
    assert not missing, f"{len(missing)} answered predictions were not logged"
    assert len(logged) == len(answered)
