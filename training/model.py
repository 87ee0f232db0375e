"""Build the sklearn Pipeline (preprocessing from the contract + the configured estimator)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from core.bundle import POSITIVE_LABEL
from core.config import Config, FeatureType, resolve_estimator
from core.errors import ConfigError
from training.data import Dataset, Part


def build_preprocessor(config: Config) -> ColumnTransformer:
    """One branch per feature type, with the columns taken from the contract."""
    contract = config.contract
    numeric = [f.name for f in contract.of_type(FeatureType.numeric)]
    boolean = [f.name for f in contract.of_type(FeatureType.boolean)]
    categorical = [f.name for f in contract.of_type(FeatureType.categorical)]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numeric,
            )
        )
    if boolean:
        transformers.append(("boolean", SimpleImputer(strategy="most_frequent"), boolean))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    for feature in contract.of_type(FeatureType.text):
        # One column name, not a list: a vectoriser reads a 1-D column of documents.
        transformers.append((f"text_{feature.name}", text_vectoriser(config), feature.name))  # type: ignore[arg-type]
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def text_vectoriser(config: Config) -> FeatureUnion:
    """TF-IDF of word and character n-grams side by side, as `model.text` configures them."""
    spec = config.model.text
    common: dict[str, Any] = {
        "lowercase": spec.lowercase,
        "sublinear_tf": spec.sublinear_tf,
        "min_df": spec.min_df,
        "max_features": spec.max_features,
        "dtype": np.float64,
    }
    parts: list[tuple[str, Any]] = []
    if spec.word_ngrams is not None:
        parts.append(("word", TfidfVectorizer(ngram_range=spec.word_ngrams, **common)))
    if spec.char_ngrams is not None:
        parts.append(
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=spec.char_ngrams, **common))
        )
    return FeatureUnion(parts)


def build_pipeline(config: Config) -> Pipeline:
    """The full model: preprocessing then the estimator named in the config, seeded."""
    cls = resolve_estimator(config.model.estimator)
    params = dict(config.model.params)
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = config.model.seed
    return Pipeline([("preprocess", build_preprocessor(config)), ("model", cls(**params))])


def fit(config: Config, ds: Dataset) -> Pipeline:
    """Fit the configured pipeline on the training part; a bad hyper-parameter is a ConfigError."""
    pipeline = build_pipeline(config)
    try:
        pipeline.fit(ds.train.X, ds.train.y)
    except (ValueError, TypeError) as exc:
        text = str(exc).splitlines()[0]
        raise ConfigError(f"model.params ({config.model.estimator}): {text}") from None
    return pipeline


def with_threshold(
    pipeline: Pipeline, threshold: float, part: Part, positive_class: int = POSITIVE_LABEL
) -> FixedThresholdClassifier:
    """Wrap the fitted pipeline so its `predict` labels `positive_class` at `threshold`.

    What gets registered carries its decision threshold, so `mlflow models serve`, `spark_udf`,
    the service and `make score` all label alike. The pipeline is frozen, not refitted: `fit` on
    `part` (the rows the threshold was chosen on) only records the fitted pipeline and its input
    columns; `predict_proba` passes through unchanged.
    """
    model = FixedThresholdClassifier(
        FrozenEstimator(pipeline),
        threshold=float(threshold),
        pos_label=positive_class,
        response_method="predict_proba",
    )
    return model.fit(part.X, part.y)
