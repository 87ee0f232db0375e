"""The one metrics module: scalar and bootstrap forms agree, directions hold, the one comparison table."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import METRICS
from core.metrics import comparison_rows, improvement, metric_value, vector_metric


@pytest.fixture(scope="module")
def resamples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.35 * y + 0.65 * rng.random(300), 0, 1).round(2)
    idx = rng.integers(0, len(y), size=(6, len(y)))
    return y[idx].astype(np.float64), p[idx]


@pytest.mark.parametrize("name", sorted(METRICS))
def test_vector_form_equals_the_scalar_form_on_each_resample(
    name: str, resamples: tuple[np.ndarray, np.ndarray]
) -> None:
    ys, ps = resamples
    vector = vector_metric(name, ys, ps, 0.4)
    scalar = [metric_value(name, y, p, 0.4) for y, p in zip(ys, ps, strict=True)]
    assert vector == pytest.approx(scalar, rel=1e-9)


def test_ranking_metrics_are_nan_on_one_class_and_unknown_names_are_refused() -> None:
    y = np.ones(10)
    p = np.linspace(0, 1, 10)
    assert np.isnan(metric_value("roc_auc", y, p, 0.5))
    assert np.isnan(vector_metric("roc_auc", y[None, :], p[None, :], 0.5)[0])
    with pytest.raises(KeyError, match="unknown metric 'auc'"):
        metric_value("auc", y, p, 0.5)


def test_improvement_follows_the_metric_direction() -> None:
    assert improvement("roc_auc", 0.85, 0.80) == pytest.approx(0.05)
    assert improvement("brier", 0.12, 0.15) == pytest.approx(0.03)


def test_comparison_rows_mark_the_better_side_per_direction() -> None:
    rows = comparison_rows(
        {"roc_auc": 0.80, "brier": 0.12, "threshold": 0.3}, {"roc_auc": 0.85, "brier": 0.15}
    )
    assert rows == [
        {
            "metric": "roc_auc",
            "challenger": "0.8000",
            "champion": "0.8500",
            "difference": "-0.0500 ✗",
        },
        {
            "metric": "brier",
            "challenger": "0.1200",
            "champion": "0.1500",
            "difference": "-0.0300 ✓",
        },
    ]
    assert comparison_rows({"roc_auc": 0.8}) == [{"metric": "roc_auc", "challenger": "0.8000"}]
