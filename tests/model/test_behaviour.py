"""Behaviour of the trained default model, not just the code: invariance, direction, quality.

The model is the configured pipeline fitted on the training split of the default data; every check
runs on the held-out test rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.config import Config, FeatureType, load_config
from core.metrics import all_metrics
from tests.conftest import ROOT_CONFIG
from training import evaluate
from training.data import load_dataset
from training.model import fit


@dataclass(frozen=True)
class Model:
    pipeline: Any
    X: pd.DataFrame
    y: np.ndarray
    threshold: float

    def proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(X)[:, 1])


@pytest.fixture(scope="module")
def model(config: Config) -> Model:
    ds = load_dataset(config)
    pipeline = fit(config, ds)
    p_val = pipeline.predict_proba(ds.validation.X)[:, 1]
    threshold = evaluate.choose_threshold(ds.validation.y, p_val, config.model.threshold.objective)
    return Model(pipeline, ds.test.X, ds.test.y, threshold)


def test_gender_does_not_flip_decisions(model: Model) -> None:
    # Invariance: `female` should not matter for churn; swapping it may move a score a little,
    # but must flip almost no decision.
    swapped = model.X.assign(female=1.0 - model.X["female"])
    before, after = model.proba(model.X), model.proba(swapped)
    flipped = np.mean((before >= model.threshold) != (after >= model.threshold))
    assert flipped < 0.02
    assert np.abs(after - before).max() < 0.05


def test_an_id_like_change_in_row_order_changes_nothing(model: Model) -> None:
    shuffled = model.X.sample(frac=1.0, random_state=1)
    np.testing.assert_allclose(
        model.proba(shuffled), pd.Series(model.proba(model.X), index=model.X.index)[shuffled.index]
    )


def test_longer_tenure_lowers_churn_risk(model: Model) -> None:
    # Direction: the same customer, a year longer with the company, is less likely to churn.
    rows = model.X[model.X["tenure"] <= 48]
    longer = rows.assign(tenure=rows["tenure"] + 12)
    assert (model.proba(longer) < model.proba(rows)).mean() > 0.95


def test_two_year_contract_lowers_churn_risk_against_month_to_month(model: Model) -> None:
    rows = model.X[model.X["contract"] == "Month-to-month"]
    two_year = rows.assign(contract="Two year")
    assert (model.proba(two_year) < model.proba(rows)).all()


def test_minimum_quality_on_held_out_rows(model: Model, config: Config) -> None:
    p = model.proba(model.X)
    metrics = all_metrics(model.y, p, model.threshold)
    assert metrics["roc_auc"] >= 0.80
    assert metrics["recall"] >= 0.50
    # Better than predicting the base rate for everyone.
    assert metrics["brier"] < float(np.mean((model.y.mean() - model.y) ** 2))


# The checks the root config declares (model.behaviour), on the model it trains: a fork lists its
# own, and with none listed these tests are not collected.
DECLARED = load_config(ROOT_CONFIG).model.behaviour


@pytest.fixture(scope="module")
def root_model() -> tuple[Config, Model]:
    config = load_config(ROOT_CONFIG)
    ds = load_dataset(config)
    pipeline = fit(config, ds)
    p_val = pipeline.predict_proba(ds.validation.X)[:, 1]
    threshold = evaluate.choose_threshold(ds.validation.y, p_val, config.model.threshold.objective)
    return config, Model(pipeline, ds.test.X, ds.test.y, threshold)


def _changed(config: Config, X: pd.DataFrame, name: str) -> pd.DataFrame:
    """Change one feature on every row: flip a boolean, move a category on, shuffle a number."""
    feature = config.contract.feature(name)
    column = X[name]
    if feature.type is FeatureType.boolean:
        return X.assign(**{name: 1.0 - column})
    if feature.type is FeatureType.categorical:
        cats = feature.categories or []
        following = {c: cats[(i + 1) % len(cats)] for i, c in enumerate(cats)}
        return X.assign(**{name: column.map(following).astype(column.dtype)})
    return X.assign(**{name: column.sample(frac=1.0, random_state=0).to_numpy()})


@pytest.mark.parametrize("name", DECLARED.invariant)
def test_a_declared_invariant_feature_flips_almost_no_decision(
    name: str, root_model: tuple[Config, Model]
) -> None:
    config, model = root_model
    before = model.proba(model.X) >= model.threshold
    after = model.proba(_changed(config, model.X, name)) >= model.threshold
    assert np.mean(before != after) < 0.02


@pytest.mark.parametrize(
    ("name", "sign"),
    [(n, 1) for n in DECLARED.increasing] + [(n, -1) for n in DECLARED.decreasing],
)
def test_a_declared_direction_holds_on_almost_every_row(
    name: str, sign: int, root_model: tuple[Config, Model]
) -> None:
    model = root_model[1]
    rows = model.X.dropna(subset=[name])
    step = float(rows[name].std()) or 1.0
    raised = rows.assign(**{name: rows[name] + step})
    moved = sign * (model.proba(raised) - model.proba(rows))
    assert np.mean(moved >= 0) > 0.95
