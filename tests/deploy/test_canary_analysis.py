"""The canary's AnalysisTemplate judged for real: Debian's Prometheus scraping real services.

One stable service and four canaries run as real uvicorn processes; Prometheus (a normal process
on 127.0.0.1, with the config this test writes) scrapes them every second, labelled as its pod
discovery labels pods in a cluster (namespace, rollouts_pod_template_hash). After the same traffic
to each, every query of the AnalysisTemplate the config renders goes to Prometheus's HTTP API and
its successCondition is applied (deploy/analysis.py, Argo's rules). No Rollouts controller runs
here: this does what it does for one measurement.

The canaries: a model refitted on 90 % of the rows (healthy), the stable model failing every
fourth request (errors), a model trained with the positive class over-represented (its scores
shift; HTTP is healthy), the stable model taking 0.2 s more per request (slow), and the stable
model whose feedback says the opposite of its answers (concept: only the live metric can tell). The last two
faults are put into the real app by tests/deploy/canary_faults.py, behind its metrics middleware.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from core.bundle import write_bundle
from core.config import Config
from core.frames import feature_frame, request_records, target_vector
from deploy import analysis, canary
from serving.serve import uvicorn_argv
from tests.deploy.monitoring import Process, start_prometheus, wait_scraped
from tests.serving import conftest as serving_fixtures
from tests.serving.conftest import Server, serving_config, start_server
from training.compile import model_files
from training.model import build_pipeline

pytestmark = pytest.mark.slow
NAMESPACE = "canary-test"
STABLE = "stable0"
REQUESTS = 240
# Canaries that get feedback: the true classes, or their opposite (the world changed under the
# model: the concept drifted; scores and HTTP look the same, only the labels can tell).
FEEDBACK = {"shifted": False, "concept": True}


def fit_bundle(folder: Path, config: Config, frame: pd.DataFrame, version: str) -> Path:
    """Fit the config's pipeline on `frame` and write it as a bundle (as tests/conftest.py does)."""
    pipeline = build_pipeline(config)
    pipeline.fit(feature_frame(frame, config.contract), target_vector(frame, config.contract))
    metadata = {
        "model_name": config.mlflow.registered_model,
        "model_version": version,
        "run_id": None,
        "threshold": 0.5,
        "metrics": {},
        "contract": config.contract.model_dump(mode="json"),
        "config_sha256": config.sha256,
    }
    files = model_files(pipeline, config.contract)
    return write_bundle(folder / "bundle", pipeline, metadata, files)


def with_faults(host: str, port: int, workers: int) -> list[str]:
    """uvicorn on the fault-injecting factory instead of serving.app's own."""
    argv = uvicorn_argv(host, port, workers)
    argv[argv.index("serving.app:app_from_env")] = "tests.deploy.canary_faults:app_from_env"
    return argv


@dataclass
class Fleet:
    prometheus: Process
    servers: dict[str, Server]


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    trained_bundle: Path,
    config: Config,
    default_frame: pd.DataFrame,
    raw_config: dict[str, Any],
) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("canary")
    target = config.contract.target
    positives = default_frame[default_frame[target.name] == target.positive]
    bundles = {
        STABLE: (trained_bundle, {}),
        "healthy": (
            fit_bundle(
                tmp / "healthy", config, default_frame.sample(frac=0.9, random_state=1), "1"
            ),
            {},
        ),
        "shifted": (
            fit_bundle(tmp / "shifted", config, pd.concat([default_frame, *[positives] * 4]), "2"),
            {},
        ),
        "errors": (trained_bundle, {"CANARY_FAULT": "error", "CANARY_FAULT_EVERY": "4"}),
        "slow": (trained_bundle, {"CANARY_FAULT": "slow", "CANARY_FAULT_SECONDS": "0.2"}),
        "concept": (trained_bundle, {}),
    }
    servers: dict[str, Server] = {}
    prometheus: Process | None = None
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(serving_fixtures, "uvicorn_argv", with_faults)
            for name, (bundle, env) in bundles.items():
                folder = tmp / f"server-{name}"
                folder.mkdir()
                servers[name] = start_server(
                    folder,
                    bundle=bundle,
                    config=serving_config(folder, copy.deepcopy(raw_config)),
                    env=env,
                    wait=False,
                )
        for name, srv in servers.items():
            _wait_ready(srv, name)
        prometheus = start_prometheus(tmp / "prometheus", _scrape_config(servers))
        wait_scraped(prometheus, "model-api", len(servers))
        sample = default_frame.sample(n=REQUESTS, random_state=7)
        records = request_records(sample, config.contract)
        with ThreadPoolExecutor(len(servers)) as pool:
            sent = pool.map(lambda srv: _traffic(srv, records), servers.values())
            answered = dict(zip(servers, sent, strict=True))
        truth = sample[target.name].astype(str).tolist()
        for name, inverted in FEEDBACK.items():
            labels = [_invert(t, config) if inverted else t for t in truth]
            _feedback(servers[name], answered[name], labels)
        _wait_scraped_after(prometheus, time.time())
        yield Fleet(prometheus, servers)
    finally:
        if prometheus is not None:
            prometheus.stop()
        for srv in servers.values():
            srv.stop()


