"""The task in the contract (binary, multiclass, regression): what loads, what is refused, the
per-task metrics against scikit-learn, and the labels and truths each task gives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from core.config import DEFAULT_METRIC, TASK_METRICS, Target, TaskType, load_config
from core.errors import ConfigError, ContractError
from core.metrics import all_metrics, class_recall_key, metric_value, vector_metric
from core.task import labels, output_columns, summary_scores, truth_values
from tests.conftest import TASK_CONFIGS

CLASSES = ["low", "mid", "high", "top"]


def multiclass(raw: dict[str, Any], classes: list[str] = CLASSES) -> None:
    """Turn the fixture's binary target into a multiclass one (the config only; no data read)."""
    raw["contract"]["target"] = {
        "name": raw["contract"]["target"]["name"],
        "type": "multiclass",
        "classes": classes,
    }
    raw.pop("gate", None)
    raw.pop("drift", None)


def regression(raw: dict[str, Any]) -> None:
    raw["contract"]["target"] = {
        "name": raw["contract"]["target"]["name"],
        "type": "regression",
        "min": 0,
        "max": 10,
    }
    raw["model"] = {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}}
    raw.pop("gate", None)
    raw.pop("drift", None)


def test_a_target_without_type_is_binary_as_before(config: Any) -> None:
    assert config.contract.target.type is TaskType.binary
    assert config.gate.baseline.metric in TASK_METRICS[TaskType.binary]


@pytest.mark.parametrize("edit", [multiclass, regression], ids=["multiclass", "regression"])
def test_each_task_gets_its_own_default_metric(
    edit: Callable[[dict[str, Any]], None], write_config: Callable[..., Path]
) -> None:
    loaded = load_config(write_config(edit))
    task = loaded.contract.target.type
    for metric in (
        loaded.gate.baseline.metric,
        loaded.gate.champion.metric,
        loaded.drift.performance_metric,
    ):
        assert metric == DEFAULT_METRIC[task]
    assert loaded.contract.target.metrics == TASK_METRICS[task]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: multiclass(raw, ["a", "b"]), r"contract\.target.*three or more classes"),
        (lambda raw: multiclass(raw, ["a", "b", "a"]), r"contract\.target.*twice"),
        (
            lambda raw: (multiclass(raw), raw["contract"]["target"].update(positive="low")),
            r"contract\.target.*'positive' is only allowed on a binary",
        ),
        (
            lambda raw: (regression(raw), raw["contract"]["target"].update(classes=["a", "b"])),
            r"contract\.target.*has no classes",
        ),
        (
            lambda raw: raw["contract"]["target"].update(classes=["No", "Yes", "Maybe"]),
            r"exactly two classes.*set type: multiclass",
        ),
        (
            lambda raw: (
                multiclass(raw),
                raw.update(gate={"rules": [{"metric": "roc_auc", "min": 0.7}]}),
            ),
            r"gate\.rules\[0\]\.metric: 'roc_auc' is not a metric of a multiclass target",
        ),
        (
            lambda raw: (regression(raw), raw.update(drift={"performance_metric": "macro_f1"})),
            r"drift\.performance_metric: 'macro_f1' is not a metric of a regression target",
        ),
        (
            lambda raw: (
                regression(raw),
                raw["model"].update(estimator="sklearn.linear_model.LogisticRegression", params={}),
            ),
            r"model\.estimator.*is a classifier; a regression target needs a regressor",
        ),
        (
            lambda raw: (
                multiclass(raw),
                raw["model"].update(estimator="sklearn.linear_model.Ridge", params={}),
            ),
            r"model\.estimator.*is a regressor; a multiclass target needs a classifier",
        ),
    ],
    ids=[
        "two-classes-multiclass",
        "repeated-class",
        "positive-on-multiclass",
        "classes-on-regression",
        "three-classes-binary",
        "binary-metric-on-multiclass",
        "class-metric-on-regression",
        "classifier-for-regression",
        "regressor-for-multiclass",
    ],
)
def test_a_contract_that_does_not_fit_its_task_names_the_key(
    edit: Callable[[dict[str, Any]], Any], message: str, write_config: Callable[..., Path]
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(edit))


