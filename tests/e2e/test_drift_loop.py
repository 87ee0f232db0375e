"""The drift loop across processes: serve -> simulate -> make drift -> make retrain -> branch."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.config import Config
from core.prediction_log import read_predictions
from tests.conftest import fit_bundle
from tests.serving.conftest import start_server

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


def serve_and_simulate(scenario: str, env: dict[str, str], held_out: Path, tmp: Path) -> None:
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
            env=env,
        )
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()  # graceful: the prediction log is flushed


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["covariate", "none"])
def test_drift_loop(
    scenario: str, tmp_path: Path, config: Config, default_frame: pd.DataFrame
) -> None:
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
        "CONFIG_PATH": str(config.source),
    }
    serve_and_simulate(scenario, env, held_out_path, tmp_path)

    drift = run("-m", "orchestration.drift", "--config", str(config.source), env=env)
    expected = 10 if scenario == "covariate" else 0
    assert drift.returncode == expected, drift.stdout + drift.stderr
    # The window is recorded to its newest row, so the retrain reads exactly these rows again.
    context = json.loads((tmp_path / "reports" / "drift" / "report.json").read_text())["context"]
    assert {"since", "until", "limit"} <= set(context) and context["until"] >= context["since"]
    argv = ["-m", "orchestration.retrain", "--config", str(config.source), "--repo", str(repo)]
    retrain = run(*argv, "--push", env=env)
    assert retrain.returncode == 0, retrain.stdout + retrain.stderr
    heads = subprocess.run(
        ["git", "ls-remote", "--heads", str(remote)], capture_output=True, text=True, check=True
    ).stdout
    retrain_heads = [line for line in heads.splitlines() if "refs/heads/retrain/" in line]
    if scenario == "covariate":
        assert len(retrain_heads) == 1
        assert (tmp_path / "reports" / "retrain" / "pr.md").is_file()
        # The labelled traffic is in the branch, as the table the challenger was trained on.
        branch = retrain_heads[0].split("\t")[1].removeprefix("refs/heads/")
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
    else:
        assert retrain_heads == []
