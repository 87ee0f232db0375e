"""The model metrics, computed once: training, the gate, the drift check and every report use these.

Their names and directions (`METRICS`) are part of the config's vocabulary (core/config.py).

Scalar metrics come straight from `sklearn.metrics`. The gate's paired bootstrap needs the same
metrics on thousands of resamples at once: `vector_metric` computes them row-wise in numpy
(measured 15x faster than looping the scalar form), and a test holds both forms equal.

Performance estimated without labels (confidence-based performance estimation, as NannyML's CBPE):
when the probabilities are calibrated, a row with probability p is a positive with probability p,
so every metric has an expected value given the probabilities alone. `expected_metric` computes it
(ratio of expected counts, as CBPE does), `vector_expected_metric` the same per bootstrap row, and
`calibration_error` says whether the premise holds (binary classifiers; other tasks add theirs).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
from scipy.stats import norm, rankdata
from sklearn import metrics as skm

from core.config import METRICS, TASK_METRICS, Target, TaskType

# Ranking metrics are undefined on rows of one class.
RANKING = frozenset({"roc_auc", "pr_auc"})
# Metrics of a multiclass target, computed from the (n, k) probability matrix and class indices.
MULTICLASS = frozenset({"balanced_accuracy", "macro_f1", "weighted_f1"})
# Metrics of a regression target, computed from the predicted and the true values.
REGRESSION = frozenset({"rmse", "mae", "r2"})
_EPS = 1e-15
# The key under which training records the test part's calibration error (beside its metrics).
CALIBRATION_ERROR = "calibration_error"
TASK_METRICS_BINARY = TASK_METRICS[TaskType.binary]


def _check(name: str) -> None:
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")


def metric_value(name: str, y: np.ndarray, p: np.ndarray, threshold: float | None) -> float:
    """Compute one metric (NaN if undefined) of the task the scores are of.

    Binary: 0/1 labels, positive-class probabilities and the threshold. Multiclass: class indices
    and the (n, k) probability matrix (`p.ndim == 2`; log_loss and accuracy have both forms).
    Regression: true and predicted values. The threshold matters for binary labels only.
    """
    _check(name)
    if np.ndim(p) == 2 or name in MULTICLASS or name in REGRESSION:
        return float(
            vector_metric(name, np.asarray(y)[None, :], np.asarray(p)[None, ...], threshold)[0]
        )
    if threshold is None and name in {"accuracy", "precision", "recall", "f1"}:
        raise ValueError(f"{name} of a binary classifier needs its threshold")
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


def class_recall_key(name: str) -> str:
    """The metric key of one class's recall (MLflow allows letters, digits, _ - . / and spaces)."""
    return "recall_class_" + "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


def all_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float | None, target: Target | None = None
) -> dict[str, float]:
    """Compute every metric of the target's task (binary when no target is given), plus the row count.

    Binary adds the threshold, the positive share and the calibration error; multiclass the recall
    of each class (`class_recall_key`). The calibration error travels with the test metrics (logged
    as test_calibration_error, then in the bundle's metadata under "metrics"): the drift check
    reads it to decide whether the scores can estimate performance before labels arrive
    (validation/estimate.py).
    """
    task = TaskType.binary if target is None else target.type
    if task is not TaskType.binary:
        assert target is not None
        out = {name: metric_value(name, y, p, None) for name in target.metrics}
        if task is TaskType.multiclass:
            predicted = np.argmax(p, axis=1)
            for i, cls in enumerate(target.classes):
                mask = y == i
                recall = float(np.mean(predicted[mask] == i)) if mask.any() else float("nan")
                out[class_recall_key(cls)] = recall
        out["n_rows"] = float(len(y))
        return out
    assert threshold is not None, "a binary classifier's metrics need its threshold"
    out = {name: metric_value(name, y, p, threshold) for name in TASK_METRICS_BINARY}
    out[CALIBRATION_ERROR] = calibration_error(y, p)
    out["threshold"] = float(threshold)
    out["n_rows"] = float(len(y))
    out["positive_share"] = float(np.mean(y)) if len(y) else float("nan")
    return out