@pytest.mark.parametrize("name", sorted(TASK_CONFIGS))
def test_the_shipped_task_examples_load(name: str) -> None:
    loaded = load_config(TASK_CONFIGS[name])
    assert loaded.contract.target.type.value == name


def _multiclass_data(n: int = 400, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = rng.dirichlet(np.ones(k), n)
    p[np.arange(n), y] += rng.random(n)  # some signal, so the metrics are not all at chance
    return y, p / p.sum(axis=1, keepdims=True)


def test_multiclass_metrics_equal_sklearn_and_their_vector_forms() -> None:
    y, p = _multiclass_data()
    k = p.shape[1]
    predicted = p.argmax(axis=1)
    expected = {
        "log_loss": skm.log_loss(y, p, labels=list(range(k))),
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "macro_f1": skm.f1_score(
            y, predicted, average="macro", labels=list(range(k)), zero_division=0
        ),
        "weighted_f1": skm.f1_score(
            y, predicted, average="weighted", labels=list(range(k)), zero_division=0
        ),
    }
    rng = np.random.default_rng(1)
    pick = rng.integers(0, len(y), size=(5, len(y)))
    for name, value in expected.items():
        assert metric_value(name, y, p, None) == pytest.approx(value, abs=1e-12), name
        rows = vector_metric(name, y[pick], p[pick], None)
        scalar = [metric_value(name, y[i], p[i], None) for i in pick]
        np.testing.assert_allclose(rows, scalar, atol=1e-12)
    target = Target(name="t", type=TaskType.multiclass, classes=CLASSES)
    metrics = all_metrics(y, p, None, target)
    for i, c in enumerate(CLASSES):
        assert metrics[class_recall_key(c)] == pytest.approx(
            skm.recall_score(y, predicted, labels=[i], average="macro")
        )
    assert "roc_auc" not in metrics and "threshold" not in metrics


def test_regression_metrics_equal_sklearn_and_their_vector_forms() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(30, 8, 500)
    p = y + rng.normal(0, 3, 500)
    expected = {
        "rmse": skm.root_mean_squared_error(y, p),
        "mae": skm.mean_absolute_error(y, p),
        "r2": skm.r2_score(y, p),
    }
    pick = rng.integers(0, len(y), size=(5, len(y)))
    for name, value in expected.items():
        assert metric_value(name, y, p, None) == pytest.approx(value, rel=1e-12), name
        rows = vector_metric(name, y[pick], p[pick], None)
        np.testing.assert_allclose(
            rows, [metric_value(name, y[i], p[i], None) for i in pick], rtol=1e-12
        )
    target = Target(name="t", type=TaskType.regression)
    assert set(all_metrics(y, p, None, target)) == {*TASK_METRICS[TaskType.regression], "n_rows"}


def test_labels_and_outputs_per_task() -> None:
    multi = Target(name="t", type=TaskType.multiclass, classes=["a", "b", "c"])
    p = np.array([[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]])
    assert labels(p, multi, None) == ["b", "a"]
    np.testing.assert_allclose(summary_scores(p, multi), [0.5, 0.7])
    assert [c for c, _ in output_columns(multi)] == [
        "score",
        "label",
        "probability_a",
        "probability_b",
        "probability_c",
    ]
    reg = Target(name="t", type=TaskType.regression)
    assert labels(np.array([1.5]), reg, None) is None
    assert [c for c, _ in output_columns(reg)] == ["score"]


def test_a_truth_the_task_cannot_have_is_refused_naming_the_field() -> None:
    multi = Target(name="t", type=TaskType.multiclass, classes=["a", "b", "c"])
    np.testing.assert_array_equal(truth_values(["c", None, "a"], multi, "feedback"), [2, np.nan, 0])
    with pytest.raises(
        ContractError, match=r"feedback has label 'z'; expected one of 'a', 'b', 'c'"
    ):
        truth_values(["a", "z"], multi, "feedback")
    reg = Target(name="t", type=TaskType.regression)
    np.testing.assert_array_equal(
        truth_values(["1.5", 2, None], reg, "feedback"), [1.5, 2.0, np.nan]
    )
    with pytest.raises(ContractError, match=r"feedback has value 'late'.*needs a number"):
        truth_values(["late"], reg, "feedback")
