"""Validate the training data against the suite generated from the data contract (`make validate`).

Usage: python -m validation.validate [--config config.yaml] [--data FILE] [--no-docs]
Writes under $REPORTS_DIR/validation/: result.json (GX result, logged by training), suite.json,
summary.md and summary.html (self-contained), data_docs/ (GX Data Docs). Exit 3 when data fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from core.checks import first_breach
from core.cli import entry_point, step
from core.config import Config, Contract, FeatureType, load_config
from core.data import read_table
from core.errors import ContractError
from core.io import atomic_write_json, atomic_write_text, sha256_file
from core.rules import Check, Rule, contract_rules
from core.settings import get_settings
from validation import report
from validation.suite import gx, run_suite, suite


def text_columns(contract: Contract) -> list[str]:
    """Columns whose values are labels: categorical features and a classifier's target."""
    target = [contract.target.name] if contract.target.is_classifier else []
    return [f.name for f in contract.of_type(FeatureType.categorical)] + target


def load_table(path: Path, fmt: Literal["csv", "parquet"], contract: Contract) -> pd.DataFrame:
    """Read a training table; label columns become pandas categoricals of their text.

    Free-text features stay strings (each value is mostly its own), also when they look numeric.

    Categoricals make GX's set checks several times faster on large tables. A label column that
    pandas parsed as numbers (categories like "1", "2") is re-read as text, so the values are
    compared with the contract's categories as written.
    """
    frame = read_table(path, fmt, contract)
    labels = [c for c in text_columns(contract) if c in frame.columns]
    free = [f.name for f in contract.of_type(FeatureType.text) if f.name in frame.columns]
    numeric = [c for c in labels + free if not pd.api.types.is_string_dtype(frame[c])]
    if numeric and fmt == "csv":
        frame[numeric] = pd.read_csv(path, usecols=numeric, dtype=str, na_values=[""])
    elif numeric:
        for c in numeric:
            frame[c] = frame[c].astype(str).where(frame[c].notna(), None)
    for c in labels:
        frame[c] = frame[c].astype("category")
    return frame


def numeric_type_examples(frame: pd.DataFrame, column: str) -> list[str]:
    """A few values of `column` that are not numbers, for the message of a failed type check."""
    values = frame[column]
    bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
    return [repr(v) for v in pd.unique(values[bad])[: report.MAX_EXAMPLES]]


def summarise(
    result: dict[str, Any], rules: list[Rule], frame: pd.DataFrame
) -> list[report.Outcome]:
    """Pair results with rules; give failed type checks examples of the values that broke them."""
    items = report.outcomes(result, rules, frame.columns)
    return [
        report.with_examples(o, numeric_type_examples(frame, o.column))
        if o.rule.check is Check.numeric_type and o.status == "failed"
        else o
        for o in items
    ]


def validate(
    frame: pd.DataFrame, config: Config, out_dir: Path, source: str, *, docs: bool = True
) -> tuple[dict[str, Any], list[report.Outcome]]:
    """Run the suite on `frame`, write every report under `out_dir`, return result and outcomes."""
    rules = contract_rules(config)
    result = run_suite(frame, rules, config, out_dir / "data_docs" if docs else None)
    result.setdefault("meta", {}).update(
        {
            "data_path": source,
            # What `make train` compares before it attaches this result to its run.
            "data_sha256": sha256_file(Path(source)) if Path(source).is_file() else None,
            "rows": len(frame),
            "config_sha256": config.sha256,
        }
    )
    items = summarise(result, rules, frame)
    stats = result.get("statistics", {})
    facts: dict[str, object] = {
        "data": source,
        "rows": f"{len(frame):,}",
        "checks passed": f"{stats.get('successful_expectations')} of {stats.get('evaluated_expectations')}",
        "result": "passed" if result["success"] else "FAILED",
        "config sha256": config.sha256[:12],
    }
    title = f"Data validation: {config.project}"
    atomic_write_json(out_dir / "result.json", result)
    atomic_write_json(out_dir / "suite.json", suite(rules, config).to_json_dict())
    atomic_write_text(out_dir / "summary.md", report.markdown_summary(title, facts, items))
    atomic_write_text(out_dir / "summary.html", report.html_summary(title, facts, items))
    return result, items


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--data", type=Path, help="validate this file instead of data.path")
    parser.add_argument("--no-docs", action="store_true", help="skip the GX Data Docs")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    out_dir = get_settings().reports_dir / "validation"
    path: Path = args.data or config.data_path
    fmt: Literal["csv", "parquet"] = (
        ("parquet" if path.suffix == ".parquet" else "csv") if args.data else config.data.format
    )
    with step(f"read {path}"):
        frame = load_table(path, fmt, config.contract)
    with step("load Great Expectations"):
        gx()
    with step(f"validate {len(frame):,} rows against the contract", str(out_dir / "summary.html")):
        result, items = validate(frame, config, out_dir, str(path), docs=not args.no_docs)
    print(report.terminal_table(items))
    if not result["success"]:
        breach = first_breach(frame, config, str(path), 1 if fmt == "csv" else 0)
        raise ContractError(
            report.failure_message(str(path), items) + (f"; first: {breach}" if breach else "")
        )
    print(
        f"data {path}: all {len(items)} checks passed; "
        f"summary {out_dir / 'summary.html'}, Data Docs {out_dir / 'data_docs' / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
