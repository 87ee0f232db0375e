"""The shipped examples of the other tasks (multiclass, regression) and of a text feature run
through every stage that exists, by config alone.

Each stage that lands adds its make target to `make pipeline`; this test runs that same target
on each example's config in a real process, so a stage that hard-codes the default data, the
binary task or the tabular feature types breaks it. A second binary tabular table runs the same
way as a fork in tests/repo/test_fork.py (its own data in config.yaml, then `make test-fast`);
examples/credit is checked by the config-driven fast tests (tests.conftest.CONFIGS).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from core.config import load_config
from tests.conftest import REVIEWS_CONFIG, TASK_CONFIGS

ROOT = Path(__file__).resolve().parents[2]
# The text example (TF-IDF in the pipeline) is served by the sklearn runtime: it does not compile.
EXAMPLES = {"reviews": REVIEWS_CONFIG, **TASK_CONFIGS}


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_pipeline_runs_on_each_example_by_config_alone(tmp_path: Path, example: str) -> None:
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
    proc = subprocess.run(
        ["make", "pipeline", f"CONFIG={config.source.relative_to(ROOT)}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"project {config.project}" in proc.stdout
    assert "✓ pipeline finished" in proc.stdout
    # The gate judged the task's own metric, and the service answered as the task does.
    assert f"{config.gate.baseline.metric} vs baseline" in proc.stdout
    smoke = json.loads((tmp_path / "reports" / "stage" / "smoke.json").read_text())
    assert smoke["passed"] and smoke["predictions"], smoke
    served = smoke["predictions"][0]["served"]
    answer = {"binary": "probability", "multiclass": "probabilities", "regression": "value"}
    assert answer[config.contract.target.type.value] in served
