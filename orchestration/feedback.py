"""Labelled production rows for `make retrain`: read from the drift window, merged into the feedback file.

The drift window is the one `make drift` compared (its report's context says which): the
prediction log since the window's start, read through core/prediction_log.py, or the file passed as
CURRENT. Rows with a true class (the log's `feedback`; in a file also a `feedback_label` or
target column) become rows of the feedback table: request_id, the contract's features, the target.
Merged with the table already in the repository, one row per request id, the latest label wins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from core.columns import FEEDBACK, FEEDBACK_LABEL, REQUEST_ID
from core.config import Config, Contract, FeatureType, TaskType
from core.data import read_table
from core.errors import ContractError, DataError
from core.prediction_log import read_predictions
from core.settings import Settings
from core.task import truth_values

# Where a window names its true class: the prediction log's column, else a file's.
LOG_LABELS = (FEEDBACK, FEEDBACK_LABEL)


@dataclass(frozen=True)
class FeedbackUpdate:
    """The merged feedback table, how many of its rows are new, and where the labels came from."""

    table: pd.DataFrame
    new: int
    source: str
    csv: bytes  # the table as the file holds it
    changed: bool  # False when `csv` is the file already there byte for byte (or there is none)

    @property
    def total(self) -> int:
        return len(self.table)


def window_start(context: dict[str, Any], config: Config, now: datetime | None = None) -> datetime:
    """Return where the drift window began: the report's `since`, else drift.window_hours ago."""
    since = context.get("since")
    if since:
        try:
            return datetime.fromisoformat(str(since))
        except ValueError:
            raise DataError(f"drift report: context.since {since!r} is not an ISO time") from None
    return (now or datetime.now(UTC)) - timedelta(hours=config.drift.window_hours)


def labelled_rows(raw: pd.DataFrame, contract: Contract, source: str) -> pd.DataFrame:
    """Keep the rows that carry a true class (or value); return request_id, the features, the target."""
    target = contract.target.name
    label = next((c for c in (*LOG_LABELS, target) if c in raw.columns), None)
    if label is None or len(raw) == 0:
        return pd.DataFrame(columns=[REQUEST_ID, *contract.feature_names, target])
    missing = [f for f in contract.feature_names if f not in raw.columns]
    if missing:
        raise DataError(f"{source}: feature column(s) missing: {', '.join(missing)}")
    rows = raw[raw[label].notna()]
    if contract.target.type is TaskType.regression:
        try:  # the log keeps a regression's true value as text
            values = truth_values(
                rows[label].tolist(), contract.target, f"{source}: column {label!r}"
            )
        except ContractError as exc:
            raise DataError(str(exc)) from None
        labels = pd.Series(values, index=rows.index, dtype="float64")
        unknown = []
    else:
        labels = rows[label].map(_class_name)
        unknown = sorted(set(labels) - set(contract.target.classes))
    if unknown:
        raise DataError(
            f"{source}: column {label!r} has label(s) {unknown} outside classes "
            f"{contract.target.classes}"
        )
    out = rows[contract.feature_names].copy()
    for feature in contract.of_type(FeatureType.boolean):
        # The API accepts true/false as well as 0/1; the training data holds 0/1.
        out[feature.name] = out[feature.name].map(lambda v: int(v) if isinstance(v, bool) else v)
    out.insert(0, REQUEST_ID, _request_ids(rows, contract))
    out[target] = labels
    return out.reset_index(drop=True)


def _class_name(value: Any) -> str:
    """A label as the class name: a partly empty column of 0/1 reads as floats (1.0 → "1")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _request_ids(rows: pd.DataFrame, contract: Contract) -> pd.Series:
    if REQUEST_ID in rows.columns:
        return rows[REQUEST_ID].astype(str)
    # A window file without ids: a row's position and content are its identity, so a second run
    # adds nothing, and two customers with the same features are still two rows.
    columns = [*contract.feature_names]
    return pd.Series(
        [
            "row-" + hashlib.sha256(repr((position, *values)).encode()).hexdigest()[:16]
            for position, *values in rows[columns].itertuples(index=True)
        ],
        index=rows.index,
        dtype=object,
    )


def merge(existing: pd.DataFrame | None, new: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Append `new` to `existing`, one row per request id (the latest label wins); count new ids."""
    if existing is None or len(existing) == 0:
        merged = new.drop_duplicates(REQUEST_ID, keep="last")
        return merged.reset_index(drop=True), len(merged)
    if REQUEST_ID not in existing.columns:
        raise DataError(
            f"the feedback file has no {REQUEST_ID!r} column, so new rows cannot be deduplicated"
        )
    known = set(existing[REQUEST_ID].astype(str))
    # Every column of both: a feature added to the contract since the file was written stays on
    # the new rows (training then names the old rows that lack it).
    merged = pd.concat([existing.astype({REQUEST_ID: str}), new], ignore_index=True)
    merged = merged[[*new.columns, *existing.columns.difference(new.columns, sort=False)]]
    merged = merged.drop_duplicates(REQUEST_ID, keep="last").reset_index(drop=True)
    return merged, len(set(new[REQUEST_ID]) - known)


def read_window(
    context: dict[str, Any], config: Config, settings: Settings
) -> tuple[pd.DataFrame, str]:
    """Read the drift window again: the CURRENT file it used, or the prediction log since its start."""
    current = context.get("current")
    if current:
        path = Path(str(current))
        return read_table(path, "parquet" if path.suffix == ".parquet" else "csv"), str(path)
    since = window_start(context, config)
    # The same rows `make drift` compared: up to its newest row and its row limit, so traffic
    # logged since then does not push the window's older (more likely labelled) rows out.
    until = datetime.fromisoformat(str(context["until"])) if context.get("until") else None
    limit = int(context.get("limit") or config.drift.max_rows)
    frame = read_predictions(settings.prediction_log_url, since=since, limit=limit, until=until)
    return frame, f"the prediction log since {since.isoformat(timespec='minutes')}"


def collect(config: Config, settings: Settings, context: dict[str, Any]) -> FeedbackUpdate | None:
    """Merge the window's labelled rows into data.feedback_path's table; None when it is unset.

    Reading the log can raise ServiceUnavailable: with feedback configured, retraining without it
    would silently train on less than the config says.
    """
    path = config.feedback_path
    if path is None:
        return None
    raw, source = read_window(context, config, settings)
    rows = labelled_rows(raw, config.contract, source)
    existing = read_table(path, "csv", allow_empty=True) if path.is_file() else None
    table, new = merge(existing, rows)
    print(
        f"feedback: {len(rows)} labelled row(s) in {source}, {new} new; "
        f"{len(table)} row(s) in {config.data.feedback_path}"
    )
    csv = table.to_csv(index=False).encode()
    # Corrected labels of known ids change the table without adding ids: it is shipped then too.
    # No file yet and no labelled rows: nothing to ship (a header-only file trains nothing).
    changed = path.read_bytes() != csv if path.is_file() else len(table) > 0
    return FeedbackUpdate(table=table, new=new, source=source, csv=csv, changed=changed)
