"""Performance estimated before the labels arrive: pure functions of the window's scores.

Labels come days or weeks after a prediction, so the live metric from feedback is blind for just
the period after a shift. A calibrated binary classifier's probabilities carry their own expected
metric (confidence-based performance estimation; core.metrics.expected_metric): estimated on the
window and on the training reference's held-out rows, the difference is the estimated drop.

The premise is calibration, and covariate shift only: when the relation between features and the
target changes (concept shift) the probabilities are wrong and so is the estimate; the realised
metric on feedback catches that. Training checks calibration on the test part and records its
error beside the test metrics (core.metrics.CALIBRATION_ERROR); above
`drift.max_calibration_error`, or without the record, the estimate is "unavailable", never a
number that is wrong. Binary only for now: a regression estimator (a second model of the absolute
error) would sit beside `estimate_performance`, chosen by the contract's task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from core.config import TASK_METRICS, Drift, TaskType
from core.metrics import (
    CALIBRATION_ERROR,
    drop_p_value,
    expected_metric,
    expected_standard_error,
    improvement,
)

EstimateStatus = Literal["drift", "ok", "not enough data", "unavailable"]


# The estimate needs calibrated binary probabilities: it covers a binary target's metrics.
BINARY_METRICS = TASK_METRICS[TaskType.binary]


@dataclass(frozen=True)
class PerformanceEstimate:
    """The window's metrics estimated from its scores, and the estimated drop of one of them."""

    metric: str
    status: EstimateStatus
    reason: str = ""
    calibration_error: float | None = None
    reference: float | None = None  # the estimate on the reference's held-out rows
    estimated: float | None = None  # the estimate on the window
    drop: float | None = None  # positive when the window is estimated worse
    standard_error: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    estimated_metrics: dict[str, float] | None = None
    realised: float | None = None  # the live metric on the window's feedback, when it exists

    @property
    def available(self) -> bool:
        return self.status in {"drift", "ok"}


def not_estimated(metric: str, task: TaskType) -> PerformanceEstimate:
    """The declared absence of an estimate for a task CBPE does not cover (multiclass, regression)."""
    return PerformanceEstimate(
        metric,
        "unavailable",
        f"no estimate before labels for a {task.value} target (binary classifiers only): "
        "only the realised metric on feedback can tell",
    )


def calibration_check(training_metrics: dict[str, float], cfg: Drift) -> str | None:
    """Say why the bundle's probabilities cannot be trusted for an estimate; None when they can."""
    error = training_metrics.get(CALIBRATION_ERROR)
    if error is None or math.isnan(error):
        return "the bundle records no calibration check (trained before it existed): retrain"
    if error > cfg.max_calibration_error:
        return (
            f"calibration error {error:.3f} on the test part > drift.max_calibration_error "
            f"{cfg.max_calibration_error}: the probabilities would give a wrong estimate"
        )
    return None


def estimate_performance(
    reference_scores: np.ndarray,
    window_scores: np.ndarray,
    threshold: float,
    training_metrics: dict[str, float],
    cfg: Drift,
) -> PerformanceEstimate:
    """Estimate the window's metrics from its scores and test the estimated drop of the configured one.

    The drop is against the same estimate on the reference's held-out rows, so a small bias of
    the estimator cancels. Its p-value is one-sided, from the bootstrap standard errors of both
    estimates; the caller puts it into the drift check's Benjamini-Hochberg family.
    """
    metric = cfg.performance_metric
    error = training_metrics.get(CALIBRATION_ERROR)
    unusable = calibration_check(training_metrics, cfg)
    if unusable is not None:
        return PerformanceEstimate(metric, "unavailable", unusable, error)
    ref = _present(reference_scores)
    cur = _present(window_scores)
    if min(ref.size, cur.size) < cfg.min_samples:
        return PerformanceEstimate(
            metric,
            "not enough data",
            f"{cur.size} scored rows; drift.min_samples is {cfg.min_samples}",
            error,
        )
    values = {name: expected_metric(name, cur, threshold) for name in BINARY_METRICS}
    reference = expected_metric(metric, ref, threshold)
    estimated = values[metric]
    drop = float(improvement(metric, reference, estimated))
    se = math.hypot(
        expected_standard_error(metric, ref, threshold),
        expected_standard_error(metric, cur, threshold),
    )
    p_value = drop_p_value(drop, se)
    return PerformanceEstimate(
        metric,
        "ok",
        calibration_error=error,
        reference=reference,
        estimated=estimated,
        drop=drop,
        standard_error=se,
        p_value=p_value,
        estimated_metrics={k: v for k, v in values.items() if not math.isnan(v)},
    )


def decide_estimate(
    estimate: PerformanceEstimate, q_value: float | None, cfg: Drift
) -> PerformanceEstimate:
    """Mark the estimate as drift when its drop is significant and larger than drift.max_metric_drop."""
    if not estimate.available or estimate.drop is None or q_value is None:
        return estimate
    drifted = q_value < cfg.fdr_alpha and estimate.drop > cfg.max_metric_drop
    return replace(estimate, q_value=q_value, status="drift" if drifted else "ok")


def _present(scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype="float64")
    return values[~np.isnan(values)]