def vector_metric(name: str, y: np.ndarray, p: np.ndarray, threshold: float | None) -> np.ndarray:
    """Compute a metric for every bootstrap row at once (y: (B, n); p: (B, n) or (B, n, k)); NaN where undefined."""
    _check(name)
    if p.ndim == 3:
        return _vector_multiclass(name, y.astype(np.int64), p)
    if name in REGRESSION:
        return _vector_regression(name, y.astype(np.float64), p.astype(np.float64))
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
    if threshold is None:
        raise ValueError(f"{name} of a binary classifier needs its threshold")
    return _vector_at_threshold(name, y, p >= threshold)


def _vector_multiclass(name: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Multiclass metrics per bootstrap row: y class indices (B, n), p probabilities (B, n, k)."""
    if name == "log_loss":
        true = np.take_along_axis(p, y[..., None], axis=2)[..., 0]
        return np.asarray(-np.log(np.clip(true, _EPS, 1.0)).mean(axis=1))
    predicted = np.argmax(p, axis=2)
    if name == "accuracy":
        return np.asarray((predicted == y).mean(axis=1))
    if name not in MULTICLASS:
        raise KeyError(f"{name!r} is not a metric of a multiclass target")
    k = p.shape[2]
    # Per class (axis 1): true positives, predicted and actual counts in each row.
    tp = np.stack([((predicted == c) & (y == c)).sum(axis=1) for c in range(k)], axis=1)
    predicted_n = np.stack([(predicted == c).sum(axis=1) for c in range(k)], axis=1)
    support = np.stack([(y == c).sum(axis=1) for c in range(k)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "balanced_accuracy":  # mean recall over the classes present (as sklearn)
            recall = np.where(support > 0, tp / support, np.nan)
            return np.asarray(np.nanmean(recall, axis=1))
        denominator = predicted_n + support
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
        if name == "macro_f1":  # every class of the contract counts, as f1_score(labels=...)
            return np.asarray(f1.mean(axis=1))
        return np.asarray((f1 * support).sum(axis=1) / support.sum(axis=1))


def _vector_regression(name: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Regression metrics per bootstrap row: y true values, p predictions, both (B, n)."""
    error = p - y
    if name == "rmse":
        return np.asarray(np.sqrt((error**2).mean(axis=1)))
    if name == "mae":
        return np.asarray(np.abs(error).mean(axis=1))
    total = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - (error**2).sum(axis=1) / total, np.nan)


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


def drop_p_value(drop: float, standard_error: float) -> float:
    """Return the one-sided p-value that a metric really dropped by `drop` (normal approximation)."""
    if standard_error > 0:
        return float(norm.sf(drop / standard_error))
    return 0.0 if drop > 0 else 1.0


def bootstrap_standard_error(
    name: str,
    y: np.ndarray,
    p: np.ndarray,
    threshold: float | None,
    *,
    resamples: int = 200,
    max_rows: int = 20_000,
    seed: int = 0,
) -> float:
    """Standard error of a metric by a seeded bootstrap, all resamples at once (`vector_metric`).

    Above `max_rows` rows a random subset is resampled and the result scaled by sqrt(max_rows / n):
    the standard error shrinks with the square root of n. Infinite when fewer than two resamples
    are defined.
    """
    rng = np.random.default_rng(seed)
    (y, p), scale = _subsample(rng, max_rows, y, p)
    pick = rng.integers(y.size, size=(resamples, y.size))
    values = vector_metric(name, y[pick], p[pick], threshold)
    return _spread(values) * scale


def _subsample(
    rng: np.random.Generator, max_rows: int, *arrays: np.ndarray
) -> tuple[list[np.ndarray], float]:
    """Keep at most `max_rows` rows (the same ones of each array); return them and the SE scale."""
    n = arrays[0].size
    if n <= max_rows:
        return list(arrays), 1.0
    keep = rng.choice(n, size=max_rows, replace=False)
    return [a[keep] for a in arrays], math.sqrt(max_rows / n)


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else math.inf


