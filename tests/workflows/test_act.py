"""The real workflow files, executed with `act` in host mode against a bare git "origin".

Every case runs the real stage targets. GitHub itself, GHCR, Sigstore and Argo CD are not here:
see README.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from tests.workflows.harness import Repo, git

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


def test_push_on_good_data_commits_the_signed_digest_to_the_staging_overlay(repo: Repo) -> None:
    before = repo.origin_log()
    run = repo.act("push", "pipeline.yml")
    assert run.returncode == 0, run.output[-6000:]
    pushed = (run.state / "registry" / "pushed.txt").read_text().split()
    image = pushed[0]  # ghcr.io/<owner>/<repo>@sha256:<64 hex>
    assert re.fullmatch(r"ghcr\.io/[\w./-]+@sha256:[0-9a-f]{64}", image)
    assert image in (run.state / "registry" / "signatures.txt").read_text()
    builds = [
        json.loads(p.read_text())
        for p in (run.state / "registry" / "images").glob("*/build-*.json")
    ]
    (build,) = [b for b in builds if b["pushed"]]
    assert build["sbom"] == "true" and build["provenance"] == "mode=max"
    assert image.endswith(build["digest"])
    after = repo.origin_log()
    assert len(after) == len(before) + 1, "one GitOps commit on the remote"
    overlay = git(repo.origin, "show", "main:infra/k8s/overlays/staging/kustomization.yaml")
    assert image.split("@")[1] in overlay
    changed = git(repo.origin, "diff", "--name-only", before[0].split()[0], "main").splitlines()
    assert changed and all(p.startswith("infra/k8s/overlays/staging/") for p in changed)


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


def production_traffic(repo: Repo, tmp_path: Path, *, drifted: bool) -> dict[str, str]:
    """Train and package in the copy, serve it in-process, log traffic; return the act settings."""
    import os
    import subprocess

    from fastapi.testclient import TestClient

    from core.config import load_config
    from core.data import read_table
    from core.settings import Settings
    from serving.app import create_app

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_url = f"sqlite:///{tmp_path / 'predictions.db'}"
    env = {"MLFLOW_TRACKING_URI": store, "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts")}
    for target in ("validate", "train", "package"):
        subprocess.run(["make", target], cwd=repo.work, env={**os.environ, **env}, check=True)
    config = load_config(repo.work / "config.yaml")
    # The drift job compares against the production model: give the candidate that role.
    from mlflow import MlflowClient

    # Both URIs explicit: MlflowClient otherwise takes the process-wide registry URI, which an
    # earlier test in the same session may have pointed at its own store.
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version_by_alias(config.mlflow.registered_model, "candidate")
    client.set_registered_model_alias(config.mlflow.registered_model, "production", version.version)
    frame = read_table(config.data_path, config.data.format).sample(600, random_state=1)
    names = [f.name for f in config.contract.features]
    if drifted:
        numeric = [f for f in config.contract.features if f.type.value == "numeric"]
        for feature in numeric:
            frame[feature.name] = frame[feature.name].max()
    settings = Settings(model_bundle=repo.work / "build" / "bundle", prediction_log_url=log_url)
    target = config.contract.target.name
    with TestClient(create_app(settings)) as client:
        records = json.loads(frame[names].to_json(orient="records"))
        for record, label in zip(records, frame[target].astype(str), strict=True):
            answer = client.post("/predict", json=record)
            assert answer.status_code == 200
            if drifted:  # ground truth comes back for the drifted window: the retrain uses it
                feedback = {"request_id": answer.json()["request_id"], "label": label}
                assert client.post("/feedback", json=feedback).status_code == 200
    return {"MLFLOW_TRACKING_URI": store, "PREDICTION_LOG_URL": log_url}


def test_drifted_traffic_opens_one_retraining_pr_and_a_second_run_still_one(
    repo: Repo, tmp_path: Path
) -> None:
    settings = production_traffic(repo, tmp_path, drifted=True)
    repo.vars["MLFLOW_TRACKING_URI"] = settings["MLFLOW_TRACKING_URI"]
    repo.secrets["PREDICTION_LOG_URL"] = settings["PREDICTION_LOG_URL"]
    for attempt in (1, 2):
        run = repo.act("workflow_dispatch", "drift.yml")
        assert run.returncode == 0, run.output[-6000:]
        assert run.succeeded("retrain and open the pull request"), f"attempt {attempt}"
        branches = [b for b in repo.origin_branches() if b.startswith("retrain/")]
        assert branches == ["retrain/drift"], branches
        records = list((run.state / "prs").glob("*.json"))
        assert len(records) == 1
        pr = json.loads(records[0].read_text())
        assert pr["number"] == 1 and pr["labels"] == ["retrain"] and pr["body"].strip()
        # The labelled rows are in the pull request, so its merge trains on what was gated.
        shipped = git(repo.origin, "show", "retrain/drift:data/feedback.csv")
        assert len(shipped.strip().splitlines()) == 1 + 600


def test_traffic_without_drift_opens_nothing(repo: Repo, tmp_path: Path) -> None:
    settings = production_traffic(repo, tmp_path, drifted=False)
    repo.vars["MLFLOW_TRACKING_URI"] = settings["MLFLOW_TRACKING_URI"]
    repo.secrets["PREDICTION_LOG_URL"] = settings["PREDICTION_LOG_URL"]
    run = repo.act("workflow_dispatch", "drift.yml")
    assert run.returncode == 0, run.output[-6000:]
    assert run.succeeded("drift check")
    assert not run.ran("retrain and open the pull request")
    assert repo.origin_branches() == ["main"]
    assert not (run.state / "prs").exists()


def test_an_unreachable_prediction_log_fails_the_drift_run_and_retrains_nothing(
    repo: Repo, tmp_path: Path
) -> None:
    settings = production_traffic(repo, tmp_path, drifted=False)
    repo.vars["MLFLOW_TRACKING_URI"] = settings["MLFLOW_TRACKING_URI"]
    # A log the drift command cannot open: an error (exit 6), never a verdict.
    repo.secrets["PREDICTION_LOG_URL"] = f"sqlite:///{tmp_path}/missing/dir/log.db"
    run = repo.act("workflow_dispatch", "drift.yml")
    assert run.returncode != 0
    assert not run.succeeded("drift check")
    assert not run.ran("retrain and open the pull request")
    assert repo.origin_branches() == ["main"]
