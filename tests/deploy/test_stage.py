"""Local staging: requests built from the contract and real rows, and the whole run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.config import Config, FeatureType
from core.errors import ServiceUnavailable
from core.frames import request_records
from deploy.stage import bad_record, image_service, label_agrees, sample_records
from tests.conftest import CHURN_CONFIG

ROOT = Path(__file__).resolve().parents[2]


def test_records_are_json_with_every_contract_feature(
    config: Config, default_frame: pd.DataFrame
) -> None:
    rows = sample_records(default_frame, config.contract, 5, seed=0)
    records = request_records(rows, config.contract)
    assert len(records) == 5
    for record in records:
        assert list(record) == config.contract.feature_names
        json.dumps(record, allow_nan=False)  # NaN would not be valid JSON
        for f in config.contract.features:
            value = record[f.name]
            if value is None:
                assert f.nullable
            elif f.type is FeatureType.categorical:
                assert value in (f.categories or [])
            else:
                assert isinstance(value, int | float)


def test_one_sampled_row_has_a_missing_nullable_value_when_the_data_has_one(
    config: Config, default_frame: pd.DataFrame
) -> None:
    rows = sample_records(default_frame, config.contract, 5, seed=0)
    nullable = [f.name for f in config.contract.features if f.nullable]
    assert default_frame[nullable].isna().any().any()
    assert rows[nullable].isna().any(axis=1).sum() == 1


def test_the_bad_record_breaks_a_contract_field(
    config: Config, default_frame: pd.DataFrame
) -> None:
    record = request_records(default_frame.head(1), config.contract)[0]
    broken, name = bad_record(record, config.contract)
    feature = config.contract.feature(name)
    assert broken[name] not in (feature.categories or [])
    assert {k: v for k, v in broken.items() if k != name} == {
        k: v for k, v in record.items() if k != name
    }


def test_label_agreement_reads_class_names_and_flags(config: Config) -> None:
    positive, negative = config.contract.target.positive, config.contract.target.negative
    assert label_agrees(positive, 0.7, 0.5, config.contract)
    assert label_agrees(negative, 0.3, 0.5, config.contract)
    assert not label_agrees(negative, 0.7, 0.5, config.contract)
    assert label_agrees(1, 0.5, 0.5, config.contract)
    assert not label_agrees("maybe", 0.7, 0.5, config.contract)


def dockerfile_running(tmp_path: Path, code: str) -> Path:
    """A Dockerfile whose command is a small Python program, run the way the stage runs the image."""
    path = tmp_path / "Dockerfile"
    path.write_text(f"FROM python\nWORKDIR /app\nCMD {json.dumps([sys.executable, '-c', code])}\n")
    return path


def test_a_service_that_dies_is_reported_with_its_error_line(tmp_path: Path) -> None:
    code = "import sys; print('starting'); print('RuntimeError: no model'); sys.exit(3)"
    dockerfile = dockerfile_running(tmp_path, code)
    with (
        image_service(dockerfile, tmp_path, tmp_path, tmp_path, tmp_path / "log") as service,
        pytest.raises(ServiceUnavailable) as error,
    ):
        service.wait_ready(timeout=30)
    assert "exited with code 3" in str(error.value)
    assert "RuntimeError: no model" in str(error.value) and "\n" not in str(error.value)


def test_a_service_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    dockerfile = dockerfile_running(tmp_path, code)
    with image_service(dockerfile, tmp_path, tmp_path, tmp_path, tmp_path / "log") as service:
        time.sleep(0.5)  # let it install its handler
        assert service.stop(timeout=1) == -signal.SIGKILL
        assert service.process.poll() is not None


def run_stage(bundle: Path, reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m deploy.stage` on `bundle` (of the churn fixture) as `make stage` / `make smoke` do."""
    env = {**os.environ, "MODEL_BUNDLE": str(bundle), "REPORTS_DIR": str(reports)}
    return subprocess.run(
        [sys.executable, "-m", "deploy.stage", "--config", str(CHURN_CONFIG), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.e2e
def test_make_stage_smoke_tests_the_bundle_and_writes_the_report(
    trained_bundle: Path, tmp_path: Path
) -> None:
    proc = run_stage(trained_bundle, tmp_path, "--engine", "process")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "stage" / "smoke.json").read_text())
    assert report["passed"] is True
    assert report["env_overrides"]["UVICORN_HOST"] == "127.0.0.1"
    assert report["command"] == ["python", "-m", "serving.serve"]
    assert len(report["predictions"]) == 5
    assert str(tmp_path / "stage" / "smoke.json") in proc.stdout


# --- `make smoke URL=…` against a deploy that has not synced yet -------------------------------------


@pytest.fixture
def next_version(trained_bundle: Path, tmp_path: Path) -> Path:
    """The same model packaged as the next version: what the staging overlay now pins."""
    from core.bundle import load_bundle, write_bundle

    loaded = load_bundle(trained_bundle)
    version = str(int(loaded.version) + 1)
    return write_bundle(
        tmp_path / "next", loaded.pipeline, {**loaded.metadata, "model_version": version}
    )


@pytest.mark.slow
def test_smoke_waits_for_the_deployed_version_and_names_both_when_it_never_comes(
    trained_bundle: Path, next_version: Path, tmp_path: Path, raw_config: dict[str, Any]
) -> None:
    from core.bundle import load_bundle
    from tests.serving.conftest import serving_config, start_server

    old = load_bundle(trained_bundle).version
    new = load_bundle(next_version).version
    server = start_server(
        tmp_path, bundle=trained_bundle, config=serving_config(tmp_path, raw_config)
    )
    try:
        started = time.monotonic()
        proc = run_stage(next_version, tmp_path / "reports", "--url", server.url, "--wait", "3")
    finally:
        server.stop()
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert time.monotonic() - started >= 3  # it waited, bounded
    assert f"still serves version {old}" in proc.stderr
    assert f"not the bundle's version {new}" in proc.stderr


@pytest.mark.slow
def test_smoke_polls_a_service_still_rolling_out_then_runs_the_checks(
    next_version: Path, tmp_path: Path, raw_config: dict[str, Any]
) -> None:
    from tests.serving.conftest import serving_config, start_server

    # Not waited for: the smoke test starts while the new version is still starting up.
    server = start_server(
        tmp_path, bundle=next_version, config=serving_config(tmp_path, raw_config), wait=False
    )
    try:
        proc = run_stage(next_version, tmp_path / "reports", "--url", server.url)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "reports" / "stage" / "smoke-url.json").read_text())
    assert report["passed"] is True and report["waited_for_version_s"] > 0


def test_a_service_that_stops_answering_mid_smoke_is_one_error_line(
    trained_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """/model reports the version, then every other request is dropped unanswered: no traceback."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from core.bundle import load_bundle
    from core.errors import DeployError
    from core.settings import get_settings
    from deploy.stage import main

    version = load_bundle(trained_bundle).version

    class Dropping(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/model":
                body = json.dumps({"version": version}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.close_connection = True  # gone without an answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Dropping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MODEL_BUNDLE", str(trained_bundle))
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code = main(["--config", str(CHURN_CONFIG), "--url", url, "--wait", "5"])
    finally:
        server.shutdown()
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == DeployError.exit_code and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "stopped answering during the smoke test" in errors[0], err
    assert not (tmp_path / "reports" / "stage" / "smoke-url.json").exists()
