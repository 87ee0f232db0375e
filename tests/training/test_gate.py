"""The gate's pure functions on known cases: rules, bootstrap direction, the decision report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.config import Baseline, Champion, Config, Rule
from core.metrics import all_metrics, vector_metric
from training import gate
from training.evaluate import Evaluation


def _scores(seed: int, n: int = 1500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a good model's scores and a noise model's scores."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    good = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    noise = rng.random(n)
    return y, good, noise


def test_min_rule_passes_and_fails_by_its_margin() -> None:
    ok, bad = gate.check_rules(
        [Rule(metric="roc_auc", min=0.8), Rule(metric="recall", min=0.9)],
        {"roc_auc": 0.85, "recall": 0.6},
    )
    assert ok.passed and ok.margin == pytest.approx(0.05)
    assert ok.checked_by == "mlflow MetricThreshold"
    assert not bad.passed and bad.margin == pytest.approx(-0.3)
    assert bad.rule == "recall ≥ 0.9"


def test_bounds_against_the_metric_direction_are_checked_here() -> None:
    # A max on roc_auc (leakage guard) is not expressible with MetricThreshold; a max on log_loss is.
    leak, loss = gate.check_rules(
        [Rule(metric="roc_auc", max=0.99), Rule(metric="log_loss", max=0.3)],
        {"roc_auc": 0.995, "log_loss": 0.25},
    )
    assert not leak.passed and leak.checked_by == "gate.py"
    assert leak.margin == pytest.approx(-0.005)
    assert loss.passed and loss.checked_by == "mlflow MetricThreshold"


def test_a_missing_metric_value_fails_its_rule() -> None:
    (result,) = gate.check_rules([Rule(metric="roc_auc", min=0.5)], {"roc_auc": float("nan")})
    assert not result.passed


def test_bootstrap_difference_points_towards_the_better_model() -> None:
    y, good, noise = _scores(1)
    better = gate.paired_bootstrap(
        y,
        good,
        noise,
        "roc_auc",
        threshold_challenger=0.5,
        threshold_champion=0.5,
        n_resamples=300,
        seed=0,
    )
    worse = gate.paired_bootstrap(
        y,
        noise,
        good,
        "roc_auc",
        threshold_challenger=0.5,
        threshold_champion=0.5,
        n_resamples=300,
        seed=0,
    )
    assert (better > 0).all() and (worse < 0).all()
    # Lower-is-better metrics are oriented the same way: positive means the challenger is better.
    loss = gate.paired_bootstrap(
        y,
        good,
        noise,
        "log_loss",
        threshold_challenger=0.5,
        threshold_champion=0.5,
        n_resamples=300,
        seed=0,
    )
    assert np.median(loss) > 0


def test_bootstrap_auc_matches_sklearn_on_each_resample() -> None:
    from sklearn.metrics import roc_auc_score

    y, good, _ = _scores(2, n=200)
    rng = np.random.default_rng(5)
    idx = rng.integers(0, len(y), size=(3, len(y)))
    vector = vector_metric("roc_auc", y[idx].astype(float), good[idx], 0.5)
    expected = [roc_auc_score(y[i], good[i]) for i in idx]
    assert vector == pytest.approx(expected)


@pytest.mark.parametrize(
    ("challenger", "champion", "passes"),
    [("good", "noise", True), ("noise", "good", False), ("good", "good", True)],
)
def test_champion_rule_rejects_only_a_clearly_worse_challenger(
    challenger: str, champion: str, passes: bool
) -> None:
    y, good, noise = _scores(3)
    scores = {"good": good, "noise": noise}
    result = gate.compare_with_champion(
        y,
        scores[challenger],
        scores[champion],
        threshold_challenger=0.5,
        threshold_champion=0.5,
        settings=Champion(max_regression=0.01, confidence=0.95, bootstrap=300),
        seed=0,
    )
    assert result.passed is passes
    assert result.limit == pytest.approx(-0.01)
    assert "champion" in result.detail


def test_small_regression_inside_the_margin_passes_large_one_fails() -> None:
    y, good, _ = _scores(4, n=3000)
    rng = np.random.default_rng(9)
    slightly_worse = np.clip(good + rng.normal(0, 0.02, len(y)), 0, 1)
    much_worse = np.clip(good + rng.normal(0, 0.3, len(y)), 0, 1)
    settings = Champion(max_regression=0.02, confidence=0.95, bootstrap=300)
    kw = {"threshold_challenger": 0.5, "threshold_champion": 0.5, "settings": settings, "seed": 0}
    assert gate.compare_with_champion(y, slightly_worse, good, **kw).passed  # type: ignore[arg-type]
    assert not gate.compare_with_champion(y, much_worse, good, **kw).passed  # type: ignore[arg-type]


def test_decision_names_every_failed_rule_in_json_and_markdown() -> None:
    rules = gate.check_rules(
        [Rule(metric="roc_auc", min=0.99), Rule(metric="recall", min=0.1)],
        {"roc_auc": 0.84, "recall": 0.7},
    )
    decision = gate.decide(rules)
    assert not decision.passed
    assert "roc_auc ≥ 0.99" in decision.reason and "missed by 0.1500" in decision.reason
    payload = json.loads(json.dumps(decision.to_json()))
    assert [r["rule"] for r in payload["rules"]] == ["roc_auc ≥ 0.99", "recall ≥ 0.1"]
    assert {"observed", "limit", "margin", "passed"} <= set(payload["rules"][0])
    md = decision.to_markdown()
    assert "rejected" in md and "**FAIL**" in md and "No champion" in md


def test_no_rules_and_no_champion_pass() -> None:
    assert gate.decide([]).passed


def _prior(y: np.ndarray) -> np.ndarray:
    """What DummyClassifier(strategy="prior") scores: the positive share, on every row."""
    return np.full(len(y), float(y.mean()))


@pytest.mark.parametrize(("challenger", "passes"), [("good", True), ("noise", False)])
def test_baseline_rule_passes_a_model_that_learned_and_rejects_noise(
    challenger: str, passes: bool
) -> None:
    y, good, noise = _scores(6)
    result = gate.compare_with_baseline(
        y,
        {"good": good, "noise": noise}[challenger],
        _prior(y),
        threshold_challenger=0.5,
        settings=Baseline(min_improvement=0.05, confidence=0.95, bootstrap=300),
        seed=0,
    )
    assert result.passed is passes
    assert result.limit == pytest.approx(0.05)
    assert result.rule == "roc_auc vs baseline: better by 0.05 at 95% confidence"
    assert "baseline 0.5000" in result.detail  # the prior ranks nothing: AUC 0.5 on any data
    assert (result.margin >= 0) is passes


def test_baseline_margin_is_demanded_at_the_lower_confidence_bound() -> None:
    # AUC about 0.58: clearly better than the prior, but not by 0.2.
    y, good, noise = _scores(7, n=3000)
    weak = np.clip(0.2 * good + 0.8 * noise, 0, 1)
    kw = {"threshold_challenger": 0.5, "seed": 0}
    small = Baseline(min_improvement=0.02, bootstrap=300)
    large = Baseline(min_improvement=0.2, bootstrap=300)
    assert gate.compare_with_baseline(y, weak, _prior(y), settings=small, **kw).passed  # type: ignore[arg-type]
    assert not gate.compare_with_baseline(y, weak, _prior(y), settings=large, **kw).passed  # type: ignore[arg-type]


def test_judge_puts_the_baseline_beside_the_challenger_and_rejects_on_it(
    config: Config,
) -> None:
    y, good, noise = _scores(8)
    no_floors = config.model_copy(update={"gate": config.gate.model_copy(update={"rules": []})})
    for scores, passes in ((good, True), (noise, False)):
        evaluation = Evaluation(
            0.5, scores, scores, all_metrics(y, scores, 0.5), [], pd.DataFrame(), {}
        )
        decision = gate.judge(no_floors, y, evaluation, None, _prior(y))
        assert decision.passed is passes
        assert [r.metric for r in decision.rules] == ["roc_auc"]
        assert decision.baseline_metrics is not None
        assert decision.baseline_metrics["roc_auc"] == pytest.approx(0.5)
        md = decision.to_markdown()
        assert "| metric | challenger | baseline |" in md
        assert "the absolute rules and the baseline decide" in md
        assert json.loads(json.dumps(decision.to_json()))["baseline"]["model"].startswith("Dummy")
    off = no_floors.model_copy(
        update={"gate": no_floors.gate.model_copy(update={"baseline": Baseline(enabled=False)})}
    )
    evaluation = Evaluation(0.5, noise, noise, all_metrics(y, noise, 0.5), [], pd.DataFrame(), {})
    assert gate.judge(off, y, evaluation, None, _prior(y)).passed  # no rule left to fail
