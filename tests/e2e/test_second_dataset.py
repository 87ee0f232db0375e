"""The shipped examples of the other tasks (multiclass, regression) and of a text feature run
through every stage that exists, by config alone, and then through the drift → retrain loop.

Each stage that lands adds its make target to `make pipeline`; this test runs that same target
on each example's config in a real process, so a stage that hard-codes the default data, the
binary task or the tabular feature types breaks it. On the same run's stores it then feeds `make
drift` a window of the example's own rows where one feature moved (chosen from the contract) and
`make retrain` the verdict, so the loop speaks each task's own metrics against the champion the
pipeline registered. A second binary tabular table runs the same way as a fork in
tests/repo/test_fork.py (its own data in config.yaml, then `make test-fast`); examples/credit is
checked by the config-driven fast tests (tests.conftest.CONFIGS); the default's loop, through a
served model and its prediction log, is tests/e2e/test_drift_loop.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from core.config import Config, FeatureType, TaskType, load_config
from core.data import read_table
from tests.conftest import REVIEWS_CONFIG, TASK_CONFIGS

ROOT = Path(__file__).resolve().parents[2]
# The text example (TF-IDF in the pipeline) is served by the sklearn runtime: it does not compile.
EXAMPLES = {"reviews": REVIEWS_CONFIG, **TASK_CONFIGS}
WINDOW_ROWS = 600


def make(target: str, config: Config, env: dict[str, str], *variables: str) -> str:
    """Run `make <target> CONFIG=<config>` from the repository root; return its output."""
    proc = subprocess.run(
        ["make", target, f"CONFIG={config.source.relative_to(ROOT)}", *variables],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, f"make {target}: " + proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def drifted_window(config: Config) -> tuple[pd.DataFrame, str]:
    """Rows of the example's own data in the upper part of one feature, labels included.

    The feature is the contract's text (ranked by length), else its numeric feature with the most
    distinct values: a selection, so the true labels stay true and serve as feedback.
    """
    frame = read_table(config.data_path, config.data.format, config.contract)
    texts = config.contract.of_type(FeatureType.text)
    if texts:
        moved = texts[0].name
        key = frame[moved].str.len()
    else:
        numeric = config.contract.of_type(FeatureType.numeric)
        moved = max((f.name for f in numeric), key=lambda name: frame[name].nunique())
        key = frame[moved]
    upper = frame[key > key.quantile(0.6)]
    return upper.sample(min(WINDOW_ROWS, len(upper)), random_state=0), moved


def point_champion(config: Config, env: dict[str, str], version: str) -> None:
    """Point the champion alias at `version`: what aliases.yml does once production runs it."""
    from mlflow import MlflowClient

    uri = env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(
        config.mlflow.registered_model, config.gate.champion.alias, version
    )


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_pipeline_and_drift_loop_run_on_each_example_by_config_alone(
    tmp_path: Path, example: str
) -> None:
    config = load_config(EXAMPLES[example])
    # Every output of the run goes to tmp_path, through the same environment variables a user sets.
    env = {
        **os.environ,
        "REPORTS_DIR": str(tmp_path / "reports"),
        "MODEL_BUNDLE": str(tmp_path / "bundle"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "PREDICTION_LOG_URL": f"sqlite:///{tmp_path}/predictions.db",
    }
    out = make("pipeline", config, env)
    assert f"project {config.project}" in out
    assert "✓ pipeline finished" in out
    # The gate judged the task's own metric, and the service answered as the task does.
    assert f"{config.gate.baseline.metric} vs baseline" in out
    smoke = json.loads((tmp_path / "reports" / "stage" / "smoke.json").read_text())
    assert smoke["passed"] and smoke["predictions"], smoke
    served = smoke["predictions"][0]["served"]
    task = config.contract.target.type
    answer = {"binary": "probability", "multiclass": "probabilities", "regression": "value"}
    assert answer[task.value] in served

    # The loop, on the same stores: a window where one feature moved, its labels as feedback.
    window, moved = drifted_window(config)
    current = tmp_path / "current.csv"
    window.to_csv(current, index=False)
    make("drift", config, env, f"CURRENT={current}", "VERDICT_ONLY=1")
    drift = json.loads((tmp_path / "reports" / "drift" / "report.json").read_text())
    assert drift["drifted"], drift["reasons"]
    assert any(moved in reason for reason in drift["reasons"]), drift["reasons"]
    # The labels came along: the live metric is the task's own, on every row of the window.
    assert drift["performance"]["metric"] == config.drift.performance_metric
    assert drift["performance"]["n_labelled"] == len(window)

    point_champion(config, env, "1")  # the version the pipeline registered
    checkout = tmp_path / "checkout"
    make("retrain", config, env, f"REPO={checkout}")
    challenger = json.loads((tmp_path / "reports" / "retrain" / "challenger.json").read_text())
    assert challenger["passed"], challenger["gate"]
    assert challenger["champion_version"] == "1"
    champion_metric = config.gate.champion.metric
    assert champion_metric in challenger["champion_metrics"]
    pr = (tmp_path / "reports" / "retrain" / "pr.md").read_text()
    assert "Champion: version 1. Gate: **passed**" in pr
    assert f"| {champion_metric} |" in pr
    if task is not TaskType.binary:
        assert "roc_auc" not in pr
    assert f"**{len(window)} new** labelled production row(s)" in pr
    (packet,) = (checkout / "retraining").iterdir()
    assert (packet / "pr.md").read_text() == pr
    assert config.data.feedback_path is not None
    feedback = pd.read_csv(checkout / config.data.feedback_path)
    assert len(feedback) == len(window)
