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

from core.config import Config
from core.metrics import all_metrics
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
