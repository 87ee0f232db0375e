"""Loading and splitting: stratified and seeded, time-based, and every bad table named clearly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.config import Config, load_config
from core.errors import DataError
from training.data import load_dataset


def _with_data(
    write_config: Callable[..., Path], tmp_path: Path, frame: pd.DataFrame, **edits: Any
) -> Config:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)

    def edit(raw: dict[str, Any]) -> None:
        raw["data"]["path"] = str(path)
        raw["data"].pop("snapshot", None)
        for key, value in edits.items():
            raw["model"][key] = value

    return load_config(write_config(edit))


def test_split_is_stratified_disjoint_and_seeded(config: Config) -> None:
    a, b = load_dataset(config), load_dataset(config)
    parts = [a.train, a.validation, a.test]
    # The default data, plus data/feedback.csv once a fork has merged a retraining pull request.
    rows = 7043 + a.feedback_rows
    assert sum(p.n_rows for p in parts) == a.n_rows == rows
    assert a.test.n_rows == pytest.approx(0.2 * rows, abs=1)
    assert a.validation.n_rows == pytest.approx(0.2 * rows, abs=1)
    shares = [p.y.mean() for p in parts]
    assert max(shares) - min(shares) < 0.01
    ids = [set(p.X.index) for p in parts]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert list(a.test.X.index) == list(b.test.X.index)
    assert len(a.sha256) == 64


def test_time_split_puts_the_newest_rows_in_test(
    write_config: Callable[..., Path], tmp_path: Path, default_frame: pd.DataFrame
) -> None:
    config = _with_data(
        write_config, tmp_path, default_frame, split={"time_column": "tenure", "test_size": 0.2}
    )
    ds = load_dataset(config)
    assert ds.train.X["tenure"].max() <= ds.validation.X["tenure"].min()
    assert ds.validation.X["tenure"].max() <= ds.test.X["tenure"].min()


def test_missing_target_is_named(
    write_config: Callable[..., Path], tmp_path: Path, default_frame: pd.DataFrame
) -> None:
    config = _with_data(write_config, tmp_path, default_frame.drop(columns="churn"))
    with pytest.raises(DataError, match="target column 'churn' is missing"):
        load_dataset(config)


def test_one_class_only_is_refused(
    write_config: Callable[..., Path], tmp_path: Path, default_frame: pd.DataFrame
) -> None:
    config = _with_data(write_config, tmp_path, default_frame.assign(churn="No"))
    with pytest.raises(DataError, match="only one class"):
        load_dataset(config)


def test_too_few_rows_for_the_split(
    write_config: Callable[..., Path], tmp_path: Path, default_frame: pd.DataFrame
) -> None:
    small = pd.concat([default_frame[default_frame.churn == "Yes"].head(6), default_frame.head(14)])
    config = _with_data(write_config, tmp_path, small)
    with pytest.raises(DataError, match="too few rows for the split: 20 rows"):
        load_dataset(config)


def test_unknown_target_value_and_non_numeric_feature_are_named(
    write_config: Callable[..., Path], tmp_path: Path, default_frame: pd.DataFrame
) -> None:
    odd = default_frame.copy()
    odd.loc[3, "churn"] = "Maybe"
    with pytest.raises(DataError, match="'Maybe'"):
        load_dataset(_with_data(write_config, tmp_path, odd))
    text = default_frame.copy()
    text["tenure"] = text["tenure"].astype(object)
    text.loc[3, "tenure"] = "ten"
    with pytest.raises(DataError, match=r"data.csv, file row 5: tenure: not a whole number 'ten'"):
        load_dataset(_with_data(write_config, tmp_path, text))


def test_features_keep_contract_dtypes(config: Config) -> None:
    ds = load_dataset(config)
    assert list(ds.train.X.columns) == config.contract.feature_names
    assert ds.train.X["tenure"].dtype == np.float64
    assert ds.train.X["contract"].dtype == object


def _feedback(frame: pd.DataFrame, n: int, start: int = 0) -> pd.DataFrame:
    """Rows as `make retrain` writes them: request_id, the features, the target; no id column."""
    rows = frame.iloc[start : start + n].drop(columns="rownames")
    return rows.assign(request_id=[f"req-{i}" for i in range(n)]).reset_index(drop=True)


def _with_feedback(
    write_config: Callable[..., Path],
    tmp_path: Path,
    frame: pd.DataFrame,
    feedback: pd.DataFrame,
    **edits: Any,
) -> Config:
    config = _with_data(write_config, tmp_path, frame, **edits)
    assert config.feedback_path == tmp_path / "data" / "feedback.csv"
    config.feedback_path.parent.mkdir(exist_ok=True)
    feedback.to_csv(config.feedback_path, index=False)
    return config


def test_feedback_rows_join_each_part_by_id_and_data_rows_keep_theirs(
    write_config: Callable[..., Path], tmp_path: Path, default_frame: pd.DataFrame
) -> None:
    without = load_dataset(_with_data(write_config, tmp_path / "a", default_frame))
    config = _with_feedback(write_config, tmp_path, default_frame, _feedback(default_frame, 300))
    ds = load_dataset(config)
    assert ds.feedback_rows == 300 and ds.n_rows == 7043 + 300
    assert sum(p.n_rows for p in ds.parts) == ds.n_rows
    # The data rows are in the same parts as without feedback: the champion, trained without
    # these rows, is never scored on a row it trained on.
    for old, new in zip(without.parts, ds.parts, strict=True):
        assert set(new.X.index[new.X.index < 7043]) == set(old.X.index)
    # Feedback rows (index 7043..7342) are spread over every part, by request id: stable as the
    # file grows.
    fed = set(range(7043, 7343))
    assert all(fed & set(p.X.index) for p in ds.parts)
    grown = _feedback(default_frame, 400)
    again = load_dataset(_with_feedback(write_config, tmp_path, default_frame, grown))
    for first, second in zip(ds.parts, again.parts, strict=True):
        assert set(first.X.index[first.X.index >= 7043]) <= set(second.X.index)
    assert ds.feedback_sha256 is not None and len(ds.feedback_sha256) == 64
    assert ds.fingerprint not in (ds.sha256, ds.feedback_sha256)
    assert "+ 300 feedback rows from `feedback.csv`" in ds.describe()


def test_a_time_split_keeps_the_data_rows_order_and_spreads_feedback(
    write_config: Callable[..., Path], tmp_path: Path, default_frame: pd.DataFrame
) -> None:
    split = {"time_column": "rownames", "test_size": 0.2}
    without = load_dataset(_with_data(write_config, tmp_path / "a", default_frame, split=split))
    config = _with_feedback(
        write_config, tmp_path, default_frame, _feedback(default_frame, 200), split=split
    )
    ds = load_dataset(config)
    assert set(ds.test.X.index[ds.test.X.index < 7043]) == set(without.test.X.index)
    assert 0 < len(set(range(7043, 7243)) & set(ds.test.X.index)) < 200


def test_no_feedback_file_yet_trains_on_the_data_alone(
    write_config: Callable[..., Path],
    tmp_path: Path,
    default_frame: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _with_data(write_config, tmp_path, default_frame)
    ds = load_dataset(config)
    assert ds.n_rows == 7043 and ds.feedback_rows == 0 and ds.feedback_sha256 is None
    assert ds.fingerprint == ds.sha256
    assert f"no feedback file {config.feedback_path} yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.drop(columns="tenure"),
            r"feature column\(s\) missing from .*feedback.csv: tenure",
        ),
        (
            lambda f: f.assign(churn="Maybe"),
            r"feedback.csv: target column 'churn' has value\(s\) \['Maybe'\]",
        ),
        (
            lambda f: f.assign(contract="Weekly"),
            r"feedback.csv, file row 2: contract: not allowed 'Weekly'",
        ),
        (lambda f: f.assign(note="x"), r"feedback.csv: column\(s\) 'note' are not in the contract"),
    ],
    ids=["missing-feature", "unknown-class", "bad-category", "unknown-column"],
)
def test_a_malformed_feedback_file_is_a_data_error_naming_the_column(
    write_config: Callable[..., Path],
    tmp_path: Path,
    default_frame: pd.DataFrame,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
) -> None:
    bad = change(_feedback(default_frame, 50))
    config = _with_feedback(write_config, tmp_path, default_frame, bad)
    with pytest.raises(DataError, match=message) as raised:
        load_dataset(config)
    assert raised.value.exit_code == 3
