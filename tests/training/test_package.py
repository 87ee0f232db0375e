"""`make package`: a verified bundle from the registered candidate; a changed byte is refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.bundle import MODEL_FILE, load_bundle
from core.columns import REFERENCE_SCORE
from core.config import Config
from core.errors import BundleIntegrityError
from core.frames import feature_frame
from core.metrics import CALIBRATION_ERROR
from tests.conftest import ROOT
from tests.training.conftest import Trained, env_for, settings_for
from training.package import package_candidate
from validation.profile import load_reference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle_dir(embedded_run: Trained, config: Config) -> Path:
    return package_candidate(config, embedded_run.settings)


def test_bundle_holds_the_candidate_with_its_metadata(
    bundle_dir: Path, embedded_run: Trained, config: Config
) -> None:
    bundle = load_bundle(bundle_dir)
    meta = bundle.metadata
    for key in (
        "model_name",
        "model_version",
        "run_id",
        "threshold",
        "metrics",
        "contract",
        "config_sha256",
        "data_sha256",
        "created_at",
    ):
        assert meta.get(key) is not None, key
    result = embedded_run.result
    assert meta["run_id"] == result.run_id and meta["model_version"] == result.version
    assert bundle.threshold == pytest.approx(result.threshold)
    assert meta["metrics"]["roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    # The drift check's estimate before labels reads the test part's calibration error from here.
    assert meta["metrics"][CALIBRATION_ERROR] == pytest.approx(result.metrics[CALIBRATION_ERROR])
    assert 0 <= meta["metrics"][CALIBRATION_ERROR] < 0.1
    card = (bundle_dir / "model_card.md").read_text()
    assert "## Intended use" in card and "## Limits" in card and "roc_auc" in card
    from mlflow import MlflowClient

    uri = embedded_run.settings.mlflow_tracking_uri
    logged = MlflowClient(uri, uri).download_artifacts(result.run_id, "model_card.md")
    assert Path(logged).read_text() == card


def test_reference_sample_and_profile_match_the_contract(bundle_dir: Path, config: Config) -> None:
    frame, profile = load_reference(bundle_dir, config.contract)
    assert list(frame.columns) == [*config.contract.feature_names, REFERENCE_SCORE]
    assert frame[REFERENCE_SCORE].between(0, 1).all()
    assert profile["size"] == len(frame) <= 20_000
    assert set(profile["features"]) == set(config.contract.feature_names)
    tenure = profile["features"]["tenure"]
    assert sum(tenure["histogram"]["counts"]) == frame["tenure"].notna().sum()
    freqs = profile["features"]["contract"]["shares"]
    assert set(freqs) == {"Month-to-month", "One year", "Two year"}
    assert sum(freqs.values()) == pytest.approx(1.0)
    # The stored scores are what the bundled pipeline predicts for those rows.
    bundle = load_bundle(bundle_dir)
    again = bundle.pipeline.predict_proba(feature_frame(frame, config.contract))[:, 1]
    np.testing.assert_allclose(again, frame[REFERENCE_SCORE].to_numpy(), rtol=1e-9)


def test_a_changed_byte_is_refused(bundle_dir: Path, tmp_path: Path, config: Config) -> None:
    copy = Path(shutil.copytree(bundle_dir, tmp_path / "bundle"))
    data = bytearray((copy / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="changed after packaging"):
        load_bundle(copy)
    with pytest.raises(BundleIntegrityError):
        load_reference(copy, config.contract)


def test_package_without_a_candidate_says_to_train_first(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.package", "--config", str(ROOT / "config.yaml")],
        cwd=ROOT,
        env=env_for(settings_for(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 8, proc.stderr
    assert "run `make train` first" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "bundle").exists()