# --- performance without labels ---------------------------------------------------------------


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted mean |positive share - mean probability|.

    On `bins` equal-count bins of the sorted probabilities (NaN without rows). Even a perfectly
    calibrated model shows some from sampling alone: 0.023 on average (0.035 at the 95th
    percentile) on 1,400 rows scored like the default model's test part.
    """
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    ys, ps = np.asarray(y, dtype="float64")[order], np.asarray(p, dtype="float64")[order]
    total = 0.0
    for yb, pb in zip(np.array_split(ys, bins), np.array_split(ps, bins), strict=True):
        if yb.size:
            total += yb.size * abs(float(yb.mean()) - float(pb.mean()))
    return total / ys.size


def expected_metric(name: str, p: np.ndarray, threshold: float) -> float:
    """Estimate a metric from calibrated probabilities alone (no labels); NaN where undefined.

    Each row counts as p of a positive and 1 - p of a negative; the metric is computed from the
    expected counts (the expected confusion matrix; for roc_auc the expected share of
    positive-negative pairs in the right order, ties counting half).
    """
    _check(name)
    p = np.clip(np.asarray(p, dtype="float64"), 0.0, 1.0)
    if p.size == 0:
        return float("nan")
    if name == "roc_auc":
        return _expected_auc(p)
    return float(vector_expected_metric(name, p[None, :], threshold)[0])


def _expected_auc(p: np.ndarray) -> float:
    # Groups of equal probability: a pair inside one group is a tie (half), except a row with itself.
    values, inverse = np.unique(p, return_inverse=True)
    positives = np.bincount(
        inverse, weights=p, minlength=values.size
    )  # expected positives per group
    above = positives[::-1].cumsum()[::-1] - positives  # expected positives in higher groups
    pairs = float(p.sum() * (1 - p).sum() - (p * (1 - p)).sum())
    if pairs <= 0:
        return float("nan")
    ordered = ((1 - p) * (above[inverse] + 0.5 * (positives[inverse] - p))).sum()
    return float(ordered / pairs)


def vector_expected_metric(name: str, p: np.ndarray, threshold: float) -> np.ndarray:
    """Compute `expected_metric` for every row of p (shape (B, n)) at once; NaN where undefined.

    roc_auc here ranks tied probabilities in an arbitrary order (the scalar form counts them
    half); both agree on probabilities without ties.
    """
    _check(name)
    q = 1.0 - p
    with np.errstate(invalid="ignore", divide="ignore"):
        if name in RANKING:
            ranked = -np.sort(-p, axis=1)  # descending
            positives_before = np.cumsum(ranked, axis=1) - ranked
            expected_pos = ranked.sum(axis=1)
            if name == "roc_auc":
                pairs = expected_pos * (1 - ranked).sum(axis=1) - (ranked * (1 - ranked)).sum(
                    axis=1
                )
                ordered = ((1 - ranked) * positives_before).sum(axis=1)
                return np.where(pairs > 0, ordered / pairs, np.nan)
            precision = (positives_before + ranked) / np.arange(1, p.shape[1] + 1)
            return np.where(
                expected_pos > 0, (ranked * precision).sum(axis=1) / expected_pos, np.nan
            )
        if name == "brier":
            return (p * q).mean(axis=1)
        if name == "log_loss":
            c = np.clip(p, _EPS, 1 - _EPS)
            return -(c * np.log(c) + (1 - c) * np.log(1 - c)).mean(axis=1)
        pred = p >= threshold
        tp, fp = (p * pred).sum(axis=1), (q * pred).sum(axis=1)
        fn, tn = (p * ~pred).sum(axis=1), (q * ~pred).sum(axis=1)
        if name == "accuracy":
            return (tp + tn) / p.shape[1]
        if name == "precision":
            return np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        if name == "recall":
            return np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)


def expected_standard_error(
    name: str,
    p: np.ndarray,
    threshold: float,
    *,
    resamples: int = 200,
    max_rows: int = 2_000,
    seed: int = 0,
) -> float:
    """Standard error of `expected_metric` over windows like this one, by a seeded bootstrap.

    On at most `max_rows` rows, scaled by sqrt(max_rows / n) above: the estimate is a smooth
    function of the scores, so its error shrinks with the square root of n (the bootstrap of 200
    resamples of 20,000 rows cost 0.3 s a check; of 2,000 rows, 0.02 s).
    """
    rng = np.random.default_rng(seed)
    (p,), scale = _subsample(rng, max_rows, np.asarray(p, dtype="float64"))
    pick = rng.integers(p.size, size=(resamples, p.size))
    return _spread(vector_expected_metric(name, p[pick], threshold)) * scale


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
