"""The pipeline is built from the contract: one branch per feature type, the configured estimator."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.config import FeatureType
from core.frames import feature_frame, target_vector
from training.model import build_pipeline


def test_branches_follow_the_contract(config: Any) -> None:
    pipeline = build_pipeline(config)
    branches = {name: cols for name, _, cols in pipeline.named_steps["preprocess"].transformers}
    for kind in FeatureType:
        assert branches[kind.value] == [f.name for f in config.contract.of_type(kind)]
    assert type(pipeline.named_steps["model"]).__name__ == config.model.estimator.rsplit(".", 1)[1]


def test_unseen_category_and_missing_values_are_handled(config: Any, default_frame: Any) -> None:
    pipeline = build_pipeline(config)
    X = feature_frame(default_frame, config.contract)
    pipeline.fit(X, target_vector(default_frame, config.contract))
    odd = X.head(3).copy()
    odd.iloc[0, odd.columns.get_loc("contract")] = "Ten year"
    odd.iloc[1, odd.columns.get_loc("total_charges")] = np.nan
    proba = pipeline.predict_proba(odd)[:, 1]
    assert np.isfinite(proba).all()
