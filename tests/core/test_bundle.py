"""Bundles are verified before loading: a changed, missing or extra file is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.bundle import (
    MANIFEST_FILE,
    MODEL_FILE,
    load_bundle,
    split_threshold,
    verify_bundle,
    write_bundle,
)
from core.errors import BundleIntegrityError


@pytest.fixture
def bundle_copy(trained_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_bundle, tmp_path / "b"))


def test_round_trip(trained_bundle: Path, config, default_frame) -> None:  # type: ignore[no-untyped-def]
    from core.frames import feature_frame

    bundle = load_bundle(trained_bundle)
    assert bundle.threshold == 0.5
    proba = bundle.pipeline.predict_proba(feature_frame(default_frame.head(50), config.contract))[
        :, 1
    ]
    assert proba.shape == (50,) and np.all((proba >= 0) & (proba <= 1))


def test_one_changed_byte_is_refused(bundle_copy: Path) -> None:
    model = bundle_copy / MODEL_FILE
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(
        BundleIntegrityError, match=rf"{MODEL_FILE} has sha256 .* the bundle was changed"
    ):
        load_bundle(bundle_copy)


def test_missing_manifest_extra_file_and_missing_folder(bundle_copy: Path, tmp_path: Path) -> None:
    (bundle_copy / "evil.py").write_text("print('hi')")
    with pytest.raises(BundleIntegrityError, match=r"not in the manifest: evil\.py"):
        verify_bundle(bundle_copy)
    (bundle_copy / "evil.py").unlink()
    (bundle_copy / MANIFEST_FILE).unlink()
    with pytest.raises(BundleIntegrityError, match=r"MANIFEST\.json is missing"):
        verify_bundle(bundle_copy)
    with pytest.raises(BundleIntegrityError, match="not found"):
        verify_bundle(tmp_path / "nowhere")


def test_write_is_atomic_and_refuses_bad_names(tmp_path: Path) -> None:
    target = tmp_path / "b"
    write_bundle(target, {"a": 1}, {"threshold": 0.3}, {"card.md": "# card"})
    with pytest.raises(BundleIntegrityError, match="not allowed"):
        write_bundle(target, {"a": 2}, {"threshold": 0.3}, {"../escape.txt": "x"})
    # The failed write left the old bundle whole and no staging folders behind.
    assert load_bundle(target).metadata["threshold"] == 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def _thresholded(pipeline: object, threshold: float, pos_label: int = 1) -> object:
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    return FixedThresholdClassifier(
        FrozenEstimator(pipeline),
        threshold=threshold,
        pos_label=pos_label,
        response_method="predict_proba",
    )


def test_the_threshold_comes_from_the_model_and_bundle_json_must_mirror_it(
    trained_bundle: Path, tmp_path: Path
) -> None:
    bare = load_bundle(trained_bundle)
    model = _thresholded(bare.pipeline, 0.3)
    good = write_bundle(tmp_path / "good", model, {**bare.metadata, "threshold": 0.3})
    assert load_bundle(good).threshold == 0.3
    assert split_threshold(load_bundle(good).pipeline)[1] == 0.3
    stale = write_bundle(tmp_path / "stale", model, bare.metadata)  # bundle.json says 0.5
    with pytest.raises(BundleIntegrityError, match=r"says threshold 0\.5, the model carries 0\.3"):
        load_bundle(stale)


def test_a_bare_pipeline_takes_the_threshold_from_bundle_json(
    trained_bundle: Path, tmp_path: Path
) -> None:
    bare = load_bundle(trained_bundle)
    older = write_bundle(tmp_path / "older", bare.pipeline, {**bare.metadata, "threshold": 0.4})
    assert split_threshold(bare.pipeline) == (bare.pipeline, None)
    assert load_bundle(older).threshold == 0.4


def test_a_wrapper_that_labels_another_class_is_refused(trained_bundle: Path) -> None:
    wrong = _thresholded(load_bundle(trained_bundle).pipeline, 0.3, pos_label=0)
    with pytest.raises(
        BundleIntegrityError, match="expected predict_proba at a number for class 1"
    ):
        split_threshold(wrong)
