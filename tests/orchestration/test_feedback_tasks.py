"""`make retrain` collects feedback rows per task: a regression's true values as numbers (the log
keeps them as text), a multiclass target's classes; anything else is one error naming the column."""

from __future__ import annotations

import pandas as pd
import pytest

from core.columns import FEEDBACK, REQUEST_ID
from core.config import TaskType, load_config
from core.data import read_table
from core.errors import DataError
from orchestration.feedback import labelled_rows
from tests.conftest import TASK_CONFIGS


@pytest.mark.parametrize("task", sorted(TASK_CONFIGS))
def test_feedback_rows_carry_the_tasks_truth(task: str) -> None:
    config = load_config(TASK_CONFIGS[task])
    target = config.contract.target
    raw = read_table(config.data_path).head(4)[config.contract.feature_names].copy()
    raw[REQUEST_ID] = ["a", "b", "c", "d"]
    good = (
        ["12.5", None, "30.0", "7"]
        if task == "regression"
        else [target.classes[0], None, target.classes[-1], target.classes[1]]
    )
    rows = labelled_rows(raw.assign(**{FEEDBACK: good}), config.contract, "the log")
    assert rows[REQUEST_ID].tolist() == ["a", "c", "d"]
    if target.type is TaskType.regression:
        assert rows[target.name].tolist() == [12.5, 30.0, 7.0]
        bad = "late"
    else:
        assert rows[target.name].tolist() == [good[0], good[2], good[3]]
        bad = "__not_a_class__"
    with pytest.raises(DataError, match=rf"the log.*{FEEDBACK!r}.*{bad}"):
        labelled_rows(
            raw.assign(**{FEEDBACK: pd.Series([bad, None, None, None])}), config.contract, "the log"
        )
