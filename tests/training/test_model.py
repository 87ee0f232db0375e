"""The pipeline is built from the contract: one branch per feature type, the configured estimator."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.bundle import split_threshold
from core.config import FeatureType, load_config
from core.frames import feature_frame, target_vector
from tests.conftest import REVIEWS_CONFIG
from training.data import Part
from training.model import build_pipeline, with_threshold


def test_branches_follow_the_contract(config: Any) -> None:
    pipeline = build_pipeline(config)
    branches = {name: cols for name, _, cols in pipeline.named_steps["preprocess"].transformers}
    for kind in FeatureType:
        if kind is FeatureType.text:  # one branch per text feature, on its one column
            for f in config.contract.of_type(kind):
                assert branches[f"text_{f.name}"] == f.name
        else:
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


def test_with_threshold_labels_at_the_threshold_without_refitting(
    config: Any, default_frame: Any
) -> None:
    X = feature_frame(default_frame, config.contract)
    y = target_vector(default_frame, config.contract)
    pipeline = build_pipeline(config).fit(X, y)
    before = pipeline.predict_proba(X)
    model = with_threshold(pipeline, 0.3, Part(X.head(100), y[:100]))
    # Fitted on 100 rows, yet the probabilities are the full pipeline's: nothing was refitted.
    np.testing.assert_array_equal(model.predict_proba(X), before)
    np.testing.assert_array_equal(model.predict(X) == 1, before[:, 1] >= 0.3)
    assert split_threshold(model) == (pipeline, 0.3)


def test_a_text_feature_is_one_tfidf_branch_of_words_and_characters() -> None:
    reviews = load_config(REVIEWS_CONFIG)
    (text,) = reviews.contract.of_type(FeatureType.text)
    pipeline = build_pipeline(reviews)
    branches = {n: t for n, t, _ in pipeline.named_steps["preprocess"].transformers}
    union = branches[f"text_{text.name}"]
    analysers = {name: v.get_params() for name, v in union.transformer_list}
    assert analysers["word"]["ngram_range"] == tuple(reviews.model.text.word_ngrams or ())
    assert analysers["char"]["analyzer"] == "char_wb"
    assert analysers["char"]["ngram_range"] == tuple(reviews.model.text.char_ngrams or ())
