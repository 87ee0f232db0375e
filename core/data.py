"""Read a data table as the config describes it, turning every kind of unreadable file into a DataError."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import pandas as pd

from core.errors import DataError


def read_table(path: str | Path, fmt: Literal["csv", "parquet"] = "csv") -> pd.DataFrame:
    """Read a CSV or Parquet file; raise DataError naming the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} not found")
    if path.is_dir() and fmt == "csv":
        raise DataError(f"data file {path} is a directory, expected a CSV file")
    if fmt == "parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (no header, no rows)")
    try:
        frame = pd.read_csv(path, encoding="utf-8", keep_default_na=True, na_values=[""])
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "re-save the file as UTF-8"
        ) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV ({str(exc).strip()})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    if len(frame.columns) == 1 and frame.columns[0] != "" and _looks_wrongly_delimited(path):
        raise DataError(
            f"{path}: only one column was found ({frame.columns[0][:60]!r}); "
            "the file does not look comma-separated"
        )
    return frame


def _looks_wrongly_delimited(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as fh:
        head = fh.read(4096)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter != ","
    except csv.Error:
        return False
