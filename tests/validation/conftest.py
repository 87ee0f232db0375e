"""Bad data files, each a real file in tmp_path built from the default data by one change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import Config, FeatureType

# Enough rows for the default row-count bound (1000), few enough for GX to run in a blink.
ROWS = 1500


def _names(config: Config) -> dict[str, str]:
    """Pick the columns each bad case changes from the contract, not by name."""
    c = config.contract
    integer = next(f for f in c.of_type(FeatureType.numeric) if f.integer and f.max is not None)
    return {
        "id": c.id_columns[0],
        "integer": integer.name,
        "numeric": next(f.name for f in c.of_type(FeatureType.numeric) if not f.nullable),
        "categorical": c.of_type(FeatureType.categorical)[0].name,
        "boolean": c.of_type(FeatureType.boolean)[0].name,
        "target": c.target.name,
    }


def _frame_case(kind: str, base: pd.DataFrame, config: Config) -> pd.DataFrame:
    n = _names(config)
    f = base.copy()
    if kind == "missing column":
        return f.drop(columns=[n["integer"]])
    if kind == "extra column":
        return f.assign(notes="free text")
    if kind == "wrong type":
        f[n["numeric"]] = f[n["numeric"]].astype(object)
        f.loc[[3, 9], n["numeric"]] = "abc"
    elif kind == "unseen category":
        f[n["categorical"]] = f[n["categorical"]].astype(object)
        f.loc[5, n["categorical"]] = "Never seen"
    elif kind == "out of range":
        f.loc[7, n["integer"]] = -3
        f.loc[8, n["integer"]] = 99_999
    elif kind == "not 0/1":
        f.loc[4, n["boolean"]] = 2
    elif kind == "nulls":
        f[n["numeric"]] = f[n["numeric"]].astype("float64")
        f.loc[[1, 2], n["numeric"]] = np.nan
    elif kind == "duplicate ids":
        f.loc[10, n["id"]] = f.loc[11, n["id"]]
    elif kind == "single class":
        f[n["target"]] = config.contract.target.negative
    else:
        raise ValueError(kind)
    return f


FRAME_CASES = [
    "missing column",
    "extra column",
    "wrong type",
    "unseen category",
    "out of range",
    "not 0/1",
    "nulls",
    "duplicate ids",
    "single class",
]
FILE_CASES = ["empty", "header only", "ragged rows", "wrong delimiter", "non-UTF-8", "not found"]


@pytest.fixture
def bad_file(tmp_path: Path, config: Config) -> Callable[[str], Path]:
    """Write the default data's first rows, broken in one way, and return the file."""

    def make(kind: str) -> Path:
        path = tmp_path / f"{kind.replace(' ', '_').replace('/', '')}.csv"
        text = config.data_path.read_text(encoding="utf-8")
        lines = text.splitlines()[: ROWS + 1]
        if kind in FRAME_CASES:
            base = pd.read_csv(config.data_path, nrows=ROWS)
            _frame_case(kind, base, config).to_csv(path, index=False)
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "header only":
            path.write_text(lines[0] + "\n")
        elif kind == "ragged rows":
            lines[20] += ",1,2"
            path.write_text("\n".join(lines) + "\n")
        elif kind == "wrong delimiter":
            pd.read_csv(config.data_path, nrows=ROWS).to_csv(path, index=False, sep=";")
        elif kind == "non-UTF-8":
            # One Latin-1 byte (é) at the start of row 30, as a spreadsheet export would leave it.
            lines[30] = "\udce9" + lines[30]
            path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
        elif kind != "not found":
            raise ValueError(kind)
        return path

    return make


@pytest.fixture
def names(config: Config) -> dict[str, str]:
    return _names(config)
