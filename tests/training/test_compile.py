"""The compiler: what compiles, what does not, the probes, and the threshold rule at packaging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from core.bundle import load_bundle
from core.compiled import ARRAYS_FILE, COMPILED_FILE, PROBES_FILE, from_files, load_probes
from core.config import Config
from core.errors import BundleIntegrityError
from core.frames import feature_frame, target_vector
from training.compile import compile_pipeline, model_files


def _thresholded(pipeline: Any, threshold: float, cls: Any = FixedThresholdClassifier) -> Any:
    return cls(
        FrozenEstimator(pipeline), threshold=threshold, pos_label=1, response_method="predict_proba"
    )


def test_the_default_pipeline_compiles_and_round_trips_through_its_files(
    trained_bundle: Path, config: Config, default_frame: pd.DataFrame
) -> None:
    pipeline = load_bundle(trained_bundle).pipeline
    compiled = compile_pipeline(pipeline, config.contract)
    assert compiled is not None and compiled.source == "LogisticRegression"
    description, arrays = compiled.to_files()
    again = from_files(json.loads(json.dumps(description)), arrays, "test")
    frame = default_frame[config.contract.feature_names]
    columns = {c: frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame}
    expected = pipeline.predict_proba(feature_frame(default_frame, config.contract))[:, 1]
    np.testing.assert_allclose(again.predict(columns, len(frame)), expected, rtol=0, atol=1e-12)


def test_a_model_carrying_its_threshold_compiles_and_its_probes_carry_the_labels(
    tmp_path: Path, trained_bundle: Path, config: Config
) -> None:
    model = _thresholded(load_bundle(trained_bundle).pipeline, 0.3)
    files = model_files(model, config.contract)
    assert {COMPILED_FILE, ARRAYS_FILE, PROBES_FILE} <= set(files)
    (tmp_path / PROBES_FILE).write_bytes(files[PROBES_FILE])
    probes = load_probes(tmp_path)
    assert probes is not None and probes.threshold == 0.3 and probes.positive is not None
    np.testing.assert_array_equal(probes.positive, probes.scores >= 0.3)
    assert 0 < probes.positive.sum() < len(probes.records)


def test_unknown_steps_do_not_compile(config: Config, default_frame: pd.DataFrame) -> None:
    numeric = [f.name for f in config.contract.features if f.type.value != "categorical"]
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("log", FunctionTransformer(np.log1p), ["tenure"]),
                        ("rest", "passthrough", numeric[:3]),
                    ]
                ),
            ),
            ("model", HistGradientBoostingClassifier(max_iter=5)),
        ]
    )
    pipeline.fit(
        feature_frame(default_frame, config.contract),
        target_vector(default_frame, config.contract),
    )
    assert compile_pipeline(pipeline, config.contract) is None
    assert set(model_files(pipeline, config.contract)) == {PROBES_FILE}


def test_a_model_whose_own_labels_break_the_threshold_rule_is_not_packaged(
    trained_bundle: Path, config: Config
) -> None:
    class Contrary(FixedThresholdClassifier):  # type: ignore[misc]
        def predict(self, X: Any) -> Any:
            return 1 - super().predict(X)

    model = _thresholded(load_bundle(trained_bundle).pipeline, 0.3, Contrary)
    with pytest.raises(BundleIntegrityError, match=r"own labels differ from score >= 0\.3"):
        model_files(model, config.contract)
