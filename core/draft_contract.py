"""Draft a `contract:` section from a data file, for a person to review and paste into config.yaml.

Usage: python -m core.draft_contract DATA [--target NAME] [--id NAME ...] [--max-categories 50]

A text column with more distinct values than --max-categories stays categorical when its values
repeat (REPEATS rows per value on average), and is left out with a note when they do not.
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
from core.data import read_table
from core.errors import DataError

# A text column with more distinct values than this is not listed as categories by default...
MAX_CATEGORIES = 50
# ...unless each value is seen in at least this many rows on average (then it still groups rows).
REPEATS = 10


def _bound(value: float, *, down: bool) -> float | int:
    """Round an observed bound outward to a readable number, so new data has a little room."""
    if value == 0 or not math.isfinite(value):
        return 0
    scale = 10 ** math.floor(math.log10(abs(value)))
    rounded = (math.floor if down else math.ceil)(value / scale) * scale
    return int(rounded) if float(rounded).is_integer() else float(rounded)


def draft_feature(
    name: str, column: pd.Series, max_categories: int, notes: list[str] | None = None
) -> dict[str, Any] | None:
    """Infer type, nullability, range or categories of one column; None: leave it out.

    A text column with more distinct values than `max_categories` stays categorical when its
    values repeat (each seen in at least REPEATS rows on average: a state, a product code);
    otherwise it names rows rather than groups them (a name, free text) and is left out. Both
    cases add a line to `notes` for the person reviewing the draft.
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
        if len(categories) > max_categories:
            per_value = len(values) / len(categories)
            if per_value < REPEATS:
                _note(
                    notes,
                    f"column {name!r} left out of the features: {len(categories)} distinct text "
                    f"values in {len(values)} rows name rows rather than group them (an id, a "
                    "name, free text); contract.unknown_columns is 'ignore' so the file may keep "
                    "it. Pass it as ID= if it is an id, or drop it from the file",
                )
                return None
            _note(
                notes,
                f"column {name!r} kept as categorical with {len(categories)} categories (more "
                f"than {max_categories}, but each is seen in {per_value:.0f} rows on average); "
                "a value not listed is refused by the API: review the list",
            )
        feature["type"] = "categorical"
        feature["categories"] = categories
    if column.isna().any():
        feature["nullable"] = True
    return feature


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
    classes = sorted(str(v) for v in frame[target].dropna().unique())
    if len(classes) != 2:
        raise DataError(
            f"target {target!r} has {len(classes)} classes {classes[:10]}; the template is for "
            "binary targets: pick a column with two values, or map this one to two"
        )
    counts = frame[target].astype(str).value_counts()
    positive = str(counts.index[-1])  # the minority class is usually the one to find
    negative = next(c for c in classes if c != positive)
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
            "target": {"name": target, "classes": [negative, positive], "positive": positive},
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
        f"# Drafted from {args.data} ({len(frame)} rows). Review every line before you paste it:",
        file=sys.stderr,
    )
    print(
        "# ranges are rounded outward, categories are only those seen, the positive class is the rarer one.",
        file=sys.stderr,
    )
    yaml.safe_dump(contract, sys.stdout, sort_keys=False, default_flow_style=None, width=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
