"""The gate: may this challenger go on? Pure functions of metrics and predictions.

Three kinds of rule decide:
- absolute rules from `gate.rules` (e.g. roc_auc ≥ 0.80), the team's policy, optional. A bound in
  the metric's own direction (a `min` on a higher-is-better metric, a `max` on a lower-is-better
  one) is checked by MLflow's `MetricThreshold` + `mlflow.validate_evaluation_results`; the
  opposite bound (e.g. a `max` on roc_auc to catch leakage) has no MLflow equivalent and is
  compared here.
- the baseline comparison (`gate.baseline`): a trivial model (the class prior) fitted in the same
  run scores the same test rows; the challenger passes when the lower confidence bound of its
  improvement (paired bootstrap) reaches `min_improvement`. It fits any data, which fixed floors
  chosen for one table do not.
- the champion comparison (`gate.champion`): both models score the SAME test rows; a paired
  bootstrap of the metric difference gives its upper confidence bound, and the challenger is
  rejected when even that bound is below `-max_regression` (it is worse than the allowed margin at
  the configured confidence). MLflow's `min_absolute_change` cannot express this: it must be
  positive (the candidate must *beat* the baseline by a margin) and it ignores sampling noise.
With no champion, the absolute rules and the baseline decide.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor

from core.config import METRICS, Baseline, Champion, Comparison, Config, Rule, Target, TaskType
from core.metrics import all_metrics, comparison_rows, improvement, metric_value, vector_metric
from core.task import model_scores
from core.templates import render
from training.data import Dataset
from training.evaluate import Evaluation
from training.registry import RegisteredModel


@dataclass(frozen=True)
class RuleResult:
    """One rule as checked: what was observed, the limit, and how far inside (+) or outside (-)."""

    rule: str
    metric: str
    observed: float
    limit: float
    margin: float
    passed: bool
    checked_by: str
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with every rule, for JSON, markdown and the MLflow run."""

    passed: bool
    rules: list[RuleResult]
    champion: dict[str, Any] | None = field(default=None)
    baseline: dict[str, Any] | None = field(default=None)
    challenger: dict[str, float] | None = field(default=None)

    @property
    def champion_metrics(self) -> dict[str, float] | None:
        """The champion's metrics on the same test rows, when it could score them."""
        return (self.champion or {}).get("metrics")

    @property
    def baseline_metrics(self) -> dict[str, float] | None:
        """The baseline's metrics on the same test rows, when the gate compared with it."""
        return (self.baseline or {}).get("metrics")

    def compared(self) -> list[dict[str, object]]:
        """The comparison table restricted to the metrics the gate compared on."""
        if self.challenger is None:
            return []
        names = [r.metric for r in self.rules if r.metric in self.challenger]

        def only(metrics: dict[str, float] | None) -> dict[str, float] | None:
            return None if metrics is None else {k: v for k, v in metrics.items() if k in names}

        return comparison_rows(
            only(self.challenger) or {}, only(self.champion_metrics), only(self.baseline_metrics)
        )

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]

    @property
    def reason(self) -> str:
        """One line naming each failed rule and by how much it missed."""
        if self.passed:
            return "all rules passed"
        return "; ".join(
            f"{r.rule}: observed {r.observed:.4f}, limit {r.limit:.4f}, missed by {-r.margin:.4f}"
            for r in self.failed
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "rules": [asdict(r) for r in self.rules],
            "champion": self.champion,
            "baseline": self.baseline,
        }

    def to_markdown(self) -> str:
        """Render the verdict, every rule and the champion comparison (templates/gate.md.j2)."""
        rows: list[dict[str, object]] = [
            {
                "rule": r.rule,
                "observed": f"{r.observed:.4f}",
                "limit": f"{r.limit:.4f}",
                "margin": f"{r.margin:+.4f}",
                "result": "pass" if r.passed else "**FAIL**",
                "checked by": r.checked_by,
            }
            for r in self.rules
        ]
        return render("gate.md.j2", decision=self, rows=rows, compared=self.compared())


def _mlflow_check(metric: str, observed: float, limit: float) -> bool:
    """Check one bound in the metric's own direction with MLflow's MetricThreshold."""
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import (
        ModelValidationFailedException,
        validate_evaluation_results,
    )

    threshold = MetricThreshold(threshold=float(limit), greater_is_better=METRICS[metric])
    try:
        validate_evaluation_results(
            {metric: threshold}, EvaluationResult(metrics={metric: observed}, artifacts={})
        )
    except ModelValidationFailedException:
        return False
    return True


