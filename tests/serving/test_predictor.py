"""The compiled scoring path against the sklearn pipeline, its fallback, and micro-batching."""

from __future__ import annotations

import asyncio
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
from core.config import Config, load_config
from core.data import read_table
from core.errors import BundleIntegrityError
from core.frames import feature_frame, target_vector
from serving.predictor import MicroBatcher, Predictor, as_columns, compile_pipeline
from tests.conftest import CREDIT_CONFIG
from tests.serving.conftest import request_records
from training.model import build_pipeline


def test_compiled_path_matches_sklearn_on_the_whole_default_data(
    trained_bundle: Path, config: Config, default_frame: pd.DataFrame
) -> None:
    bundle = load_bundle(trained_bundle)
    predictor = Predictor(bundle.pipeline, config.contract)
    assert predictor.mode == "compiled"
    recs = request_records(default_frame, config.contract, len(default_frame))
    expected = bundle.pipeline.predict_proba(feature_frame(default_frame, config.contract))[:, 1]
    np.testing.assert_allclose(predictor(recs), expected, rtol=0, atol=1e-6)
    # one record at a time takes the same path as a batch
    for i in (0, 488, 7042):  # 488 has a missing total_charges
        assert predictor([recs[i]])[0] == pytest.approx(expected[i], abs=1e-6)


@pytest.mark.slow
def test_compiled_path_matches_on_the_second_dataset_with_trees_and_missing_categories() -> None:
    # HistGradientBoosting compares values with learnt thresholds: the compiled scaling must be
    # bit-for-bit sklearn's, or probabilities jump. Categorical nulls go through the imputer.
    credit = load_config(CREDIT_CONFIG)
    frame = read_table(credit.data_path)
    pipeline = build_pipeline(credit).fit(
        feature_frame(frame, credit.contract), target_vector(frame, credit.contract)
    )
    predictor = Predictor(pipeline, credit.contract)
    assert predictor.mode == "compiled"
    recs = request_records(frame, credit.contract, len(frame))
    expected = pipeline.predict_proba(feature_frame(frame, credit.contract))[:, 1]
    np.testing.assert_allclose(predictor(recs), expected, rtol=0, atol=1e-6)


def test_unknown_steps_fall_back_to_sklearn(config: Config, default_frame: pd.DataFrame) -> None:
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
    x = feature_frame(default_frame, config.contract)
    pipeline.fit(x, target_vector(default_frame, config.contract))
    assert compile_pipeline(pipeline, config.contract) is None
    predictor = Predictor(pipeline, config.contract)
    assert predictor.mode == "sklearn"
    recs = request_records(default_frame, config.contract, 20)
    np.testing.assert_allclose(predictor(recs), pipeline.predict_proba(x.iloc[:20])[:, 1])


def test_unseen_category_scores_like_sklearn(
    trained_bundle: Path, config: Config, records: list[dict[str, Any]]
) -> None:
    # OneHotEncoder(handle_unknown="ignore"): a category the contract allows but training never saw
    bundle = load_bundle(trained_bundle)
    predictor = Predictor(bundle.pipeline, config.contract)
    rec = {**records[0], "contract": "Never seen"}
    reference = predictor.sklearn(as_columns([rec], config.contract.feature_names))
    assert predictor([rec])[0] == pytest.approx(reference[0], abs=1e-12)


def test_micro_batcher_scores_concurrent_requests_together(records: list[dict[str, Any]]) -> None:
    calls: list[int] = []

    def score(batch: Any) -> np.ndarray:
        calls.append(len(batch))
        return np.array([float(r["tenure"]) for r in batch])

    async def run() -> list[float]:
        batcher = MicroBatcher(score, max_batch=16)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.score(r) for r in records[:40]))
        finally:
            await batcher.stop()

    results = asyncio.run(run())
    assert results == [float(r["tenure"]) for r in records[:40]]
    assert sum(calls) == 40 and max(calls) == 16 and len(calls) == 3


def test_a_scoring_failure_fails_its_requests_not_the_batcher(
    records: list[dict[str, Any]],
) -> None:
    def score(batch: Any) -> np.ndarray:
        if any(r.get("boom") for r in batch):
            raise ValueError("bad")
        return np.zeros(len(batch))

    async def run() -> tuple[BaseException | float, float]:
        batcher = MicroBatcher(score, offload=True)
        batcher.start()
        try:
            first = await asyncio.gather(batcher.score({"boom": 1}), return_exceptions=True)
            return first[0], await batcher.score({"boom": 0})
        finally:
            await batcher.stop()

    failed, ok = asyncio.run(run())
    assert isinstance(failed, ValueError) and ok == 0.0


def _thresholded(pipeline: Any, threshold: float, cls: Any = FixedThresholdClassifier) -> Any:
    return cls(
        FrozenEstimator(pipeline),
        threshold=threshold,
        pos_label=1,
        response_method="predict_proba",
    )


def test_a_model_carrying_its_threshold_compiles_and_reads_it(
    trained_bundle: Path, config: Config, default_frame: pd.DataFrame
) -> None:
    bare = load_bundle(trained_bundle).pipeline
    predictor = Predictor(_thresholded(bare, 0.3), config.contract)
    assert predictor.mode == "compiled" and predictor.threshold == 0.3
    assert Predictor(bare, config.contract).threshold is None
    recs = request_records(default_frame, config.contract, 500)
    np.testing.assert_array_equal(predictor(recs), Predictor(bare, config.contract)(recs))


def test_a_model_whose_own_labels_break_the_threshold_rule_is_refused(
    trained_bundle: Path, config: Config
) -> None:
    class Contrary(FixedThresholdClassifier):  # type: ignore[misc]
        def predict(self, X: Any) -> Any:
            return 1 - super().predict(X)

    model = _thresholded(load_bundle(trained_bundle).pipeline, 0.3, Contrary)
    with pytest.raises(BundleIntegrityError, match=r"own labels differ from score >= 0\.3"):
        Predictor(model, config.contract)
