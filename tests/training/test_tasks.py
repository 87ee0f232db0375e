"""Training follows the target's task with no code change: data checks, the split, metrics, the
gate on the task's metric (lower-is-better included) and the compiled form with its probes.

Each test runs on the shipped multiclass and regression examples (tests.conftest.TASK_CONFIGS), a
sample of their rows written beside a copy of their config: no column is named here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from core.compiled import load_compiled, load_probes
from core.config import METRICS, Config, TaskType, load_config
from core.data import read_table
from core.errors import DataError
from core.task import model_scores
from tests.conftest import TASK_CONFIGS
from training import gate
from training.compile import compile_pipeline
from training.data import MIN_CLASS_ROWS, load_dataset
from training.evaluate import evaluate_model
from training.model import fit


def sample_config(
    tmp_path: Path,
    task: str,
    rows: int = 1500,
    edit_rows: Callable[[pd.DataFrame, Config], pd.DataFrame] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Config:
    """Copy a task example's config with `rows` of its data (changed by `edit_rows`) into tmp_path."""
    source = load_config(TASK_CONFIGS[task])
    frame = read_table(source.data_path).sample(n=rows, random_state=0)
    if edit_rows is not None:
        frame = edit_rows(frame, source)
    frame.to_csv(tmp_path / "data.csv", index=False)
    raw = yaml.safe_load(TASK_CONFIGS[task].read_text())
    raw["data"] = {"path": "data.csv", "format": "csv", "feedback_path": None}
    raw["validation"] = {"row_count": {"min": 10}}
    if edit is not None:
        edit(raw)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(tmp_path / "config.yaml")


@pytest.mark.parametrize("task", sorted(TASK_CONFIGS))
def test_train_evaluate_and_gate_follow_the_task(tmp_path: Path, task: str) -> None:
    config = sample_config(tmp_path, task)
    target = config.contract.target
    ds = load_dataset(config)
    model = fit(config, ds)
    evaluation = evaluate_model(model, ds, config)
    assert evaluation.threshold is None  # the threshold step is binary's alone
    assert set(target.metrics) <= set(evaluation.metrics)
    assert not {"roc_auc", "threshold"} & set(evaluation.metrics)
    if target.type is TaskType.multiclass:
        assert evaluation.p_test.shape == (ds.test.n_rows, len(target.classes))
        assert "confusion_matrix.png" in evaluation.plots
    else:
        assert evaluation.p_test.shape == (ds.test.n_rows,)
        assert {"predicted_vs_actual.png", "residuals.png"} <= set(evaluation.plots)
    baseline = gate.score_baseline(ds, target)
    decision = gate.judge(config, ds.test.y, evaluation, None, baseline)
    assert decision.passed, decision.reason
    assert decision.baseline is not None
    metric = config.gate.baseline.metric
    assert metric in target.metrics
    # The model beats the trivial one in the metric's own direction.
    ours, theirs = evaluation.metrics[metric], decision.baseline["metrics"][metric]
    assert ours > theirs if METRICS[metric] else ours < theirs
    # Against itself as champion, nothing regressed; against the baseline as champion, the gate
    # sees an improvement whichever way the metric points.
    same = gate.ChampionScores({"version": "1"}, None, evaluation.p_test)
    assert gate.judge(config, ds.test.y, evaluation, same, baseline).passed
    worse = gate.compare_with_champion(
        ds.test.y,
        baseline,
        evaluation.p_test,
        threshold_challenger=None,
        threshold_champion=None,
        settings=config.gate.champion,
        seed=0,
    )
    assert not worse.passed and worse.observed < 0


@pytest.mark.parametrize("task", sorted(TASK_CONFIGS))
def test_a_lower_is_better_rule_rejects_above_its_max(tmp_path: Path, task: str) -> None:
    lower = {"multiclass": "log_loss", "regression": "rmse"}[task]
    config = sample_config(
        tmp_path, task, edit=lambda raw: raw["gate"].update(rules=[{"metric": lower, "max": 1e-6}])
    )
    ds = load_dataset(config)
    evaluation = evaluate_model(fit(config, ds), ds, config)
    decision = gate.judge(config, ds.test.y, evaluation, None, None)
    assert not decision.passed
    assert f"{lower} ≤ 1e-06" in decision.reason


def test_a_regression_target_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    def text(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
        frame = frame.astype({config.contract.target.name: object})
        frame.iloc[3, frame.columns.get_loc(config.contract.target.name)] = "late"
        return frame

    config = sample_config(tmp_path, "regression", edit_rows=text)
    with pytest.raises(
        DataError, match=rf"{config.contract.target.name!r} is a regression target.*'late'"
    ):
        load_dataset(config)


def test_a_regression_target_beyond_its_range_is_refused(tmp_path: Path) -> None:
    config = sample_config(
        tmp_path, "regression", edit=lambda raw: raw["contract"]["target"].update(max=20)
    )
    with pytest.raises(DataError, match=r"beyond contract\.target\.max \(20\.0\)"):
        load_dataset(config)


def test_a_class_not_in_the_contract_is_refused(tmp_path: Path) -> None:
    def unknown(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
        frame = frame.copy()
        frame.iloc[0, frame.columns.get_loc(config.contract.target.name)] = "__new_class__"
        return frame

    config = sample_config(tmp_path, "multiclass", edit_rows=unknown)
    with pytest.raises(
        DataError, match=r"\['__new_class__'\] outside classes .*contract\.target\.classes"
    ):
        load_dataset(config)


def test_a_class_seen_once_is_a_clear_error(tmp_path: Path) -> None:
    def once(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
        target = config.contract.target
        rare = target.classes[-1]
        column = frame[target.name]
        keep = (column != rare) | (column == rare).cumsum().eq(1)
        return frame[keep]

    config = sample_config(tmp_path, "multiclass", edit_rows=once)
    rare = config.contract.target.classes[-1]
    with pytest.raises(
        DataError,
        match=rf"class {rare!r} has 1 row\(s\); a stratified split needs at least {MIN_CLASS_ROWS}",
    ):
        load_dataset(config)


def test_the_compiled_form_reproduces_sklearn_per_task(task_bundle: tuple[Config, Path]) -> None:
    config, bundle = task_bundle
    compiled, probes = load_compiled(bundle), load_probes(bundle)
    assert compiled is not None and probes is not None
    assert probes.threshold is None and probes.positive is None
    names = config.contract.feature_names
    ours = compiled.predict(probes.columns(names), len(probes.records))
    np.testing.assert_allclose(ours, probes.scores, rtol=0, atol=1e-9)
    if config.contract.target.type is TaskType.multiclass:
        assert ours.shape == (len(probes.records), len(config.contract.target.classes))
        np.testing.assert_allclose(ours.sum(axis=1), 1.0)


@pytest.mark.parametrize("task", sorted(TASK_CONFIGS))
def test_an_estimator_the_compiler_does_not_cover_falls_back(tmp_path: Path, task: str) -> None:
    estimator = {
        "multiclass": "sklearn.tree.DecisionTreeClassifier",
        "regression": "sklearn.tree.DecisionTreeRegressor",
    }[task]
    config = sample_config(
        tmp_path,
        task,
        rows=400,
        edit=lambda raw: raw["model"].update(estimator=estimator, params={"max_depth": 3}),
    )
    ds = load_dataset(config)
    model = fit(config, ds)
    assert compile_pipeline(model, config.contract) is None
    assert model_scores(model, ds.test.X, config.contract.target).shape[0] == ds.test.n_rows
