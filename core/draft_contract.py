"""Draft a `contract:` section from a data file, for a person to review and paste into config.yaml.

Usage: python -m core.draft_contract DATA [--target NAME] [--id NAME ...] [--max-categories 50]

A string column with more distinct values than --max-categories is free text (a `text` feature)
when its values are long and mostly different; else it stays categorical when its values repeat
(REPEATS rows per value on average), and is left out with a note when they do not.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from core.cli import entry_point
from core.config import TEXT_MAX_LENGTH
from core.data import read_table
from core.errors import DataError

# A text column with more distinct values than this is not listed as categories by default...
MAX_CATEGORIES = 50
# ...unless each value is seen in at least this many rows on average (then it still groups rows).
REPEATS = 10
# A string column with more distinct values than --max-categories is free text when its values
# average this many characters and at least this share of them differ.
TEXT_MEAN_LENGTH = 20
TEXT_DISTINCT_SHARE = 0.5


def _bound(value: float, *, down: bool) -> float | int:
    """Round an observed bound outward to a readable number, so new data has a little room."""
    if value == 0 or not math.isfinite(value):
        return 0
    scale = 10 ** math.floor(math.log10(abs(value)))
    rounded = (math.floor if down else math.ceil)(value / scale) * scale
    return int(rounded) if float(rounded).is_integer() else float(rounded)


def is_free_text(values: pd.Series) -> bool:
    """Tell free text from labels: long values, most of them different (an id is short)."""
    text = values.astype(str)
    return (
        text.str.len().mean() >= TEXT_MEAN_LENGTH
        and text.nunique() >= TEXT_DISTINCT_SHARE * len(text)
    )


def draft_text(values: pd.Series) -> dict[str, Any]:
    """A text feature: the observed longest value rounded up, the blank share when there is one."""
    text = values.astype(str)
    longest = int(text.str.len().max())
    feature: dict[str, Any] = {
        "type": "text",
        "max_length": min(TEXT_MAX_LENGTH, int(_bound(float(longest) * 1.5, down=False))),
    }
    blank = float((text.str.strip() == "").mean())
    if blank:
        feature["max_empty_share"] = min(1.0, math.ceil(blank * 150) / 100)
    return feature


def draft_feature(
    name: str, column: pd.Series, max_categories: int, notes: list[str] | None = None
) -> dict[str, Any] | None:
    """Infer type, nullability, range or categories of one column; None: leave it out.

    A string column with more distinct values than `max_categories` is a text feature when its
    values are long and mostly different (free text); it stays categorical when its values
    repeat (each seen in at least REPEATS rows on average: a state, a product code); otherwise it
    names rows rather than groups them (an id, a name) and is left out. The last two add a line
    to `notes` for the person reviewing the draft.
    """
    values = column.dropna()
    feature: dict[str, Any] = {"name": name}
    is_numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if pd.api.types.is_bool_dtype(column) or (
        is_numeric and set(values.unique()) <= {0, 1} and len(values)
    ):
        feature["type"] = "boolean"
    elif is_numeric:
        feature["type"] = "numeric"
        if pd.api.types.is_integer_dtype(column) or (
            len(values) and (values == values.round()).all()
        ):
            feature["integer"] = True
        if len(values):
            feature["min"] = _bound(float(values.min()), down=True)
            feature["max"] = _bound(float(values.max()), down=False)
    else:
        categories = sorted(str(v) for v in values.unique())
        if len(categories) > max_categories and is_free_text(values):
            feature |= draft_text(values)
        elif len(categories) > max_categories and len(values) / len(categories) < REPEATS:
            _note(
                notes,
                f"column {name!r} left out of the features: {len(categories)} distinct short "
                f"text values in {len(values)} rows name rows rather than group them (an id, "
                "a name); contract.unknown_columns is 'ignore' so the file may keep it. Pass "
                "it as ID= if it is an id, or drop it from the file",
            )
            return None
        else:
            if len(categories) > max_categories:
                _note(
                    notes,
                    f"column {name!r} kept as categorical with {len(categories)} categories "
                    f"(more than {max_categories}, but each is seen in "
                    f"{len(values) / len(categories):.0f} rows on average); a value not listed "
                    "is refused by the API: review the list",
                )
            feature["type"] = "categorical"
            feature["categories"] = categories
    if column.isna().any():
        feature["nullable"] = True
    return feature


# A numeric target with more distinct values than this is a quantity (regression), not classes;
# a target of text values with more than this many is refused (no template task fits it).
MAX_CLASSES = 20


def draft_target(name: str, column: pd.Series) -> dict[str, Any]:
    """Infer the task of the target column: regression, binary or multiclass, with its classes or range."""
    values = column.dropna()
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    distinct = int(values.nunique())
    if numeric and distinct > MAX_CLASSES:
        return {
            "name": name,
            "type": "regression",
            "min": _bound(float(values.min()), down=True),
            "max": _bound(float(values.max()), down=False),
        }
    classes = sorted(str(v) for v in values.unique())
    if len(classes) < 2:
        raise DataError(
            f"target {name!r} has {len(classes)} value(s) {classes}: nothing to learn; pick "
            "another column"
        )
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"target {name!r} has {len(classes)} distinct text values (more than {MAX_CLASSES}): "
            "neither classes nor a number; map it to fewer classes or pick another column"
        )
    if len(classes) == 2:
        counts = column.astype(str).value_counts()
        positive = str(counts.index[-1])  # the minority class is usually the one to find
        negative = next(c for c in classes if c != positive)
        return {
            "name": name,
            "type": "binary",
            "classes": [negative, positive],
            "positive": positive,
        }
    return {"name": name, "type": "multiclass", "classes": classes}


def describe_target(target: dict[str, Any], column: pd.Series) -> str:
    """Say which task was inferred for the target and why, in one line for the person to check."""
    distinct = int(column.dropna().nunique())
    if target["type"] == "regression":
        return (
            f"target {target['name']!r}: regression (numeric with {distinct} distinct values, more "
            f"than {MAX_CLASSES}); range [{target['min']}, {target['max']}]"
        )
    if target["type"] == "binary":
        return (
            f"target {target['name']!r}: binary (2 classes); positive class "
            f"{target['positive']!r}, the rarer one"
        )
    return (
        f"target {target['name']!r}: multiclass ({distinct} classes: "
        f"{', '.join(target['classes'])})"
    )


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)


def check_columns(frame: pd.DataFrame, target: str, ids: list[str]) -> None:
    """Refuse a table no contract can describe: no rows, an empty column, an id that repeats."""
    if frame.empty:
        raise DataError("the file has no data rows: export the table with its rows")
    for name in frame.columns:
        if frame[name].isna().all():
            raise DataError(f"column {name!r} is empty in every row: drop it from the file")
    for name in ids:
        repeated = int(frame[name].duplicated().sum())
        if repeated:
            raise DataError(
                f"id column {name!r} has {repeated} repeated values: pick a unique column "
                "or leave ID out"
            )


def draft_contract(
    frame: pd.DataFrame,
    target: str,
    ids: list[str],
    max_categories: int = MAX_CATEGORIES,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Draft the contract mapping for a table; what a reviewer must know goes to `notes`."""
    missing = [c for c in [target, *ids] if c not in frame.columns]
    if missing:
        raise DataError(
            f"column(s) {', '.join(map(repr, missing))} not in the file: pick one of "
            f"{', '.join(frame.columns)}"
        )
    check_columns(frame, target, ids)
    drafted = [
        draft_feature(str(c), frame[c], max_categories, notes)
        for c in frame.columns
        if c != target and c not in ids
    ]
    features = [f for f in drafted if f is not None]
    if not features:
        raise DataError(
            "no column can be a feature: every one besides the target and ids holds near-unique "
            "text (ids, names): add numeric or categorical columns to the file"
        )
    return {
        "contract": {
            "id_columns": ids,
            # A column left out is still in the file: the table must be allowed to keep it.
            "unknown_columns": "fail" if len(features) == len(drafted) else "ignore",
            "target": draft_target(target, frame[target]),
            "features": features,
        }
    }


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--target", required=True, help="name of the column to predict")
    parser.add_argument("--id", action="append", default=[], help="an id column (repeatable)")
    parser.add_argument("--max-categories", type=int, default=MAX_CATEGORIES)
    args = parser.parse_args(argv)
    frame = read_table(args.data, "parquet" if args.data.suffix == ".parquet" else "csv")
    notes: list[str] = []
    contract = draft_contract(frame, args.target, args.id, args.max_categories, notes)
    for note in notes:
        print(f"# note: {note}", file=sys.stderr)
    print(
        f"# {describe_target(contract['contract']['target'], frame[args.target])}", file=sys.stderr
    )
    print(
        f"# Drafted from {args.data} ({len(frame)} rows). Review every line before you paste it:",
        file=sys.stderr,
    )
    print(
        "# ranges are rounded outward, categories are only those seen, a binary positive class is the rarer one.",
        file=sys.stderr,
    )
    yaml.safe_dump(contract, sys.stdout, sort_keys=False, default_flow_style=None, width=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
