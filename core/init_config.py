"""`make init`: write a complete, commented config for a new table, for a person to review.

Usage: python -m core.init_config DATA --target NAME [--id NAME ...] [--project NAME]
       [--out config.yaml] [--force]

Project and MLflow names come from the file name (or `--project`), the contract from `core/draft_contract.py`,
slices from the low-cardinality categorical features, validation bounds from the observed data
with margins, and the gate from the baseline comparison (absolute floors are written commented
out). Nothing is written when the table cannot be described, or when the file exists without
`--force`.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from core.cli import entry_point
from core.config import DEFAULT_METRIC, Baseline, TaskType, load_config
from core.data import read_table
from core.draft_contract import describe_target, draft_contract
from core.errors import ConfigError
from core.io import atomic_write_text
from core.templates import render

# A slice needs few values to be readable, and at most this many slices keep the report short.
MAX_SLICE_CATEGORIES = 8
MAX_SLICES = 2
PROJECT = re.compile(r"[a-z0-9][a-z0-9-]*")


def project_name(data: Path) -> str:
    """Turn the file name into a project name: lower-case letters, digits and dashes."""
    name = re.sub(r"[^a-z0-9]+", "-", data.stem.lower()).strip("-")
    return name if name and name[0].isalnum() else f"model-{name}".strip("-")


def choose_slices(features: list[dict[str, Any]]) -> list[str]:
    """Pick the categorical features with the fewest values (2 to 8), in file order on ties."""
    fits = [
        f
        for f in features
        if f["type"] == "categorical" and 2 <= len(f["categories"]) <= MAX_SLICE_CATEGORIES
    ]
    fits.sort(key=lambda f: len(f["categories"]))
    return [f["name"] for f in fits[:MAX_SLICES]]


def validation_bounds(frame: pd.DataFrame, target: str, positive: str) -> dict[str, Any]:
    """Bounds from the observed table: half to a hundred times the rows, half to 1.5 times the share.

    The share bounds apply to a binary target's positive class (`positive`); other tasks have none.
    """
    rows = len(frame)
    share = float((frame[target].astype(str) == positive).mean()) if positive else 0.0
    return {
        "rows": rows,
        "share": f"{share:.3f}",
        "row_min": max(1, rows // 2),
        "row_max": rows * 100,
        "share_min": math.floor(share * 50) / 100,
        "share_max": min(1.0, math.ceil(share * 150) / 100),
    }


def _contract_yaml(contract: dict[str, Any]) -> str:
    """Dump the drafted contract with one feature per line, as the shipped configs have it."""
    body = contract["contract"]
    head = {k: v for k, v in body.items() if k != "features"}
    text = yaml.safe_dump({"contract": head}, sort_keys=False, default_flow_style=None, width=110)
    lines = [text.rstrip("\n"), "  features:"]
    for feature in body["features"]:
        line = yaml.safe_dump(feature, sort_keys=False, default_flow_style=True, width=10_000)
        lines.append(f"    - {line.strip()}")
    return "\n".join(lines) + "\n"


def draft_config(
    frame: pd.DataFrame,
    data: Path,
    out: Path,
    target: str,
    ids: list[str],
    project: str | None = None,
    notes: list[str] | None = None,
) -> str:
    """Render the whole config text for `frame` read from `data`, to be written at `out`."""
    contract = draft_contract(frame, target, ids, notes=notes)
    body = contract["contract"]
    task = TaskType(body["target"]["type"])
    return render(
        "config.yaml.j2",
        source=data.name,
        today=datetime.date.today().isoformat(),
        project=project or project_name(data),
        data_path=Path(os.path.relpath(data.resolve(), out.resolve().parent)).as_posix(),
        data_format="parquet" if data.suffix == ".parquet" else "csv",
        contract=_contract_yaml(contract),
        notes=notes or [],
        slices=f"[{', '.join(choose_slices(body['features']))}]",
        min_improvement=Baseline().min_improvement,
        task=task.value,
        metric=DEFAULT_METRIC[task],
        estimator=ESTIMATORS[task],
        **validation_bounds(frame, target, body["target"].get("positive", "")),
    )


# The estimator a drafted config starts with, per task: fast, compiled to numpy for serving.
ESTIMATORS = {
    TaskType.binary: "sklearn.linear_model.LogisticRegression",
    TaskType.multiclass: "sklearn.linear_model.LogisticRegression",
    TaskType.regression: "sklearn.linear_model.Ridge",
}

REVIEW = """review before `make pipeline` (lines marked REVIEW in the file):
  - contract: types, nullability, ranges and categories are only what this file shows
  - contract.target: {task}
  - model.slices: {slices}
  - gate: the baseline comparison decides; absolute floors are commented out until you set them
  - validation: row count (and a binary positive share) bounds are the observed ones with margins"""
NEXT = "next: make check-config && make pipeline"


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.init_config", description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--target", required=True, help="name of the column to predict")
    parser.add_argument("--id", action="append", default=[], help="an id column (repeatable)")
    parser.add_argument("--project", help="project name (default: from the file name)")
    parser.add_argument("--out", type=Path, default=Path("config.yaml"))
    parser.add_argument("--force", action="store_true", help="overwrite an existing config")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        raise ConfigError(f"{args.out} exists: pass FORCE=1 (--force) to overwrite it")
    frame = read_table(args.data, "parquet" if args.data.suffix == ".parquet" else "csv")
    if args.project is not None and not PROJECT.fullmatch(args.project):
        raise ConfigError(
            f"project {args.project!r}: use lower-case letters, digits and dashes (PROJECT=)"
        )
    notes: list[str] = []
    text = draft_config(frame, args.data, args.out, args.target, args.id, args.project, notes)
    # Check what was drafted loads before it replaces anything.
    staged = args.out.with_name(f".{args.out.name}.init")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text(text)
    try:
        config = load_config(staged)
    finally:
        staged.unlink()
    atomic_write_text(args.out, text)
    print(f"✓ init: {args.out} for {args.data} ({len(frame)} rows, target {args.target})")
    task = describe_target(config.contract.target.model_dump(mode="json"), frame[args.target])
    print(REVIEW.format(slices=", ".join(config.model.slices) or "none chosen", task=task))
    for note in notes:
        print(f"  - {note}")
    print(NEXT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
