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


def test_non_binary_target_and_missing_column(default_frame: Any) -> None:
    with pytest.raises(DataError, match="binary"):
        draft_contract.draft_contract(default_frame, "contract", [])
    with pytest.raises(DataError, match="not in the file"):
        draft_contract.draft_contract(default_frame, "nope", [])


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
    with pytest.raises(DataError, match=r"'code'.*distinct short values"):
        draft_contract.draft_contract(frame, "y", [])
