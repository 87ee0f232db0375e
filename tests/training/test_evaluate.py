"""Metric functions against sklearn, the threshold objectives, slices, plots, the summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from core.config import TASK_METRICS, TaskType
from core.metrics import CALIBRATION_ERROR, all_metrics, calibration_error
from training import evaluate

METRICS = TASK_METRICS[TaskType.binary]  # these tests are of a binary classifier's scores


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 800)
    p = np.clip(0.3 * y + 0.7 * rng.random(800), 0, 1).round(2)  # rounded: ties in the ranks
    return y, p


def test_metrics_agree_with_sklearn(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    m = all_metrics(y, p, 0.5)
    assert set(METRICS) <= set(m)
    pred = (p >= 0.5).astype(int)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["n_rows"] == 800


def test_the_test_metrics_carry_the_calibration_error_by_hand() -> None:
    # Two equal-count bins: [0.1, 0.1 | 0.9, 0.9] with labels [0, 1 | 1, 1]:
    # |0.5 - 0.1| and |1.0 - 0.9|, each half the rows -> 0.25.
    y, p = np.array([0, 1, 1, 1]), np.array([0.1, 0.1, 0.9, 0.9])
    assert calibration_error(y, p, bins=2) == pytest.approx(0.25)
    m = all_metrics(y, p, 0.5)
    assert m[CALIBRATION_ERROR] == pytest.approx(calibration_error(y, p))
    assert set(METRICS) <= set(m)


def test_f1_threshold_maximises_f1(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    t = evaluate.choose_threshold(y, p, "f1")
    best = max(skm.f1_score(y, p >= c) for c in np.unique(p))
    assert skm.f1_score(y, p >= t) == pytest.approx(best)


def test_youden_threshold_maximises_tpr_minus_fpr(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    t = evaluate.choose_threshold(y, p, "youden")

    def j(c: float) -> float:
        pred = p >= c
        return float(pred[y == 1].mean() - pred[y == 0].mean())

    assert j(t) == pytest.approx(max(j(c) for c in np.unique(p)))
    assert evaluate.choose_threshold(y, p, "fixed", 0.3) == 0.3


def test_slices_cover_every_row_once_per_column(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    X = pd.DataFrame({"plan": np.where(np.arange(800) % 3 == 0, "a", "b").astype(object)})
    X.loc[5, "plan"] = np.nan
    rows = evaluate.slice_metrics(X, y, p, 0.5, ["plan"])
    assert sum(r["n_rows"] for r in rows) == 800
    assert {r["value"] for r in rows} == {"a", "b", "(missing)"}


def test_plots_are_png_and_summary_compares_with_the_champion(
    scores: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scores
    importance = pd.DataFrame({"feature": ["x", "z"], "importance": [0.1, 0.0], "std": [0.01, 0]})
    pngs = evaluate.plots(y, p, 0.5, importance)
    assert set(pngs) == {
        "roc.png",
        "pr.png",
        "confusion_matrix.png",
        "calibration.png",
        "permutation_importance.png",
    }
    assert all(data.startswith(b"\x89PNG") for data in pngs.values())
    m = all_metrics(y, p, 0.5)
    worse = {**m, "roc_auc": m["roc_auc"] + 0.05}
    md = evaluate.summary_markdown(m, [], worse)
    assert "| roc_auc |" in md and "-0.0500 ✗" in md
