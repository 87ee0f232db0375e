"""The drift loop across processes: serve -> simulate -> make drift -> make retrain -> branch."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.config import Config
from core.frames import feature_frame, target_vector
from core.metrics import CALIBRATION_ERROR, calibration_error
from core.prediction_log import read_predictions
from tests.conftest import fit_bundle
from tests.serving.conftest import start_server
from training.model import build_pipeline

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@x",
}


def run(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def serve_and_simulate(
    scenario: str, env: dict[str, str], held_out: Path, tmp: Path, *extra: str
) -> None:
    """Serve the bundle the way the image does, send the scenario's traffic, stop with SIGTERM."""
    server = start_server(
        tmp,
        bundle=Path(env["MODEL_BUNDLE"]),
        config=Path(env["CONFIG_PATH"]),
        log_url=env["PREDICTION_LOG_URL"],
        env=env,
    )
    try:
        done = run(
            "-m",
            "tools.simulate",
            "--config",
            env["CONFIG_PATH"],
            "--scenario",
            scenario,
            "-n",
            "400",
            "--url",
            server.url,
            "--data",
            str(held_out),
            *extra,
            env=env,
        )
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()  # graceful: the prediction log is flushed


def fork_and_env(
    tmp_path: Path, bundle: Path, config_path: Path
) -> tuple[Path, Path, dict[str, str]]:
    """A bare remote and its clone for the retraining branch, and the loop's environment."""
    remote, repo = tmp_path / "remote.git", tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(repo)], check=True)
    (repo / "README.md").write_text("fork\n")
    for args in (["add", "."], ["commit", "-qm", "init"], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env={**os.environ, **GIT_ENV})
    env = {
        **os.environ,
        "MODEL_BUNDLE": str(bundle),
        "PREDICTION_LOG_URL": f"sqlite:///{tmp_path}/log.db",
        "REPORTS_DIR": str(tmp_path / "reports"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "CONFIG_PATH": str(config_path),
    }
    return remote, repo, env


def retrain_heads(remote: Path) -> list[str]:
    heads = subprocess.run(
        ["git", "ls-remote", "--heads", str(remote)], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in heads.splitlines() if "refs/heads/retrain/" in line]


@pytest.mark.e2e
@pytest.mark.slow
def test_drifted_labelled_traffic_lands_in_one_retraining_branch(
    tmp_path: Path, config: Config, default_frame: pd.DataFrame
) -> None:
    # Traffic without drift opening nothing is tested on the drift workflow under act
    # (tests/workflows/test_act.py: the same `make drift` and `make retrain` in processes).
    shuffled = default_frame.sample(frac=1, random_state=0).reset_index(drop=True)
    train, held_out = shuffled.iloc[:5000], shuffled.iloc[5000:]
    held_out_path = tmp_path / "held_out.csv"
    held_out.to_csv(held_out_path, index=False)
    metadata = {
        "model_name": config.mlflow.registered_model,
        "model_version": "1",
        "threshold": 0.5,
        "metrics": {},
        "contract": config.contract.model_dump(mode="json"),
        "config_sha256": config.sha256,
    }
    bundle = fit_bundle(tmp_path / "bundle", config, train, metadata)
    remote, repo, env = fork_and_env(tmp_path, bundle, config.source)
    serve_and_simulate("covariate", env, held_out_path, tmp_path)

    drift = run("-m", "orchestration.drift", "--config", str(config.source), env=env)
    assert drift.returncode == 10, drift.stdout + drift.stderr
    # The window is recorded to its newest row, so the retrain reads exactly these rows again.
    context = json.loads((tmp_path / "reports" / "drift" / "report.json").read_text())["context"]
    assert {"since", "until", "limit"} <= set(context) and context["until"] >= context["since"]
    argv = ["-m", "orchestration.retrain", "--config", str(config.source), "--repo", str(repo)]
    retrain = run(*argv, "--push", env=env)
    assert retrain.returncode == 0, retrain.stdout + retrain.stderr
    heads = retrain_heads(remote)
    assert len(heads) == 1
    assert (tmp_path / "reports" / "retrain" / "pr.md").is_file()
    # The labelled traffic is in the branch, as the table the challenger was trained on.
    branch = heads[0].split("\t")[1].removeprefix("refs/heads/")
    pushed = subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"{branch}:data/feedback.csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = pd.read_csv(io.StringIO(pushed))
    logged = read_predictions(env["PREDICTION_LOG_URL"])
    labelled = logged[logged["feedback"].notna()]
    assert len(labelled) >= 200 and len(table) == len(labelled)
    assert set(table["request_id"]) == set(labelled["request_id"])
    target = config.contract.target.name
    assert dict(zip(table["request_id"], table[target], strict=True)) == dict(
        zip(labelled["request_id"], labelled["feedback"], strict=True)
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_an_estimated_drop_alone_opens_a_retraining_branch(
    tmp_path: Path,
    config: Config,
    default_frame: pd.DataFrame,
    write_config: Callable[..., Path],
) -> None:
    """Unlabelled traffic the model ranks badly: no feedback, no feature or score can count, and
    still the estimated roc_auc drop makes the verdict drift and `make retrain` pushes a branch."""

    def estimate_only(raw: dict[str, Any]) -> None:
        raw["drift"]["psi_threshold"] = 100.0  # no feature nor the score can reach it

    config_path = write_config(estimate_only)
    shuffled = default_frame.sample(frac=1, random_state=1).reset_index(drop=True)
    train, held_out = shuffled.iloc[:5000], shuffled.iloc[5000:].reset_index(drop=True)
    # The calibration check training makes, on held-out rows of the same (deterministic) model.
    model = build_pipeline(config).fit(
        feature_frame(train, config.contract), target_vector(train, config.contract)
    )
    scores = model.predict_proba(feature_frame(held_out, config.contract))[:, 1]
    labels = target_vector(held_out, config.contract)
    metadata = {
        "model_name": config.mlflow.registered_model,
        "model_version": "1",
        "threshold": 0.5,
        "metrics": {CALIBRATION_ERROR: calibration_error(labels, scores)},
        "contract": config.contract.model_dump(mode="json"),
        "config_sha256": config.sha256,
    }
    assert metadata["metrics"][CALIBRATION_ERROR] <= config.drift.max_calibration_error
    bundle = fit_bundle(tmp_path / "bundle", config, train, metadata)
    # Traffic: held-out customers with middling scores, a selection on the features alone.
    lo, hi = np.quantile(scores, [0.4, 0.6])
    middling = tmp_path / "middling.csv"
    held_out[(scores >= lo) & (scores <= hi)].to_csv(middling, index=False)

    remote, repo, env = fork_and_env(tmp_path, bundle, config_path)
    serve_and_simulate("none", env, middling, tmp_path, "--feedback-share", "0")

    drift = run("-m", "orchestration.drift", "--config", str(config_path), env=env)
    assert drift.returncode == 10, drift.stdout + drift.stderr
    report = json.loads((tmp_path / "reports" / "drift" / "report.json").read_text())
    assert report["performance"] is None  # no labels at all
    assert report["estimate"]["status"] == "drift"
    assert [r for r in report["reasons"] if not r.startswith("estimated roc_auc")] == []
    assert (
        "Performance estimated from the scores"
        in (tmp_path / "reports" / "drift" / "report.md").read_text()
    )

    argv = ["-m", "orchestration.retrain", "--config", str(config_path), "--repo", str(repo)]
    retrain = run(*argv, "--push", env=env)
    assert retrain.returncode == 0, retrain.stdout + retrain.stderr
    assert len(retrain_heads(remote)) == 1
    assert "estimated roc_auc" in (tmp_path / "reports" / "retrain" / "pr.md").read_text()
