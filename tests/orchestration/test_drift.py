"""`make drift` end to end on files: exit codes for drift, no drift and every kind of bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.bundle import bundle_digest, write_bundle
from core.columns import FEEDBACK, REFERENCE_LABEL, REFERENCE_SCORE, SCORE
from core.config import Config, FeatureType, load_config
from core.prediction_log import read_predictions
from core.settings import get_settings
from orchestration.drift import main, normalise_window
from tests.conftest import REVIEWS_CONFIG, fit_bundle
from validation.drift import DRIFT_EXIT_CODE

Runner = Callable[..., int]


@pytest.fixture(scope="module")
def split(default_frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = default_frame.sample(frac=1, random_state=0).reset_index(drop=True)
    return shuffled.iloc[:4500], shuffled.iloc[4500:].reset_index(drop=True)


@pytest.fixture(scope="module")
def bundle(
    tmp_path_factory: pytest.TempPathFactory,
    config: Config,
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> Path:
    train, _ = split
    metadata = {
        "model_name": config.mlflow.registered_model,
        "model_version": "3",
        "threshold": 0.5,
        "metrics": {"test": {"roc_auc": 0.84}},
    }
    return fit_bundle(tmp_path_factory.mktemp("drift") / "bundle", config, train, metadata)


@pytest.fixture
def run(
    tmp_path: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch, config: Config
) -> Iterator[Runner]:
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("MODEL_BUNDLE", str(bundle))
    # The anchor `make package` would have recorded for this bundle.
    monkeypatch.setenv("MODEL_DIGEST", bundle_digest(bundle))
    monkeypatch.setenv("PREDICTION_LOG_URL", f"sqlite:///{tmp_path}/missing/dir/log.db")
    get_settings.cache_clear()

    def call(frame: pd.DataFrame | None, *extra: str, name: str = "window.csv") -> int:
        args = ["--config", str(config.source), *extra]
        if frame is not None:
            path = tmp_path / name
            frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
            args += ["--current", str(path)]
        return main(args)

    yield call
    get_settings.cache_clear()


def report(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "reports" / "drift" / "report.json").read_text())


@pytest.mark.slow
def test_held_out_rows_are_no_drift_and_the_report_has_plots(
    run: Runner, split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    _, held_out = split
    assert run(held_out.iloc[:1000]) == 0
    out = report(tmp_path)
    assert out["verdict"] == "no drift" and out["context"]["model_version"] == "3"
    assert out["performance"]["n_labelled"] == 1000  # the target column is used as feedback
    html = (tmp_path / "reports" / "drift" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(out["features"]) + 1
    assert "| feature |" in (tmp_path / "reports" / "drift" / "report.md").read_text()


@pytest.mark.slow
def test_shifted_rows_are_drift_with_the_drift_exit_code(
    run: Runner,
    split: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, held_out = split
    shifted = held_out.iloc[:1000].copy()
    numeric = config.contract.of_type(FeatureType.numeric)[0].name
    shifted[numeric] = shifted[numeric] * 1.8
    assert run(shifted, name="window.parquet") == DRIFT_EXIT_CODE == 10
    out = report(tmp_path)
    assert out["drifted"] is True
    assert numeric in out["reasons"][0]
    github_output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    get_settings.cache_clear()
    run(shifted)
    assert github_output.read_text() == "drift=true\nverdict=drift\n"
    # What drift.yml runs (make drift VERDICT_ONLY=1): exit 0, the output alone says drift.
    github_output.unlink()
    assert run(shifted, "--verdict-only") == 0
    assert github_output.read_text() == "drift=true\nverdict=drift\n"


def test_a_small_window_is_not_enough_data_and_exits_zero(
    run: Runner,
    split: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(split[1].iloc[:50]) == 0
    assert report(tmp_path)["verdict"] == "not enough data"
    assert "verdict: not enough data" in capsys.readouterr().out


def test_bad_windows_name_the_problem(
    run: Runner,
    split: tuple[pd.DataFrame, pd.DataFrame],
    config: Config,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, held_out = split
    assert run(held_out.iloc[:0]) == 3
    assert "only a header, no data rows" in capsys.readouterr().err
    name = config.contract.feature_names[2]
    assert run(held_out.drop(columns=[name])) == 3
    assert name in capsys.readouterr().err
    other = held_out.iloc[:500].assign(model_version="4")
    assert run(other) == 3
    err = capsys.readouterr().err
    assert "version(s) 4" in err and "version 3" in err
    bad_label = held_out.iloc[:500].assign(**{config.contract.target.name: "maybe"})
    assert run(bad_label) == 3
    assert "'maybe'" in capsys.readouterr().err
    assert run(None, "--since", "yesterday") == 3


def test_an_unreachable_prediction_log_is_service_unavailable(
    run: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(None) == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prediction" in err[0]


def test_a_tampered_or_reference_less_bundle_is_refused(
    run: Runner,
    bundle: Path,
    tmp_path: Path,
    split: tuple[pd.DataFrame, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    (copy / "reference_profile.json").write_text("{}")
    assert run(split[1], "--bundle", str(copy)) == 5
    assert "sha256" in capsys.readouterr().err
    from core.bundle import load_bundle

    loaded = load_bundle(bundle)
    bare = write_bundle(tmp_path / "bare", loaded.pipeline, loaded.metadata)
    assert run(split[1], "--bundle", str(bare), "--expected-digest", bundle_digest(bare)) == 5
    assert "reference.parquet" in capsys.readouterr().err


# --- the prediction log after a rollout: version 3 replaced version 2 -----------------------------


def log_rows(
    url: str, version: str, frame: pd.DataFrame, config: Config, bundle: Path, prefix: str
) -> None:
    """Log `frame`'s rows as served by `version`, scored by the bundle's model (one timestamp)."""
    from core.bundle import load_bundle
    from serving.prediction_log import PredictionLog
    from tests.serving.conftest import request_records

    scores = load_bundle(bundle).pipeline.predict_proba(frame[config.contract.feature_names])[:, 1]
    records = request_records(frame, config.contract, len(frame))
    log = PredictionLog(url)
    try:
        rows = [
            (f"{prefix}-{i}", float(s), "x", r)
            for i, (s, r) in enumerate(zip(scores, records, strict=True))
        ]
        assert log.submit(version, rows)
        assert log.flush()
    finally:
        log.close()
    time.sleep(0.01)  # the next batch gets a later timestamp


@pytest.fixture
def log_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/log.db"
    monkeypatch.setenv("PREDICTION_LOG_URL", url)
    get_settings.cache_clear()
    return url


@pytest.mark.slow
def test_after_a_rollout_the_window_starts_when_the_version_began_serving(
    run: Runner,
    log_url: str,
    split: tuple[pd.DataFrame, pd.DataFrame],
    config: Config,
    bundle: Path,
    tmp_path: Path,
) -> None:
    _, held_out = split
    log_rows(log_url, "2", held_out.iloc[:300], config, bundle, "before")
    log_rows(log_url, "3", held_out.iloc[300:900], config, bundle, "after")
    log_rows(log_url, "2", held_out.iloc[900:940], config, bundle, "late")  # a straggler replica
    assert run(None) == 0
    out = report(tmp_path)
    assert out["verdict"] == "no drift" and out["n_current"] == 600
    assert out["context"]["other_versions"] == {"2": 40}
    first = read_predictions(log_url).query("model_version == '3'")["ts"].min()
    assert pd.Timestamp(out["context"]["since"]) == first
    markdown = (tmp_path / "reports" / "drift" / "report.md").read_text()
    assert "Left out 40 rows of other model versions" in markdown and "version 2: 40" in markdown


def test_right_after_a_deploy_there_is_not_enough_data_instead_of_an_error(
    run: Runner,
    log_url: str,
    split: tuple[pd.DataFrame, pd.DataFrame],
    config: Config,
    bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, held_out = split
    log_rows(log_url, "2", held_out.iloc[:300], config, bundle, "before")
    assert run(None) == 0  # version 3 has served nothing yet
    out = report(tmp_path)
    assert out["verdict"] == "not enough data" and out["n_current"] == 0
    assert out["context"]["other_versions"] == {"2": 300}
    assert "verdict: not enough data" in capsys.readouterr().out
    log_rows(log_url, "3", held_out.iloc[300:350], config, bundle, "after")
    assert run(None) == 0  # 50 rows < drift.min_samples
    out = report(tmp_path)
    assert out["verdict"] == "not enough data" and out["n_current"] == 50
    assert out["context"]["other_versions"] == {}


def test_a_file_whose_target_is_named_score_gives_labels_not_scores() -> None:
    """examples/reviews' target is `score`, the prediction log's name for the model's score."""
    contract = load_config(REVIEWS_CONFIG).contract
    (text,) = contract.feature_names
    positive = contract.target.positive
    raw = pd.DataFrame({text: ["fine food", "stale"], contract.target.name: [positive, "other"]})
    window, _ = normalise_window(raw, contract, "window.csv", logged=False)
    assert REFERENCE_SCORE not in window.columns  # the bundle's model scores the rows instead
    assert window[REFERENCE_LABEL].tolist() == [1.0, 0.0]
    # In the prediction log the same column name is the model's score.
    logged = pd.DataFrame({text: raw[text], SCORE: [0.9, 0.2], FEEDBACK: [None, "other"]})
    window, _ = normalise_window(logged, contract, "the prediction log")
    assert window[REFERENCE_SCORE].tolist() == [0.9, 0.2]
    assert window[REFERENCE_LABEL].fillna(-1).tolist() == [-1.0, 0.0]
