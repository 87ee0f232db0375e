"""`make retrain`: nothing without drift; with drift a PR body and one branch on a real bare remote."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.columns import REFERENCE_SCORE
from core.config import Config, FeatureType, load_config
from core.errors import DataError, GateRejected, ServiceUnavailable
from core.frames import feature_frame
from core.settings import Settings
from orchestration import retrain as retrain_module
from orchestration.feedback import collect
from orchestration.retrain import Challenger, metric_rows, retrain
from serving.prediction_log import PredictionLog
from tests.serving.conftest import request_records
from validation.drift import detect_drift
from validation.drift_report import write_report


@pytest.fixture
def setup(tmp_path: Path, config: Config, default_frame: pd.DataFrame) -> tuple[Settings, Path]:
    # The challenger is trained for real, as a dry run against an empty local MLflow store.
    settings = Settings(  # type: ignore[call-arg]
        REPORTS_DIR=tmp_path / "reports",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        MLFLOW_ARTIFACT_ROOT=tmp_path / "artifacts",
        PREDICTION_LOG_URL=f"sqlite:///{tmp_path}/log.db",
    )
    PredictionLog(settings.prediction_log_url).close()  # an empty log: no feedback yet
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


def write_drift(
    settings: Settings,
    config: Config,
    frame: pd.DataFrame,
    shift: bool,
    **window: str,
) -> None:
    rows = feature_frame(frame, config.contract)
    rows[REFERENCE_SCORE] = np.random.default_rng(0).random(len(rows))
    reference, current = rows.iloc[:4000], rows.iloc[4000:].copy()
    if shift:
        name = config.contract.of_type(FeatureType.numeric)[0].name
        current[name] = current[name] * 2
    result = detect_drift(reference, current, config.contract, config.drift)
    context = {
        "model": config.mlflow.registered_model,
        "created_at": "2026-11-20T05:17:00+00:00",
        "window": "since 2026-11-13",
        **window,
    }
    write_report(
        settings.reports_dir / "drift", result, context, reference, current, config.contract
    )


def log_traffic(
    settings: Settings, config: Config, frame: pd.DataFrame, rows: range, labelled: range
) -> None:
    """Write predictions of `rows` through the service's log writer; send the true class for `labelled`."""
    log = PredictionLog(settings.prediction_log_url)
    try:
        records = request_records(frame, config.contract, len(rows), rows.start)
        log.submit(
            "1", [(f"req-{i}", 0.5, "No", rec) for i, rec in zip(rows, records, strict=True)]
        )
        assert log.flush()
        target = config.contract.target.name
        for i in labelled:
            assert log.add_feedback(f"req-{i}", str(frame[target].iloc[i]))
    finally:
        log.close()


def branch_file(repo: Path, branch: str, path: str) -> str:
    subprocess.run(["git", "-C", str(repo), "fetch", "-q", "origin"], check=True)
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"origin/{branch}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


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
        retrain(config, settings, repo=repo, push=True)
    write_drift(settings, config, default_frame, shift=False)

    def never(config: Config, settings: Settings) -> Challenger:
        raise AssertionError("trained without drift")

    assert retrain(config, settings, repo=repo, push=True, trainer=never) is None
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
    result = retrain(config, settings, repo=repo, push=True)
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
    again = retrain(config, settings, repo=repo, push=True)
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
        retrain(config, settings, repo=repo, push=True, trainer=rejected)
    assert branches(repo) == ["refs/heads/main"]
    assert "rejected" in (settings.reports_dir / "retrain" / "pr.md").read_text()
    assert (
        json.loads((settings.reports_dir / "retrain" / "challenger.json").read_text())["passed"]
        is False
    )


@pytest.mark.parametrize(("flags", "pushed"), [([], False), (["--push"], True)])
def test_the_command_pushes_only_when_asked(
    flags: list[str], pushed: bool, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []

    def record(config: Config, settings: Settings, **kwargs: object) -> None:
        calls.append(bool(kwargs["push"]))

    monkeypatch.setattr(retrain_module, "retrain", record)
    assert retrain_module.main(["--config", str(config.source), *flags]) == 0
    assert calls == [pushed]


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
            "difference": "+0.0500 ✓",
        },
        {
            "metric": "brier",
            "challenger": "0.1200",
            "champion": "0.1500",
            "difference": "-0.0300 ✓",
        },
    ]


@pytest.fixture
def repo_config(setup: tuple[Settings, Path], write_config: Callable[..., Path]) -> Config:
    """The default config inside the checkout, so data.feedback_path is repo/data/feedback.csv."""
    config = load_config(write_config(name="repo/config.yaml"))
    assert config.feedback_path == setup[1] / "data" / "feedback.csv"
    return config


