"""Shared fixtures: real configs, real data and a real trained bundle, built once per session."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from core.bundle import write_bundle
from core.config import Config, load_config
from core.data import read_table
from core.frames import feature_frame, target_vector
from core.net import free_port

ROOT = Path(__file__).resolve().parents[1]
# The config a fork replaces: tests of it read its contract and never name a column.
ROOT_CONFIG = ROOT / "config.yaml"
# Frozen fixture configs with their own data: tests that need particular columns use these, so a
# fork's own config.yaml and data leave them green.
CHURN_CONFIG = ROOT / "tests" / "fixtures" / "churn" / "config.yaml"
CREDIT_CONFIG = ROOT / "examples" / "credit" / "config.yaml"
# One shipped example per task besides binary: a multiclass and a regression table.
TASK_CONFIGS = {
    "multiclass": ROOT / "examples" / "hpc" / "config.yaml",
    "regression": ROOT / "examples" / "deliveries" / "config.yaml",
}
# A text classifier (free-text reviews): the text feature type through every stage, by config.
REVIEWS_CONFIG = ROOT / "examples" / "reviews" / "config.yaml"
CONFIGS = {
    "telco": CHURN_CONFIG,
    "credit": CREDIT_CONFIG,
    "reviews": REVIEWS_CONFIG,
    **TASK_CONFIGS,
}
# Every config a contract-driven test checks: the fixtures and whatever the root one holds.
SHIPPED = {"root": ROOT_CONFIG, **CONFIGS}

# The bundle-anchor and authentication rules read these (core/settings.py); a CI runner's CI=true
# or a developer's MODEL_DIGEST must not decide what a test sees. Tests that need them set them.
for _name in ("CI", "REQUIRE_MODEL_DIGEST", "MODEL_DIGEST", "API_KEY", "AUTH"):
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _environment_as_it_was() -> Iterator[None]:
    """Give every test back the environment it started with.

    `mlflow.set_tracking_uri` writes MLFLOW_TRACKING_URI into os.environ "so that subprocesses
    inherit it"; left there, one test's store leaks into every later test's subprocesses (seen:
    the act drift job read a stale store and found no `production` alias).
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def config() -> Config:
    """The frozen churn fixture config (not the root config.yaml, which a fork replaces)."""
    return load_config(CHURN_CONFIG)


@pytest.fixture(scope="session")
def raw_config() -> dict[str, Any]:
    return yaml.safe_load(CHURN_CONFIG.read_text())


@pytest.fixture(scope="session")
def default_frame(config: Config) -> pd.DataFrame:
    return read_table(config.data_path)


@pytest.fixture
def write_config(tmp_path: Path, raw_config: dict[str, Any]) -> Callable[..., Path]:
    """Write a copy of the churn fixture config, changed by `edit(raw)`, into tmp_path; data path absolute."""

    def make(
        edit: Callable[[dict[str, Any]], None] | None = None, name: str = "config.yaml"
    ) -> Path:
        raw = copy.deepcopy(raw_config)
        raw["data"]["path"] = str(CHURN_CONFIG.parent / raw["data"]["path"])
        if edit is not None:
            edit(raw)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return make


@pytest.fixture(scope="session")
def trained_bundle(
    tmp_path_factory: pytest.TempPathFactory, config: Config, default_frame: pd.DataFrame
) -> Path:
    """A bundle with the default pipeline fitted on the default data (unregistered, threshold 0.5)."""
    from training.model import build_pipeline

    pipeline = build_pipeline(config)
    pipeline.fit(
        feature_frame(default_frame, config.contract), target_vector(default_frame, config.contract)
    )
    metadata = {
        "model_name": config.mlflow.registered_model,
        "model_version": "0",
        "run_id": None,
        "threshold": 0.5,
        "metrics": {},
        "contract": config.contract.model_dump(mode="json"),
        "config_sha256": config.sha256,
    }
    from training.compile import model_files

    return write_bundle(
        tmp_path_factory.mktemp("bundle") / "bundle",
        pipeline,
        metadata,
        model_files(pipeline, config.contract),
    )


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real `mlflow server` on a free 127.0.0.1 port (SQLite backend, proxied artifacts).

    Yields its URL. Job execution is off (2 processes instead of 8); stopped by SIGTERM at the end.
    """
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder}/mlflow.db",
            "--artifacts-destination",
            str(folder / "artifacts"),
        ],
        env={
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {proc.returncode}: "
                    f"{(folder / 'server.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not healthy on {url} after 90 s")
            time.sleep(0.3)
        yield url
    finally:
        # The server runs in its own session; signal the group so its worker exits too.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def fit_bundle(target: Path, config: Config, train: pd.DataFrame, metadata: dict[str, Any]) -> Path:
    """Fit the configured pipeline on `train` and write a bundle with its drift reference."""
    from core.config import TaskType
    from core.task import labels, model_scores, summary_scores
    from training.compile import model_files
    from training.model import build_pipeline
    from validation.profile import build_reference, reference_files

    pipeline = build_pipeline(config)
    features = feature_frame(train, config.contract)
    pipeline.fit(features, target_vector(train, config.contract))
    task = config.contract.target
    scores = model_scores(pipeline, features, task)
    predicted = labels(scores, task, None) if task.type is TaskType.multiclass else None
    reference, profile = build_reference(
        train, summary_scores(scores, task), config.contract, predicted=predicted
    )
    files = {
        **reference_files(reference, profile),
        **model_files(pipeline, config.contract, reference),
    }
    return write_bundle(target, pipeline, metadata, files)


@pytest.fixture(scope="session", params=sorted(TASK_CONFIGS))
def task_bundle(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Config, Path]:
    """Each non-binary shipped example's config and a bundle fitted on its data (once a session)."""
    config = load_config(TASK_CONFIGS[request.param])
    frame = read_table(config.data_path)
    metadata = {
        "model_name": config.mlflow.registered_model,
        "model_version": "0",
        "run_id": None,
        "threshold": None,
        "metrics": {},
        "contract": config.contract.model_dump(mode="json"),
        "config_sha256": config.sha256,
    }
    folder = tmp_path_factory.mktemp(f"bundle-{request.param}") / "bundle"
    return config, fit_bundle(folder, config, frame, metadata)
