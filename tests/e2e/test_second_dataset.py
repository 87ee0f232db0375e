"""A second, different data set runs through every stage that exists, by config alone.

Each stage that lands adds its make target to `make pipeline`; this test runs that same target
on each example config (examples/credit, examples/reviews) in a real process, so a stage that hard-codes the default data
breaks it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


EXAMPLES = {
    "credit": ("examples/credit/config.yaml", "credit-scoring"),
    # A text feature: TF-IDF in the pipeline, served by the sklearn runtime (it does not compile).
    "reviews": ("examples/reviews/config.yaml", "food-reviews"),
}


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_pipeline_runs_on_the_second_dataset(tmp_path: Path, example: str) -> None:
    config, project = EXAMPLES[example]
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
        ["make", "pipeline", f"CONFIG={config}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"project {project}" in proc.stdout
    assert "✓ pipeline finished" in proc.stdout
