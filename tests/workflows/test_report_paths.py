"""Every training report a workflow reads is one the real training writes (no stub in between)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.config import DEFAULT_CONFIG
from tests.workflows.harness import ROOT
from training.report import PR_COMMENT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# A file path under reports/training/ anywhere in a workflow: env values, `run:` and `with: path:`.
TRAINING_FILE = re.compile(r"reports/training/[\w./-]*\.\w+")


def training_paths_read() -> set[str]:
    """Return the reports/training/ files the workflows name, relative to reports/training/."""
    found = {m for path in WORKFLOWS for m in TRAINING_FILE.findall(path.read_text())}
    return {p.removeprefix("reports/training/") for p in found}


def test_the_workflows_read_the_comment_training_names() -> None:
    assert PR_COMMENT in training_paths_read()


@pytest.mark.slow
def test_every_training_report_a_workflow_reads_is_written_by_a_real_dry_run(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "REPORTS_DIR": str(tmp_path / "reports"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "MODEL_BUNDLE": str(tmp_path / "bundle"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    run = subprocess.run(
        [sys.executable, "-m", "orchestration.train", "--dry-run", "--config", str(DEFAULT_CONFIG)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    read = training_paths_read()
    assert read, "no workflow reads a training report: the pattern is stale"
    written = tmp_path / "reports" / "training"
    missing = sorted(p for p in read if not (written / p).is_file())
    assert not missing, f"workflows read {missing}, training wrote {sorted(os.listdir(written))}"


def test_the_pull_request_dry_run_reads_the_team_registry_and_never_writes_it() -> None:
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job = ci["jobs"]["dry-run"]
    runs = [str(step.get("run", "")) for step in job["steps"]]
    trains = [r for r in runs if "make train" in r]
    assert trains and all("DRY_RUN=1" in r for r in trains), trains
    assert "vars.MLFLOW_TRACKING_URI" in job["env"]["MLFLOW_TRACKING_URI"]
