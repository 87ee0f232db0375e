"""Check a batch of request features against the contract, row by row, fast (no GX import).

Batch scoring calls this per chunk and the drift job on the prediction log. It applies the same
feature rules the GX suite is generated from (`core.rules.feature_rules`), reading the same
expectation arguments, with vectorised pandas: a test checks both agree on the bad cases.
Columns the contract does not list (request ids, scores, timestamps) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import Config
from core.rules import INTEGER_TYPES, Check, Rule, feature_rules

__all__ = ["FeatureValidation", "first_breach", "validate_features"]

# Reasons quote at most this many characters of the offending value.
MAX_VALUE_CHARS = 40


@dataclass(frozen=True)
class FeatureValidation:
    """Per column, the share of rows breaking a rule; per row, why (None when the row is fine)."""

    unexpected_share: dict[str, float]
    row_errors: pd.Series
    n_rows: int

    @property
    def ok_mask(self) -> pd.Series:
        """True for rows that follow every feature rule, index-aligned with the input."""
        return self.row_errors.isna()


def validate_features(frame: pd.DataFrame, config: Config) -> FeatureValidation:
    """Apply every feature rule of the contract to `frame` and say which rows break which."""
    n = len(frame)
    errors = np.full(n, "", dtype=object)
    shares: dict[str, float] = {}
    for feature in config.contract.features:
        name = feature.name
        if name not in frame.columns:
            errors += f"; {name}: missing column"
            shares[name] = 1.0 if n else 0.0
            continue
        bad_any = np.zeros(n, dtype=bool)
        for rule in feature_rules(feature):
            bad, reasons = _violations(frame[name], rule)
            if bad.any():
                errors[bad] = errors[bad] + reasons
                bad_any |= bad
        shares[name] = float(bad_any.mean()) if n else 0.0
    text = pd.Series(errors, index=frame.index, dtype=object).str.removeprefix("; ")
    row_errors = text.where(text != "", None)
    return FeatureValidation(unexpected_share=shares, row_errors=row_errors, n_rows=n)


def _violations(column: pd.Series, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
    """Return the mask of rows breaking `rule` and, for those rows, a reason naming the column."""
    name = rule.column
    present = column.notna().to_numpy()
    if rule.check is Check.not_null:
        bad = ~present
        return bad, np.full(int(bad.sum()), f"; {name}: null", dtype=object)
    if rule.check is Check.in_set:
        allowed = rule.kwargs["value_set"]
        if all(isinstance(v, str) for v in allowed):
            values = column if _is_text(column) else column.astype(str)
            inside = values.isin(allowed).to_numpy()
        else:
            numbers = pd.to_numeric(column, errors="coerce")
            inside = numbers.isin(allowed).to_numpy()
        bad = present & ~inside
        return bad, _quote(column[bad], f"; {name}: not allowed ")
    if rule.check in (Check.not_blank, Check.length):
        return _text_violations(column, present, rule)
    numbers = pd.to_numeric(column, errors="coerce")
    if rule.check is Check.numeric_type:
        as_float = numbers.to_numpy(dtype="float64", na_value=np.nan)
        bad = present & np.isnan(as_float)
        if rule.kwargs["type_list"] == INTEGER_TYPES:
            bad |= ~np.isnan(as_float) & (np.mod(as_float, 1) != 0)
        return bad, _quote(column[bad], f"; {name}: not a {_kind(rule)} ")
    if rule.check is Check.between:
        as_float = numbers.to_numpy(dtype="float64", na_value=np.nan)
        low, high = rule.kwargs.get("min_value"), rule.kwargs.get("max_value")
        with np.errstate(invalid="ignore"):
            bad = np.zeros(len(column), dtype=bool)
            if low is not None:
                bad |= as_float < low
            if high is not None:
                bad |= as_float > high
        return bad, _quote(column[bad], f"; {name}: outside {rule.label} ")
    raise ValueError(f"{rule.check} is not a feature rule")


def _text_violations(
    column: pd.Series, present: np.ndarray, rule: Rule
) -> tuple[np.ndarray, np.ndarray]:
    """Blank values (unless the rule bounds only their share) and values outside the length."""
    name = rule.column
    text = column.astype(str)
    if rule.check is Check.not_blank:
        if "mostly" in rule.kwargs:  # a bound on the table's share, not on any one row
            return np.zeros(len(column), dtype=bool), np.empty(0, dtype=object)
        bad = present & ~text.str.contains(rule.kwargs["regex"], regex=True).to_numpy()
        return bad, np.full(int(bad.sum()), f"; {name}: blank", dtype=object)
    lengths = text.str.len().to_numpy()
    low, high = rule.kwargs.get("min_value"), rule.kwargs.get("max_value")
    bad = np.zeros(len(column), dtype=bool)
    if low is not None:
        bad |= lengths < low
    if high is not None:
        bad |= lengths > high
    bad &= present
    reasons = [f"; {name}: {n:,} characters, outside {rule.label}" for n in lengths[bad]]
    return bad, np.array(reasons, dtype=object)


def _kind(rule: Rule) -> str:
    return "whole number" if rule.kwargs["type_list"] == INTEGER_TYPES else "number"


def _is_text(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(column)


def _quote(values: pd.Series, prefix: str) -> np.ndarray:
    """Build `prefix + repr(value)` for each offending value, vectorised over the bad rows."""
    if values.empty:
        return np.empty(0, dtype=object)
    text = values.astype(str).str.slice(0, MAX_VALUE_CHARS)
    return (prefix + "'" + text + "'").to_numpy(dtype=object)


def first_breach(
    frame: pd.DataFrame, config: Config, source: str, header_rows: int = 1
) -> str | None:
    """Say where `frame` first breaks a feature rule: file, file row, column and why; else None.

    `make validate` and `make train` both end their refusal with this line, so the two name the
    same row the same way. Rows count as the file does: with `header_rows` 1 (a CSV) the first
    data row is row 2.
    """
    checked = validate_features(frame, config)
    errors = checked.row_errors.to_numpy()
    bad = [i for i, e in enumerate(errors) if e is not None]
    if not bad:
        return None
    columns = ", ".join(
        f"{name!r} in {round(share * checked.n_rows):,} of {checked.n_rows:,} rows"
        for name, share in checked.unexpected_share.items()
        if share > 0
    )
    return (
        f"{source}, file row {bad[0] + 1 + header_rows:,}: {errors[bad[0]]} "
        f"(values outside the contract: {columns})"
    )