def _scrape_config(servers: dict[str, Server]) -> dict[str, Any]:
    """Scrape every second, each target labelled as pod discovery labels a Rollout's pods."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "model-api",
                "static_configs": [
                    {
                        "targets": [srv.url.removeprefix("http://")],
                        "labels": {"namespace": NAMESPACE, "rollouts_pod_template_hash": name},
                    }
                    for name, srv in servers.items()
                ],
            }
        ],
    }


def _wait_ready(srv: Server, name: str) -> None:
    deadline = time.monotonic() + 300  # five start together on a shared machine
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            pytest.fail(f"{name} exited with {srv.proc.returncode}:\n{srv.text()[-3000:]}")
        try:
            if httpx.get(srv.url + "/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{name} not ready in 300 s:\n{srv.text()[-3000:]}")


def _traffic(srv: Server, records: list[dict[str, Any]]) -> list[str | None]:
    """Send every record once, eight at a time, as independent clients would: the request ids."""

    def send(client: httpx.Client, record: dict[str, Any]) -> str | None:
        # uvicorn may close the connection after an app error; the 500 is counted already.
        with contextlib.suppress(httpx.TransportError):
            answer = client.post("/predict", json=record)
            return str(answer.json()["request_id"]) if answer.status_code == 200 else None
        return None

    with srv.client() as client, ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda rec: send(client, rec), records))


def _invert(label: str, config: Config) -> str:
    target = config.contract.target
    return target.negative if label == target.positive else target.positive


def _feedback(srv: Server, request_ids: list[str | None], labels: list[str]) -> None:
    """Post the true class of every answered request, as the labels would come back later."""

    def send(client: httpx.Client, request_id: str, label: str) -> None:
        answer = client.post("/feedback", json={"request_id": request_id, "label": label})
        assert answer.status_code == 200, answer.text

    pairs = [(rid, label) for rid, label in zip(request_ids, labels, strict=True) if rid]
    with srv.client() as client, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: send(client, *pair), pairs))


def _wait_scraped_after(prometheus: Process, moment: float) -> None:
    """Wait until every target was scraped after `moment` (the end of the traffic), twice."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = analysis.prometheus_query(prometheus.url, 'min(timestamp(up{job="model-api"}))')
        if isinstance(found, list) and found and found[0] > moment + 1:
            return
        time.sleep(0.5)
    pytest.fail("Prometheus scraped nothing after the traffic")


def judge(fleet: Fleet, config: Config, track: str) -> dict[str, analysis.Measurement]:
    template = canary.analysis_template(config, config.canary.staging)
    args = {"namespace": NAMESPACE, "canary-hash": track, "stable-hash": STABLE}
    return {m.metric: m for m in analysis.measure(template, fleet.prometheus.url, args)}


def phases(measured: dict[str, analysis.Measurement]) -> dict[str, str]:
    return {name: m.phase for name, m in measured.items()}


ALL_PASS = {
    "error-share": "Successful",
    "p99-latency-ratio": "Successful",
    "score-distance": "Successful",
    "prediction-log-drops": "Successful",
    "live-recall": "Successful",
}


def test_every_metric_of_the_template_is_measured(fleet: Fleet, config: Config) -> None:
    template = canary.analysis_template(config, config.canary.staging)
    assert set(judge(fleet, config, "healthy")) == {m["name"] for m in template["spec"]["metrics"]}


def test_a_healthy_canary_passes(fleet: Fleet, config: Config) -> None:
    measured = judge(fleet, config, "healthy")
    assert phases(measured) == ALL_PASS, measured
    assert measured["live-recall"].value == "[]", "no feedback yet: the live check waits"
    assert analysis.verdict(list(measured.values())) == "Successful"


def test_a_canary_answering_errors_fails_on_the_error_share(fleet: Fleet, config: Config) -> None:
    measured = judge(fleet, config, "errors")
    assert measured["error-share"].phase == "Failed", measured
    share = float(measured["error-share"].value.strip("[]"))
    assert 0.2 <= share <= 0.3, f"one request in four fails: {share}"
    assert analysis.verdict(list(measured.values())) == "Failed"


def test_a_canary_whose_scores_shift_fails_on_the_distance_while_http_is_healthy(
    fleet: Fleet, config: Config
) -> None:
    measured = judge(fleet, config, "shifted")
    assert phases(measured) == {**ALL_PASS, "score-distance": "Failed"}, measured
    # Its feedback arrived (the true classes): the live recall is measured, and above the floor.
    assert measured["live-recall"].value != "[]", measured
    assert analysis.verdict(list(measured.values())) == "Failed"


def test_a_canary_whose_labels_say_it_is_wrong_fails_on_the_live_metric(
    fleet: Fleet, config: Config
) -> None:
    measured = judge(fleet, config, "concept")
    assert phases(measured) == {**ALL_PASS, "live-recall": "Failed"}, measured
    assert analysis.verdict(list(measured.values())) == "Failed"


def test_a_slow_canary_fails_on_latency(fleet: Fleet, config: Config) -> None:
    measured = judge(fleet, config, "slow")
    assert measured["p99-latency-ratio"].phase == "Failed", measured
    assert measured["error-share"].phase == "Successful", measured
    assert analysis.verdict(list(measured.values())) == "Failed"


def test_the_make_target_judges_a_committed_overlay(
    fleet: Fleet, tmp_path: Path, root: Path
) -> None:
    out = tmp_path / "analysis.json"
    argv = ["--overlay", "staging", "--prometheus", fleet.prometheus.url, "--root", str(root)]
    argv += ["--arg", f"namespace={NAMESPACE}", "--arg", "stable-hash=" + STABLE, "--out", str(out)]
    assert analysis.main([*argv, "--arg", "canary-hash=healthy"]) == 0
    assert analysis.main([*argv, "--arg", "canary-hash=shifted"]) == 1
    assert '"phase": "Failed"' in out.read_text()
