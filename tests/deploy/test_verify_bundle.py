"""The bundle check the Dockerfile runs during the build."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.bundle import METADATA_FILE, MODEL_FILE
from core.errors import BundleIntegrityError
from deploy.verify_bundle import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def verify(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the command's main in process (it is what `python -m deploy.verify_bundle` calls)."""

    def run(*args: str) -> Result:
        code = main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def test_a_good_bundle_passes_with_matching_labels(
    trained_bundle: Path, verify: Callable[..., Result]
) -> None:
    name = json.loads((trained_bundle / METADATA_FILE).read_text())["model_name"]
    proc = verify(str(trained_bundle), "--model-version", "0", "--model-name", name)
    assert proc.returncode == 0, proc.stderr
    assert "version 0" in proc.stdout and "match the manifest" in proc.stdout


@pytest.fixture
def copy(trained_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_bundle, tmp_path / "bundle"))


def labels_of(bundle: Path) -> list[str]:
    """The build arguments `make image` passes for this bundle's labels."""
    metadata = json.loads((bundle / METADATA_FILE).read_text())
    return ["--model-name", metadata["model_name"], "--model-version", metadata["model_version"]]


@pytest.mark.parametrize("missing", ["--model-name", "--model-version"])
def test_a_label_missing_where_the_bundle_has_it_stops_the_build(
    copy: Path, verify: Callable[..., Result], missing: str
) -> None:
    # The pipeline's image job once built with no build arguments: empty labels, skipped check.
    args = labels_of(copy)
    args[args.index(missing) + 1] = ""
    proc = verify(str(copy), *args)
    assert proc.returncode == BundleIntegrityError.exit_code
    assert f"no {missing.removeprefix('--').replace('-', '_')} label" in proc.stderr


def test_a_changed_file_stops_the_build(copy: Path, verify: Callable[..., Result]) -> None:
    with (copy / MODEL_FILE).open("ab") as fh:
        fh.write(b"\0")
    proc = verify(str(copy), *labels_of(copy))
    assert proc.returncode == BundleIntegrityError.exit_code
    assert MODEL_FILE in proc.stderr and proc.stderr.count("\n") == 1


def test_labels_that_name_another_model_stop_the_build(
    copy: Path, verify: Callable[..., Result]
) -> None:
    proc = verify(str(copy), "--model-name", labels_of(copy)[1], "--model-version", "12")
    assert proc.returncode == BundleIntegrityError.exit_code
    assert "model_version is '0'" in proc.stderr and "'12'" in proc.stderr


def test_a_missing_bundle_is_one_line(tmp_path: Path, verify: Callable[..., Result]) -> None:
    proc = verify(str(tmp_path / "nope"))
    assert proc.returncode == BundleIntegrityError.exit_code
    assert "not found" in proc.stderr
