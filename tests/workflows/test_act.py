"""The real workflow files, executed with `act` in host mode against a bare git "origin".

Every case runs the real stage targets. GitHub itself, GHCR, Sigstore and Argo CD are not here:
see README.md. The push pipeline that builds, signs and deploys, and drifted traffic opening one
retraining pull request, are steps of test_lifecycle.py (against a real MLflow server); the cases
here are the ones that fork from that path: a rejected gate, traffic without drift, a dead log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from tests.workflows.harness import Repo

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.create(tmp_path)


def edit_config(repo: Repo, edit: Callable[[dict[str, Any]], None]) -> None:
    path = repo.work / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_pull_request_config_job_runs_green_with_stand_ins_and_the_reused_venv(repo: Repo) -> None:
    run = repo.act("pull_request", "ci.yml", job="config")
    assert run.returncode == 0, run.output[-4000:]
    assert run.succeeded("config and data")
    assert "stand-in cache: restored .venv" in run.output
    assert "✓ config config.yaml" in run.output  # make check-config ran in the job
    # make data-check ran in the job: it checks the snapshot when the config names one (a fork's
    # own table may have none).
    snapshot = load_config(repo.work / "config.yaml").data.snapshot
    expected = "check snapshot" if snapshot else "no snapshot source configured"
    assert expected in run.output


def test_push_with_an_impossible_gate_fails_and_deploys_nothing(repo: Repo) -> None:
    edit_config(repo, lambda raw: raw["gate"].update(rules=[{"metric": "roc_auc", "min": 0.9999}]))
    repo.commit("impossible gate")
    before = repo.origin_log()
    run = repo.act("push", "pipeline.yml")
    assert run.returncode != 0
    assert not run.succeeded("validate, train, gate, register, package")
    assert not run.ran("build, smoke-test, push, sign")
    assert not run.ran("deploy to staging (GitOps commit)")
    assert "The pipeline stopped" in run.output and "roc_auc" in run.output  # the job summary
    assert repo.origin_log() == before
    assert not (run.state / "registry" / "pushed.txt").exists()


@dataclass(frozen=True)
class Production:
    """A model trained once in a copy of the repository, with the `production` alias."""

    store: str  # the MLflow store: drift.yml's `make package ALIAS=production` reads it
    bundle: Path
    config: Path


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Production:
    """Train and package once in a copy; the drift cases only read this store."""
    import os
    import subprocess

    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("production")
    copy = Repo.create(tmp)
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": store, "MLFLOW_ARTIFACT_ROOT": str(tmp / "artifacts")}
    for target in ("validate", "train", "package"):
        subprocess.run(["make", target], cwd=copy.work, env={**os.environ, **env}, check=True)
    config = load_config(copy.work / "config.yaml")
    # The drift job compares against the production model: give the candidate that role.
    # Both URIs explicit: MlflowClient otherwise takes the process-wide registry URI, which an
    # earlier test in the same session may have pointed at its own store.
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version_by_alias(config.mlflow.registered_model, "candidate")
    client.set_registered_model_alias(config.mlflow.registered_model, "production", version.version)
    return Production(store, copy.work / "build" / "bundle", copy.work / "config.yaml")


def log_traffic(production: Production, log_url: str) -> None:
    """Serve the production bundle in-process and log undrifted traffic (real rows) to log_url."""
    from fastapi.testclient import TestClient

    from core.data import read_table
    from core.settings import Settings
    from serving.app import create_app

    config = load_config(production.config)
    frame = read_table(config.data_path, config.data.format).sample(600, random_state=1)
    names = [f.name for f in config.contract.features]
    settings = Settings(model_bundle=production.bundle, prediction_log_url=log_url)
    with TestClient(create_app(settings)) as client:
        for record in json.loads(frame[names].to_json(orient="records")):
            assert client.post("/predict", json=record).status_code == 200


def test_traffic_without_drift_opens_nothing(
    repo: Repo, tmp_path: Path, production: Production
) -> None:
    log_url = f"sqlite:///{tmp_path / 'predictions.db'}"
    log_traffic(production, log_url)
    repo.vars["MLFLOW_TRACKING_URI"] = production.store
    repo.secrets["PREDICTION_LOG_URL"] = log_url
    run = repo.act("workflow_dispatch", "drift.yml")
    assert run.returncode == 0, run.output[-6000:]
    assert run.succeeded("drift check")
    assert not run.ran("retrain and open the pull request")
    assert repo.origin_branches() == ["main"]
    assert not (run.state / "prs").exists()


def test_an_unreachable_prediction_log_fails_the_drift_run_and_retrains_nothing(
    repo: Repo, tmp_path: Path, production: Production
) -> None:
    repo.vars["MLFLOW_TRACKING_URI"] = production.store
    # A log the drift command cannot open: an error (exit 6), never a verdict.
    repo.secrets["PREDICTION_LOG_URL"] = f"sqlite:///{tmp_path}/missing/dir/log.db"
    run = repo.act("workflow_dispatch", "drift.yml")
    assert run.returncode != 0
    assert not run.succeeded("drift check")
    assert not run.ran("retrain and open the pull request")
    assert repo.origin_branches() == ["main"]