@pytest.mark.slow
def test_labelled_traffic_trains_the_challenger_and_lands_in_the_branch_once(
    setup: tuple[Settings, Path], repo_config: Config, default_frame: pd.DataFrame
) -> None:
    settings, repo = setup
    config, target = repo_config, repo_config.contract.target.name
    log_traffic(settings, config, default_frame, range(300), labelled=range(120))
    write_drift(settings, config, default_frame, shift=True)
    assert retrain(config, settings, repo=repo, push=False) is None
    written = pd.read_csv(repo / "data" / "feedback.csv")
    assert len(written) == 120 and written["request_id"].is_unique
    truth = {f"req-{i}": default_frame[target].iloc[i] for i in range(120)}
    assert dict(zip(written["request_id"], written[target], strict=True)) == truth
    pr = (settings.reports_dir / "retrain" / "pr.md").read_text()
    assert "**120 new**" in pr and "120 in total in `data/feedback.csv`" in pr
    data = json.loads((settings.reports_dir / "training" / "result.json").read_text())["data"]
    assert data["feedback_rows"] == 120 and data["rows"] == len(default_frame) + 120

    # More labels, one corrected: a second run adds only the new request ids.
    log_traffic(settings, config, default_frame, range(300, 330), labelled=range(300, 330))
    log = PredictionLog(settings.prediction_log_url)
    flipped = next(c for c in config.contract.target.classes if c != truth["req-0"])
    assert log.add_feedback("req-0", flipped)
    log.close()
    result = retrain(config, settings, repo=repo, push=True)
    assert result is not None and result.created
    pushed = pd.read_csv(io.StringIO(branch_file(repo, result.name, "data/feedback.csv")))
    assert len(pushed) == 150 and pushed["request_id"].is_unique
    assert set(pushed["request_id"]) == {f"req-{i}" for i in [*range(120), *range(300, 330)]}
    assert pushed.set_index("request_id").loc["req-0", target] == flipped  # the latest label
    pr = (settings.reports_dir / "retrain" / "pr.md").read_text()
    assert "**30 new**" in pr and "150 in total" in pr
    assert "`data/feedback.csv`: the feedback table" in pr
    # Pushing leaves the checkout as it was.
    assert len(pd.read_csv(repo / "data" / "feedback.csv")) == 120


def test_a_rejected_challenger_leaves_the_checkout_alone_but_saw_the_feedback(
    setup: tuple[Settings, Path], repo_config: Config, default_frame: pd.DataFrame
) -> None:
    settings, repo = setup
    log_traffic(settings, repo_config, default_frame, range(50), labelled=range(0, 50, 2))
    write_drift(settings, repo_config, default_frame, shift=True)
    seen: list[int] = []

    def rejected(config: Config, settings: Settings) -> Challenger:
        assert config.feedback_path is not None and config.feedback_path.parent != repo / "data"
        seen.append(len(pd.read_csv(config.feedback_path)))
        return Challenger(False, "roc_auc 0.70 < min 0.80", {"roc_auc": 0.7}, None, None)

    with pytest.raises(GateRejected):
        retrain(repo_config, settings, repo=repo, push=False, trainer=rejected)
    assert seen == [25]
    assert not (repo / "data").exists() and not (repo / "retraining").exists()


def test_an_unreadable_log_stops_retraining_when_feedback_is_configured(
    setup: tuple[Settings, Path], repo_config: Config, default_frame: pd.DataFrame
) -> None:
    settings, repo = setup
    settings = settings.model_copy(
        update={"prediction_log_url": f"sqlite:///{repo.parent}/no-such-log.db"}
    )
    write_drift(settings, repo_config, default_frame, shift=True)

    def never(config: Config, settings: Settings) -> Challenger:
        raise AssertionError("trained without the feedback the config asks for")

    with pytest.raises(ServiceUnavailable, match=r"no-such-log\.db not found") as raised:
        retrain(repo_config, settings, repo=repo, push=True, trainer=never)
    assert raised.value.exit_code == 6


def test_a_drift_window_from_a_file_gives_its_labelled_rows_once(
    setup: tuple[Settings, Path], repo_config: Config, default_frame: pd.DataFrame
) -> None:
    settings, repo = setup
    window = repo.parent / "window.csv"
    sample = default_frame.iloc[:40].copy()
    sample.loc[sample.index[:10], repo_config.contract.target.name] = None  # unlabelled rows
    unlabelled = sample.assign(**{repo_config.contract.target.name: None})
    unlabelled.to_csv(window, index=False)
    nothing = collect(repo_config, settings, {"current": str(window)})
    assert nothing is not None and nothing.total == 0 and not nothing.changed  # no empty file
    sample.to_csv(window, index=False)
    first = collect(repo_config, settings, {"current": str(window)})
    assert first is not None and first.new == first.total == 30
    assert first.table["request_id"].str.startswith("row-").all()
    assert repo_config.feedback_path is not None
    repo_config.feedback_path.parent.mkdir()
    repo_config.feedback_path.write_bytes(first.csv)
    again = collect(repo_config, settings, {"current": str(window)})
    assert again is not None and again.new == 0 and again.total == 30
    assert first.changed and not again.changed  # nothing to ship the second time
    target = repo_config.contract.target.name
    flipped = sample.loc[sample.index[20], target]
    sample.loc[sample.index[20], target] = "No" if flipped == "Yes" else "Yes"
    sample.to_csv(window, index=False)
    corrected = collect(repo_config, settings, {"current": str(window)})
    assert corrected is not None and corrected.new == 0 and corrected.changed
