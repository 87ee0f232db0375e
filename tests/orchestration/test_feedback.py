"""Merging labelled production rows into the feedback table: pure functions on DataFrames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.config import Config
from core.errors import ConfigError
from orchestration.feedback import labelled_rows, merge
from orchestration.retrain import repository_path


def window(config: Config, frame: pd.DataFrame, n: int) -> pd.DataFrame:
    return frame[config.contract.feature_names].iloc[:n].assign(feedback="Yes")


def test_merge_keeps_a_feature_the_old_file_lacks(
    config: Config, default_frame: pd.DataFrame
) -> None:
    rows = labelled_rows(
        window(config, default_frame, 4).assign(request_id=list("abcd")), config.contract, "log"
    )
    old = rows.iloc[:2].drop(columns="tenure")  # written before `tenure` joined the contract
    merged, new = merge(old, rows.iloc[2:])
    assert new == 2 and list(merged["request_id"]) == list("abcd")
    assert list(merged.columns) == list(rows.columns)
    assert merged["tenure"].isna().tolist() == [True, True, False, False]


def test_a_partly_labelled_file_of_number_classes_keeps_its_labels(
    config: Config, default_frame: pd.DataFrame
) -> None:
    contract = config.contract.model_copy(
        update={
            "target": config.contract.target.model_copy(
                update={"classes": ["0", "1"], "positive": "1"}
            )
        }
    )
    raw = window(config, default_frame, 3).drop(columns="feedback")
    raw[contract.target.name] = [1.0, None, 0.0]  # how pandas reads "1,,0"
    rows = labelled_rows(raw, contract, "file.csv")
    assert rows[contract.target.name].tolist() == ["1", "0"]


def test_rows_without_ids_are_told_apart_by_position(
    config: Config, default_frame: pd.DataFrame
) -> None:
    same = window(config, default_frame, 1)
    raw = pd.concat([same, same], ignore_index=True)  # two customers, identical features
    rows = labelled_rows(raw, config.contract, "file.csv")
    assert rows["request_id"].nunique() == 2
    again = labelled_rows(raw, config.contract, "file.csv")
    assert merge(rows, again)[1] == 0  # the same file twice adds nothing


def test_a_feedback_path_outside_the_repository_is_refused(config: Config, tmp_path: Path) -> None:
    outside = config.model_copy(
        update={"data": config.data.model_copy(update={"feedback_path": Path("../outside.csv")})}
    )
    with pytest.raises(ConfigError, match="outside the repository"):
        repository_path(outside, tmp_path)
