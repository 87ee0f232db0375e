"""The model metrics, computed once: training, the gate, the drift check and every report use these.

Their names and directions (`METRICS`) are part of the config's vocabulary (core/config.py).

Scalar metrics come straight from `sklearn.metrics`. The gate's paired bootstrap needs the same
metrics on thousands of resamples at once: `vector_metric` computes them row-wise in numpy
(measured 15x faster than looping the scalar form), and a test holds both forms equal.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

from core.config import METRICS

# Ranking metrics are undefined on rows of one class.
RANKING = frozenset({"roc_auc", "pr_auc"})
_EPS = 1e-15


def _check(name: str) -> None:
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")


def metric_value(name: str, y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """Compute one metric from 0/1 labels, positive-class probabilities and a threshold (NaN if undefined)."""
    _check(name)
    if name in RANKING and not 0 < int(np.sum(y)) < len(y):
        return float("nan")
    if name == "roc_auc":
        return float(skm.roc_auc_score(y, p))
    if name == "pr_auc":
        return float(skm.average_precision_score(y, p))
    if name == "log_loss":
        return float(skm.log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1]))
    if name == "brier":
        return float(np.mean((p - y) ** 2))
    predicted = (p >= threshold).astype(np.int8)
    if name == "accuracy":
        return float(skm.accuracy_score(y, predicted))
    scorer = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
    return float(scorer[name](y, predicted, zero_division=0))


def all_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Compute every metric of METRICS, plus the threshold itself, the row count and positive share."""
    out = {name: metric_value(name, y, p, threshold) for name in METRICS}
    out["threshold"] = float(threshold)
    out["n_rows"] = float(len(y))
    out["positive_share"] = float(np.mean(y)) if len(y) else float("nan")
    return out


def vector_metric(name: str, y: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """Compute a metric for every bootstrap row at once (y, p: shape (B, n)); NaN where undefined."""
    _check(name)
    if name == "roc_auc":
        n_pos = y.sum(axis=1)
        n_neg = y.shape[1] - n_pos
        u = (rankdata(p, axis=1) * y).sum(axis=1) - n_pos * (n_pos + 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)
    if name == "brier":
        return ((p - y) ** 2).mean(axis=1)
    if name == "log_loss":
        c = np.clip(p, _EPS, 1 - _EPS)
        return -(y * np.log(c) + (1 - y) * np.log(1 - c)).mean(axis=1)
    if name == "pr_auc":  # no cheap vector form; the scalar one per row is fine for a few thousand
        return np.array(
            [metric_value(name, yi, pi, threshold) for yi, pi in zip(y, p, strict=True)]
        )
    return _vector_at_threshold(name, y, p >= threshold)


def _vector_at_threshold(name: str, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    tp = (pred & (y == 1)).sum(axis=1)
    fp = (pred & (y == 0)).sum(axis=1)
    fn = (~pred & (y == 1)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "accuracy":
            return (pred == (y == 1)).mean(axis=1)
        if name == "precision":
            return np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        if name == "recall":
            return np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)


Value = TypeVar("Value", float, np.ndarray)


def improvement(name: str, challenger: Value, other: Value) -> Value:
    """Return how much better the challenger is than `other` on `name` (positive: better)."""
    return challenger - other if METRICS[name] else other - challenger


def comparison_rows(
    challenger: dict[str, float],
    champion: dict[str, float] | None = None,
    baseline: dict[str, float] | None = None,
) -> list[dict[str, object]]:
    """Tabulate the challenger's metrics beside the baseline's and the champion's: the one table.

    One row per metric of METRICS the challenger has; with a baseline (the class prior fitted in
    the same run), its value; with a champion, its value and the difference (challenger minus
    champion) marked ✓ when the challenger is at least as good.
    """
    rows: list[dict[str, object]] = []
    for name in METRICS:
        if name not in challenger:
            continue
        value = challenger[name]
        row: dict[str, object] = {"metric": name, "challenger": f"{value:.4f}"}
        if baseline is not None:
            row["baseline"] = f"{baseline[name]:.4f}"
        if champion is not None:
            old = champion[name]
            better = improvement(name, value, old) >= 0
            row["champion"] = f"{old:.4f}"
            row["difference"] = f"{value - old:+.4f} {'✓' if better else '✗'}"
        rows.append(row)
    return rows
