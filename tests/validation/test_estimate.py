"""Performance estimated before labels: calibrated synthetic scores, the unavailable cases, the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.columns import REFERENCE_SCORE
from core.config import TASK_METRICS, Contract, Drift, TaskType
from core.metrics import (
    CALIBRATION_ERROR,
    calibration_error,
    expected_metric,
    metric_value,
    vector_expected_metric,
)
from validation.drift import detect_drift
from validation.estimate import estimate_performance

CFG = Drift()


def calibrated(n: int, seed: int, a: float = 1.0, b: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities from a Beta(a, b) and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, size=n)
    return (rng.random(n) < p).astype("int64"), p


@pytest.mark.parametrize("name", sorted(TASK_METRICS[TaskType.binary]))
def test_on_calibrated_scores_the_estimate_matches_the_realised_metric(name: str) -> None:
    y, p = calibrated(50_000, seed=1)
    realised = metric_value(name, y, p, 0.3)
    assert expected_metric(name, p, 0.3) == pytest.approx(realised, abs=0.01)


def test_the_auc_estimate_is_right_on_windows_of_a_few_hundred_rows_too() -> None:
    errors = []
    for seed in range(30):
        y, p = calibrated(500, seed)
        errors.append(abs(expected_metric("roc_auc", p, 0.5) - metric_value("roc_auc", y, p, 0.5)))
    assert np.mean(errors) < 0.02


def test_ties_count_half_and_the_vector_form_agrees_without_ties() -> None:
    # All scores equal: no pair is ordered, every pair is a tie -> 0.5.
    assert expected_metric("roc_auc", np.full(100, 0.3), 0.5) == pytest.approx(0.5)
    _, p = calibrated(300, seed=2)
    for name in TASK_METRICS[TaskType.binary]:
        vector = vector_expected_metric(name, p[None, :], 0.4)[0]
        assert vector == pytest.approx(expected_metric(name, p, 0.4), rel=1e-9)


def test_calibration_error_is_small_for_calibrated_scores_and_large_for_squashed_ones() -> None:
    y, p = calibrated(20_000, seed=3)
    assert calibration_error(y, p) < 0.01
    assert calibration_error(y, p**3) > 0.1  # the same ranking, far too low probabilities


def test_a_badly_calibrated_model_gets_no_estimate_rather_than_a_wrong_one() -> None:
    y, p = calibrated(5_000, seed=4)
    squashed = p**3
    # The estimate from these scores would be far off the realised AUC...
    assert (
        abs(expected_metric("roc_auc", squashed, 0.5) - metric_value("roc_auc", y, p, 0.5)) > 0.05
    )
    # ...and the calibration error recorded at training time says so.
    error = calibration_error(y, squashed)
    result = estimate_performance(squashed, squashed, 0.5, {CALIBRATION_ERROR: error}, CFG)
    assert result.status == "unavailable" and result.estimated is None
    assert "drift.max_calibration_error" in result.reason
    missing = estimate_performance(p, p, 0.5, {"roc_auc": 0.8}, CFG)
    assert missing.status == "unavailable" and "no calibration check" in missing.reason


def test_few_rows_are_not_enough_data() -> None:
    _, p = calibrated(100, seed=5)
    result = estimate_performance(p, p, 0.5, {CALIBRATION_ERROR: 0.01}, CFG)
    assert result.status == "not enough data"


def _scores_only(p: np.ndarray) -> pd.DataFrame:
    x = np.random.default_rng(len(p)).normal(size=len(p))
    return pd.DataFrame({"x": x, REFERENCE_SCORE: p})


def test_an_estimated_drop_alone_makes_the_verdict_drift() -> None:
    # One feature, and a PSI floor nothing reaches: only the estimate can speak.
    contract = Contract.model_validate(
        {
            "target": {"name": "y", "classes": ["0", "1"], "positive": "1"},
            "features": [{"name": "x", "type": "numeric"}],
        }
    )
    cfg = Drift(psi_threshold=100.0)  # the score's PSI can never count: the estimate alone
    _, reference = calibrated(4_000, seed=6)
    # Rows with middling scores (a selection on the features): the ranking is much harder there.
    _, pool = calibrated(40_000, seed=7)
    middle = pool[(pool > 0.2) & (pool < 0.35)][:2_000]
    training = {CALIBRATION_ERROR: 0.01}
    result = detect_drift(
        _scores_only(reference), _scores_only(middle), contract, cfg, training_metrics=training
    )
    assert result.estimate is not None and result.estimate.status == "drift"
    assert result.estimate.drop is not None and result.estimate.drop > cfg.max_metric_drop
    assert result.verdict == "drift" and any("estimated roc_auc" in r for r in result.reasons)
    same = detect_drift(
        _scores_only(reference),
        _scores_only(calibrated(2_000, seed=8)[1]),
        contract,
        cfg,
        training_metrics=training,
    )
    assert same.estimate is not None and same.estimate.status == "ok"
    assert same.verdict == "no drift"
