"""The bundle check the Dockerfile runs during the build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import BundleIntegrityError

ROOT = Path(__file__).resolve().parents[2]


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.verify_bundle", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_good_bundle_passes_with_matching_labels(trained_bundle: Path) -> None:
    proc = verify(str(trained_bundle), "--model-version", "0", "--model-name", "")
    assert proc.returncode == 0, proc.stderr
    assert "version 0" in proc.stdout and "match the manifest" in proc.stdout


@pytest.fixture
def copy(trained_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_bundle, tmp_path / "bundle"))


def test_a_changed_file_stops_the_build(copy: Path) -> None:
    with (copy / "model.joblib").open("ab") as fh:
        fh.write(b"\0")
    proc = verify(str(copy))
    assert proc.returncode == BundleIntegrityError.exit_code
    assert "model.joblib" in proc.stderr and proc.stderr.count("\n") == 1


def test_labels_that_name_another_model_stop_the_build(copy: Path) -> None:
    proc = verify(str(copy), "--model-version", "12")
    assert proc.returncode == BundleIntegrityError.exit_code
    assert "model_version is '0'" in proc.stderr and "'12'" in proc.stderr


def test_a_missing_bundle_is_one_line(tmp_path: Path) -> None:
    proc = verify(str(tmp_path / "nope"))
    assert proc.returncode == BundleIntegrityError.exit_code
    assert "not found" in proc.stderr
