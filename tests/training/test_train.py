"""Fitting: reproducible, and a bad estimator or hyper-parameter is a config error naming the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.config import Config, load_config
from core.errors import ConfigError
from core.metrics import all_metrics, metric_value
from training import evaluate
from training.data import load_dataset
from training.model import fit


def test_same_data_config_and_seed_give_the_same_metrics_and_predictions(config: Config) -> None:
    runs = []
    for _ in range(2):
        ds = load_dataset(config)
        pipeline = fit(config, ds)
        p_val = pipeline.predict_proba(ds.validation.X)[:, 1]
        threshold = evaluate.choose_threshold(ds.validation.y, p_val, "f1")
        p_test = pipeline.predict_proba(ds.test.X)[:, 1]
        runs.append((p_test, all_metrics(ds.test.y, p_test, threshold)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_hist_gradient_boosting_is_reproducible_with_the_seed(
    write_config: Callable[..., Path],
) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["model"]["estimator"] = "sklearn.ensemble.HistGradientBoostingClassifier"
        raw["model"]["params"] = {"max_iter": 10, "early_stopping": True}

    config = load_config(write_config(edit))
    ds = load_dataset(config)
    a = fit(config, ds).predict_proba(ds.test.X)
    b = fit(config, ds).predict_proba(ds.test.X)
    np.testing.assert_array_equal(a, b)


def test_unknown_estimator_is_a_config_error(write_config: Callable[..., Path]) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["model"]["estimator"] = "sklearn.linear_model.NoSuchModel"

    with pytest.raises(ConfigError, match=r"model: estimator.*no class 'NoSuchModel'"):
        load_config(write_config(edit))


def test_bad_hyper_parameter_value_names_the_parameter(write_config: Callable[..., Path]) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["model"]["params"] = {"C": -1.0}

    config = load_config(write_config(edit))
    with pytest.raises(ConfigError, match=r"model\.params.*'C' parameter"):
        fit(config, load_dataset(config))


def test_default_estimator_reaches_the_gate_on_the_default_data(config: Config) -> None:
    ds = load_dataset(config)
    p = fit(config, ds).predict_proba(ds.test.X)[:, 1]
    roc_rule = next(r for r in config.gate.rules if r.metric == "roc_auc")
    assert roc_rule.min is not None
    assert metric_value("roc_auc", ds.test.y, p, 0.5) >= roc_rule.min
