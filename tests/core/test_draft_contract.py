"""Drafting a contract from a CSV gives a section that loads and fits the data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import draft_contract
from core.config import FeatureType, load_config
from core.errors import DataError


def test_draft_of_default_data_loads_as_a_config(
    config: Any, default_frame: Any, write_config: Callable[..., Path]
) -> None:
    drafted = draft_contract.draft_contract(default_frame, "churn", ["rownames"])
    path = write_config(lambda raw: raw.update(drafted))
    loaded = load_config(path)
    assert loaded.contract.feature_names == config.contract.feature_names
    assert loaded.contract.target.positive == "Yes"
    assert loaded.contract.feature("total_charges").nullable
    assert loaded.contract.feature("female").type is FeatureType.boolean
    assert loaded.contract.feature("contract").categories == [
        "Month-to-month",
        "One year",
        "Two year",
    ]
    tenure = loaded.contract.feature("tenure")
    assert tenure.min is not None and tenure.max is not None
    assert (
        tenure.min <= default_frame["tenure"].min() and tenure.max >= default_frame["tenure"].max()
    )


def test_cli_prints_yaml(config: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = draft_contract.main([str(config.data_path), "--target", "churn", "--id", "rownames"])
    assert code == 0
    parsed = yaml.safe_load(capsys.readouterr().out)
    assert parsed["contract"]["target"]["name"] == "churn"


def test_the_task_is_inferred_from_the_target_column(default_frame: Any) -> None:
    """Three or more text values: multiclass; a number with many values: regression (with a range)."""
    categorical = next(c for c in default_frame.columns if default_frame[c].nunique() == 3)
    drafted = draft_contract.draft_contract(default_frame, categorical, [])["contract"]["target"]
    assert drafted["type"] == "multiclass"
    assert drafted["classes"] == sorted(default_frame[categorical].astype(str).unique())
    assert "positive" not in drafted
    numeric = next(
        c
        for c in default_frame.select_dtypes("number").columns
        if default_frame[c].nunique() > draft_contract.MAX_CLASSES
    )
    drafted = draft_contract.draft_contract(default_frame, numeric, [])["contract"]["target"]
    assert drafted["type"] == "regression" and "classes" not in drafted
    values = default_frame[numeric].dropna()
    assert drafted["min"] <= values.min() and drafted["max"] >= values.max()
    # A 0/1 column stays a binary target with the rarer value as the positive class.
    flag = next(c for c in default_frame.columns if set(default_frame[c].dropna()) == {0, 1})
    drafted = draft_contract.draft_contract(default_frame, flag, [])["contract"]["target"]
    assert drafted["type"] == "binary" and len(drafted["classes"]) == 2


def test_the_cli_says_which_task_it_inferred(
    config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = draft_contract.main([str(config.data_path), "--target", config.contract.target.name])
    assert code == 0
    err = capsys.readouterr().err
    assert f"target {config.contract.target.name!r}: binary" in err


def test_a_target_with_one_value_or_a_missing_column_is_refused(default_frame: Any) -> None:
    with pytest.raises(DataError, match="not in the file"):
        draft_contract.draft_contract(default_frame, "nope", [])
    constant = default_frame.assign(constant="same")
    with pytest.raises(DataError, match=r"constant.*nothing to learn"):
        draft_contract.draft_contract(constant, "constant", [])


def test_long_varied_strings_are_drafted_as_text_and_short_ones_still_refused() -> None:
    import pandas as pd

    rows = 120
    frame = pd.DataFrame(
        {
            "note": [
                f"review number {i}: the taste was {'good' if i % 2 else 'bad'}"
                for i in range(rows)
            ],
            "code": [f"B{i:05d}" for i in range(rows)],
            "y": ["a", "b"] * (rows // 2),
        }
    )
    drafted = draft_contract.draft_contract(frame.drop(columns="code"), "y", [])
    (note,) = drafted["contract"]["features"]
    assert note["type"] == "text" and note["max_length"] >= frame["note"].str.len().max()
    # Short values, all different: they name rows (an id), so the column is left out, noted.
    notes: list[str] = []
    drafted = draft_contract.draft_contract(frame, "y", [], notes=notes)
    assert [f["name"] for f in drafted["contract"]["features"]] == ["note"]
    assert len(notes) == 1 and "'code' left out" in notes[0]


def many_values_frame(rows: int) -> Any:
    """A table with a 60-value code that repeats, a near-unique name, a number and a target."""
    import pandas as pd

    return pd.DataFrame(
        {
            "code": [f"c{i % 60:02d}" for i in range(rows)],
            "name": [f"person {i}" for i in range(rows)],
            "amount": [float(i % 17) for i in range(rows)],
            "target": ["yes" if i % 4 == 0 else "no" for i in range(rows)],
        }
    )


def test_a_repeating_many_valued_column_stays_categorical_and_a_near_unique_one_is_left_out(
    write_config: Callable[..., Path],
) -> None:
    notes: list[str] = []
    drafted = draft_contract.draft_contract(many_values_frame(1200), "target", [], notes=notes)
    contract = drafted["contract"]
    by_name = {f["name"]: f for f in contract["features"]}
    assert set(by_name) == {"code", "amount"}  # `name` left out, the table refused no longer
    assert by_name["code"]["type"] == "categorical" and len(by_name["code"]["categories"]) == 60
    # The file keeps the column left out, so unknown columns must be allowed.
    assert contract["unknown_columns"] == "ignore"
    assert len(notes) == 2
    assert "'code' kept as categorical with 60 categories" in notes[0]
    assert "'name' left out" in notes[1] and "ID=" in notes[1]

    def edit(raw: dict[str, Any]) -> None:
        raw.update(drafted)
        raw["model"]["slices"] = []  # the fixture config's slices name its own columns

    assert load_config(write_config(edit)).contract.feature_names == ["code", "amount"]


def test_a_table_of_only_near_unique_text_is_refused_with_what_to_do() -> None:
    frame = many_values_frame(60)[["name", "target"]]  # 60 names, more than the 50 allowed
    with pytest.raises(DataError, match="no column can be a feature"):
        draft_contract.draft_contract(frame, "target", [])


def test_the_cli_prints_the_notes_beside_the_draft(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "table.csv"
    many_values_frame(1200).to_csv(data, index=False)
    assert draft_contract.main([str(data), "--target", "target"]) == 0
    out = capsys.readouterr()
    assert "# note: column 'name' left out" in out.err
    assert yaml.safe_load(out.out)["contract"]["unknown_columns"] == "ignore"