def check_rules(rules: list[Rule], metrics: dict[str, float]) -> list[RuleResult]:
    """Check every absolute rule against the challenger's test metrics."""
    results: list[RuleResult] = []
    for rule in rules:
        observed = float(metrics[rule.metric])
        higher_is_better = METRICS[rule.metric]
        for kind, limit in (("min", rule.min), ("max", rule.max)):
            if limit is None:
                continue
            symbol = "≥" if kind == "min" else "≤"
            margin = observed - limit if kind == "min" else limit - observed
            if (kind == "min") == higher_is_better:
                passed = not np.isnan(observed) and _mlflow_check(rule.metric, observed, limit)
                by = "mlflow MetricThreshold"
            else:
                passed = not np.isnan(observed) and margin >= 0
                by = "gate.py"
            results.append(
                RuleResult(
                    rule=f"{rule.metric} {symbol} {limit:g}",
                    metric=rule.metric,
                    observed=observed,
                    limit=float(limit),
                    margin=float(margin) if not np.isnan(margin) else float("-inf"),
                    passed=bool(passed),
                    checked_by=by,
                )
            )
    return results


def paired_bootstrap(
    y: np.ndarray,
    p_challenger: np.ndarray,
    p_champion: np.ndarray,
    metric: str,
    *,
    threshold_challenger: float | None,
    threshold_champion: float | None,
    n_resamples: int,
    seed: int,
) -> np.ndarray:
    """Resample the same test rows for both models; return the improvements (challenger better > 0).

    The difference is oriented so that a positive value always means the challenger is better,
    whatever the metric's direction. Resamples with one class only (AUC undefined) are dropped.
    Scores of any task resample by row: a multiclass probability matrix keeps its class axis.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_resamples, len(y)))
    ys = y[idx].astype(np.float64)
    chal = vector_metric(metric, ys, p_challenger[idx], threshold_challenger)
    champ = vector_metric(metric, ys, p_champion[idx], threshold_champion)
    diff = improvement(metric, chal, champ)
    return diff[np.isfinite(diff)]


@dataclass(frozen=True)
class Interval:
    """The bootstrap interval of the challenger's improvement over another model on one metric."""

    challenger: float
    other: float
    point: float
    lower: float
    upper: float
    resamples: int

    def detail(self, other: str, confidence: float, bound: str) -> str:
        return (
            f"challenger {self.challenger:.4f}, {other} {self.other:.4f}, improvement "
            f"{self.point:+.4f}, {confidence:.0%} interval of the improvement "
            f"[{self.lower:+.4f}, {self.upper:+.4f}] (observed = its {bound} bound)"
        )


def improvement_interval(
    y: np.ndarray,
    p_challenger: np.ndarray,
    p_other: np.ndarray,
    thresholds: tuple[float | None, float | None],
    settings: Comparison,
    seed: int,
) -> Interval:
    """Measure both models and bootstrap the one-sided bounds of the improvement at `confidence`."""
    metric, confidence = settings.metric, settings.confidence
    threshold_challenger, threshold_other = thresholds
    chal = metric_value(metric, y, p_challenger, threshold_challenger)
    other = metric_value(metric, y, p_other, threshold_other)
    diffs = paired_bootstrap(
        y,
        p_challenger,
        p_other,
        metric,
        threshold_challenger=threshold_challenger,
        threshold_champion=threshold_other,
        n_resamples=settings.bootstrap,
        seed=seed,
    )
    upper = float(np.quantile(diffs, confidence)) if len(diffs) else float("nan")
    lower = float(np.quantile(diffs, 1 - confidence)) if len(diffs) else float("nan")
    return Interval(chal, other, improvement(metric, chal, other), lower, upper, len(diffs))


def compare_with_champion(
    y: np.ndarray,
    p_challenger: np.ndarray,
    p_champion: np.ndarray,
    *,
    threshold_challenger: float | None,
    threshold_champion: float | None,
    settings: Champion,
    seed: int,
) -> RuleResult:
    """Reject when the upper confidence bound of the improvement is below -max_regression."""
    metric = settings.metric
    thresholds = (threshold_challenger, threshold_champion)
    iv = improvement_interval(y, p_challenger, p_champion, thresholds, settings, seed)
    rule = (
        f"{metric} vs champion: not worse than {settings.max_regression:g} "
        f"at {settings.confidence:.0%} confidence"
    )
    detail = iv.detail("champion", settings.confidence, "upper")
    return _bound_rule(rule, metric, iv.upper, -settings.max_regression, iv.resamples, detail)


def _bound_rule(
    rule: str, metric: str, bound: float, limit: float, resamples: int, detail: str
) -> RuleResult:
    """A bootstrap rule: it passes when the interval's bound reaches `limit` (NaN never does)."""
    return RuleResult(
        rule=rule,
        metric=metric,
        observed=bound,
        limit=limit,
        margin=bound - limit if np.isfinite(bound) else float("-inf"),
        passed=bool(np.isfinite(bound) and bound >= limit),
        checked_by=f"paired bootstrap ({resamples} resamples)",
        detail=detail,
    )


