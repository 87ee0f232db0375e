"""Prediction drift and the live metric per task: the chi-squared test of a multiclass model's
predicted class shares, the KS test of a regression's predictions, and the live metric from
feedback in the task's own terms. On bundles fitted on the shipped task examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.columns import REFERENCE_LABEL, REFERENCE_PREDICTED, REFERENCE_SCORE
from core.config import METRICS, Config, TaskType
from validation.drift import detect_drift
from validation.profile import read_reference


def halves(config: Config, bundle: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    reference, _ = read_reference(bundle, config.contract)
    shuffled = reference.sample(frac=1, random_state=0).reset_index(drop=True)
    half = len(shuffled) // 2
    return shuffled.iloc[:half].reset_index(drop=True), shuffled.iloc[half:].reset_index(drop=True)


def test_prediction_drift_uses_the_tasks_test(task_bundle: tuple[Config, Path]) -> None:
    config, bundle = task_bundle
    target = config.contract.target
    reference, current = halves(config, bundle)
    calm = detect_drift(reference, current, config.contract, config.drift, threshold=None)
    assert calm.score is not None and not calm.score.drifted, calm.score
    moved = current.copy()
    if target.type is TaskType.multiclass:
        assert calm.score.name == "predicted class" and calm.score.test == "chi2"
        # Half the window predicted as the rarest class: the class shares moved, the scores did not.
        rare = reference[REFERENCE_PREDICTED].value_counts().index[-1]
        moved.loc[moved.index[::2], REFERENCE_PREDICTED] = rare
    else:
        assert calm.score.test == "ks"
        spread = float(reference[REFERENCE_SCORE].std())
        moved[REFERENCE_SCORE] = moved[REFERENCE_SCORE] + spread
    drifted = detect_drift(reference, moved, config.contract, config.drift, threshold=None)
    assert drifted.score is not None and drifted.score.drifted, drifted.score
    assert drifted.verdict == "drift"


def test_the_live_metric_is_the_tasks_own(task_bundle: tuple[Config, Path]) -> None:
    config, bundle = task_bundle
    target = config.contract.target
    metric = config.drift.performance_metric
    assert metric in target.metrics
    reference, current = halves(config, bundle)
    rng = np.random.default_rng(4)
    if target.type is TaskType.multiclass:
        index = {c: i for i, c in enumerate(target.classes)}
        predicted = current[REFERENCE_PREDICTED].map(index).to_numpy(dtype=float)
        right, wrong = predicted, rng.permutation(predicted)
        wrong = np.where(wrong == predicted, (predicted + 1) % len(target.classes), wrong)
    else:
        scores = current[REFERENCE_SCORE].to_numpy()
        noise = float(scores.std())
        right = scores + rng.normal(0, 0.1 * noise, len(scores))
        wrong = scores + rng.normal(0, 3 * noise, len(scores))
    # The training value as the right labels give it: a window labelled so has not dropped.
    good = current.assign(**{REFERENCE_LABEL: right})
    first = detect_drift(reference, good, config.contract, config.drift, threshold=None)
    assert first.performance is not None and first.performance.live is not None
    training = {metric: first.performance.live}
    calm = detect_drift(
        reference, good, config.contract, config.drift, threshold=None, training_metrics=training
    )
    assert calm.performance is not None and calm.performance.status != "drift"
    assert set(calm.performance.live_metrics) <= set(target.metrics)
    bad = current.assign(**{REFERENCE_LABEL: wrong})
    dropped = detect_drift(
        reference, bad, config.contract, config.drift, threshold=None, training_metrics=training
    )
    perf = dropped.performance
    assert perf is not None and perf.status == "drift", perf
    live, was = perf.live, training[metric]
    assert live is not None and (live < was if METRICS[metric] else live > was)
    # The estimate before labels is a binary classifier's: other tasks declare it unavailable,
    # and that declaration never counts toward the verdict.
    estimate = dropped.estimate
    assert estimate is not None and estimate.status == "unavailable" and not estimate.available
    assert target.type.value in estimate.reason and estimate.metric == metric
    assert not any(r.startswith("estimated") for r in calm.reasons)


@pytest.mark.parametrize("column", [REFERENCE_PREDICTED, REFERENCE_SCORE])
def test_the_reference_of_a_multiclass_bundle_keeps_its_predicted_classes(
    task_bundle: tuple[Config, Path], column: str
) -> None:
    config, bundle = task_bundle
    reference, _ = read_reference(bundle, config.contract)
    if config.contract.target.type is TaskType.multiclass:
        assert column in reference.columns
        if column == REFERENCE_PREDICTED:
            assert set(reference[column]) <= set(config.contract.target.classes)
    else:
        assert (column in reference.columns) == (column == REFERENCE_SCORE)
