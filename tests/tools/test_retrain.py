"""`make retrain`: nothing without drift; with drift a PR body and one branch on a real bare remote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import Config, FeatureType
from core.errors import DataError, GateRejected
from core.frames import feature_frame
from core.settings import Settings
from tools.retrain import Challenger, metric_rows, retrain
from validation.drift import detect_drift
from validation.drift_report import write_report
from validation.profile import SCORE_COLUMN


@pytest.fixture
def setup(tmp_path: Path, config: Config, default_frame: pd.DataFrame) -> tuple[Settings, Path]:
    # The challenger is trained for real, as a dry run against an empty local MLflow store.
    settings = Settings(  # type: ignore[call-arg]
        REPORTS_DIR=tmp_path / "reports",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        MLFLOW_ARTIFACT_ROOT=tmp_path / "artifacts",
    )
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = tmp_path / "repo"
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("x\n")
    for args in (
        ["add", "."],
        ["commit", "-qm", "init"],
        ["remote", "add", "origin", str(remote)],
        ["push", "-q", "origin", "main"],
    ):
        subprocess.run(
            ["git", "-C", str(repo), *args], check=True, env={**env, "PATH": "/usr/bin:/bin"}
        )
    return settings, repo


def write_drift(settings: Settings, config: Config, frame: pd.DataFrame, shift: bool) -> None:
    rows = feature_frame(frame, config.contract)
    rows[SCORE_COLUMN] = np.random.default_rng(0).random(len(rows))
    reference, current = rows.iloc[:4000], rows.iloc[4000:].copy()
    if shift:
        name = config.contract.of_type(FeatureType.numeric)[0].name
        current[name] = current[name] * 2
    result = detect_drift(reference, current, config.contract, config.drift)
    context = {
        "model": config.mlflow.registered_model,
        "created_at": "2026-11-20T05:17:00+00:00",
        "window": "since 2026-11-13",
    }
    write_report(
        settings.reports_dir / "drift", result, context, reference, current, config.contract
    )


def branches(repo: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), "ls-remote", "--heads", "origin"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line.split("\t")[1] for line in out.splitlines())


@pytest.mark.slow
def test_no_drift_means_no_training_and_no_branch(
    setup: tuple[Settings, Path], config: Config, default_frame: pd.DataFrame
) -> None:
    settings, repo = setup
    with pytest.raises(DataError, match="make drift first"):
        retrain(config, settings, repo=repo)
    write_drift(settings, config, default_frame, shift=False)

    def never(config: Config, settings: Settings) -> Challenger:
        raise AssertionError("trained without drift")

    assert retrain(config, settings, repo=repo, trainer=never) is None
    assert branches(repo) == ["refs/heads/main"]
    assert not (settings.reports_dir / "retrain").exists()


@pytest.mark.slow
def test_drift_gives_a_pr_body_and_one_branch_per_model(
    setup: tuple[Settings, Path], config: Config, default_frame: pd.DataFrame
) -> None:
    settings, repo = setup
    out = repo.parent / "github_output"
    settings = settings.model_copy(update={"github_output": out})
    write_drift(settings, config, default_frame, shift=True)
    result = retrain(config, settings, repo=repo)
    assert result is not None and result.created
    name = f"retrain/{config.mlflow.registered_model}-2026-11-20"
    assert result.name == name and branches(repo) == ["refs/heads/main", f"refs/heads/{name}"]
    pr = (settings.reports_dir / "retrain" / "pr.md").read_text()
    assert "## Champion vs challenger" in pr and "| roc_auc |" in pr and "**drift**" in pr
    subprocess.run(["git", "-C", str(repo), "fetch", "-q", "origin"], check=True)
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", f"origin/{name}"],
        capture_output=True,
        text=True,
        check=True,
    )
    folder = f"retraining/{name.split('/', 1)[1]}"
    assert {f"{folder}/pr.md", f"{folder}/drift-report.json", f"{folder}/drift-report.html"} <= set(
        listed.stdout.split()
    )
    assert out.read_text().splitlines() == [f"branch={name}", "created=true", f"folder={folder}"]
    again = retrain(config, settings, repo=repo)
    assert (
        again is not None
        and not again.created
        and branches(repo) == ["refs/heads/main", f"refs/heads/{name}"]
    )


@pytest.mark.slow
def test_no_push_writes_the_packet_into_the_checkout_for_the_workflow(
    setup: tuple[Settings, Path], config: Config, default_frame: pd.DataFrame
) -> None:
    settings, repo = setup
    write_drift(settings, config, default_frame, shift=True)
    assert retrain(config, settings, repo=repo, push=False) is None
    assert branches(repo) == ["refs/heads/main"]
    folder = repo / "retraining" / f"{config.mlflow.registered_model}-2026-11-20"
    assert (folder / "pr.md").read_text() == (
        settings.reports_dir / "retrain" / "pr.md"
    ).read_text()
    assert json.loads((folder / "drift-report.json").read_text())["drifted"] is True


@pytest.mark.slow
def test_a_rejected_challenger_pushes_nothing(
    setup: tuple[Settings, Path], config: Config, default_frame: pd.DataFrame
) -> None:
    settings, repo = setup
    write_drift(settings, config, default_frame, shift=True)

    def rejected(config: Config, settings: Settings) -> Challenger:
        return Challenger(False, "roc_auc 0.70 < min 0.80", {"roc_auc": 0.7}, None, None)

    with pytest.raises(GateRejected, match=r"roc_auc 0\.70"):
        retrain(config, settings, repo=repo, trainer=rejected)
    assert branches(repo) == ["refs/heads/main"]
    assert "rejected" in (settings.reports_dir / "retrain" / "pr.md").read_text()
    assert (
        json.loads((settings.reports_dir / "retrain" / "challenger.json").read_text())["passed"]
        is False
    )


def test_metric_rows_say_which_way_is_better() -> None:
    rows = metric_rows(
        Challenger(
            True, "", {"roc_auc": 0.85, "brier": 0.12}, {"roc_auc": 0.80, "brier": 0.15}, "2"
        )
    )
    assert rows == [
        {
            "metric": "roc_auc",
            "challenger": "0.8500",
            "champion": "0.8000",
            "change": "+0.0500 (better)",
        },
        {
            "metric": "brier",
            "challenger": "0.1200",
            "champion": "0.1500",
            "change": "-0.0300 (better)",
        },
    ]