# The prior's constant score sits below 0.5 whenever the positive class is the minority, so at
# this threshold it predicts the majority class, as DummyClassifier.predict does.
BASELINE_THRESHOLD = 0.5
# The trivial model per task: what the challenger must beat.
BASELINE_MODEL = {
    TaskType.binary: "DummyClassifier(strategy='prior')",
    TaskType.multiclass: "DummyClassifier(strategy='prior')",
    TaskType.regression: "DummyRegressor(strategy='mean')",
}


def baseline_threshold(target: Target) -> float | None:
    """The baseline's threshold: BASELINE_THRESHOLD for a binary prior, none for other tasks."""
    return BASELINE_THRESHOLD if target.type is TaskType.binary else None


def compare_with_baseline(
    y: np.ndarray,
    p_challenger: np.ndarray,
    p_baseline: np.ndarray,
    *,
    threshold_challenger: float | None,
    settings: Baseline,
    seed: int,
) -> RuleResult:
    """Pass when the lower confidence bound of the improvement reaches min_improvement."""
    metric = settings.metric
    thresholds = (
        threshold_challenger,
        None if threshold_challenger is None else BASELINE_THRESHOLD,
    )
    iv = improvement_interval(y, p_challenger, p_baseline, thresholds, settings, seed)
    limit = settings.min_improvement
    rule = f"{metric} vs baseline: better by {limit:g} at {settings.confidence:.0%} confidence"
    detail = iv.detail("baseline", settings.confidence, "lower")
    return _bound_rule(rule, metric, iv.lower, limit, iv.resamples, detail)


def score_baseline(ds: Dataset, target: Target) -> np.ndarray:
    """Fit the trivial model (class prior, or training mean) on the training part; score the test rows."""
    dummy: Any = (
        DummyRegressor(strategy="mean")
        if target.type is TaskType.regression
        else DummyClassifier(strategy="prior")
    )
    return model_scores(dummy.fit(ds.train.X, ds.train.y), ds.test.X, target)


@dataclass(frozen=True)
class ChampionScores:
    """Who the champion is, and its scores on the challenger's test rows (None: it cannot score them)."""

    info: dict[str, Any]
    threshold: float | None
    scores: np.ndarray | None
    problem: str = ""


def score_champion(champion: RegisteredModel, X: pd.DataFrame, target: Target) -> ChampionScores:
    """Score the challenger's test rows with the champion; a champion that cannot is noted, not fatal."""
    info = {
        "name": champion.name,
        "version": champion.version,
        "alias": champion.alias,
        "run_id": champion.run_id,
        "threshold": champion.threshold,
    }
    try:
        scores = model_scores(champion.pipeline, X, target)
    except Exception as exc:  # a champion from an older contract may not accept today's columns
        problem = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        return ChampionScores(info, champion.threshold, None, problem)
    return ChampionScores(info, champion.threshold, scores)


def judge(
    config: Config,
    y: np.ndarray,
    evaluation: Evaluation,
    champion: ChampionScores | None = None,
    baseline: np.ndarray | None = None,
) -> Decision:
    """Check the absolute rules, beat the baseline (when given and enabled), compare with the champion."""
    rule_results = check_rules(config.gate.rules, evaluation.metrics)
    target = config.contract.target
    baseline_info = None
    if baseline is not None and config.gate.baseline.enabled:
        baseline_info = {
            "model": BASELINE_MODEL[target.type],
            "threshold": baseline_threshold(target),
            "metrics": all_metrics(y, baseline, baseline_threshold(target), target),
        }
        rule_results.append(
            compare_with_baseline(
                y,
                evaluation.p_test,
                baseline,
                threshold_challenger=evaluation.threshold,
                settings=config.gate.baseline,
                seed=config.model.seed,
            )
        )
    if champion is None:
        return decide(rule_results, baseline=baseline_info, challenger=evaluation.metrics)
    info = dict(champion.info)
    if champion.scores is None:
        info["note"] = (
            f"the champion cannot score the test rows ({champion.problem}); "
            "the rules and the baseline decide"
        )
        return decide(
            rule_results, None, info, baseline=baseline_info, challenger=evaluation.metrics
        )
    info["metrics"] = all_metrics(y, champion.scores, champion.threshold, target)
    result = compare_with_champion(
        y,
        evaluation.p_test,
        champion.scores,
        threshold_challenger=evaluation.threshold,
        threshold_champion=champion.threshold,
        settings=config.gate.champion,
        seed=config.model.seed,
    )
    return decide(rule_results, result, info, baseline=baseline_info, challenger=evaluation.metrics)


def decide(
    rule_results: list[RuleResult],
    champion_result: RuleResult | None = None,
    champion_info: dict[str, Any] | None = None,
    *,
    baseline: dict[str, Any] | None = None,
    challenger: dict[str, float] | None = None,
) -> Decision:
    """Combine the rule results: the gate passes only when every one passed."""
    rules = [*rule_results, *([champion_result] if champion_result is not None else [])]
    return Decision(
        passed=all(r.passed for r in rules),
        rules=rules,
        champion=champion_info,
        baseline=baseline,
        challenger=challenger,
    )
