"""Read a data table as the config describes it, turning every kind of unreadable file into a DataError.

The one reader of tables: validate, train, score and drift read files through it, so each gets the
same checks and the same messages. A UTF-8 byte-order mark is dropped; a file that is not
comma-separated is refused with the delimiter found; duplicated column names are named (pandas
would rename them `x.1` silently); a header with no rows is refused; a number written with a
thousands separator is named with its column and file row; a byte that is not UTF-8 is reported
at its offset in the file. Rows are counted as the file does: the header is row 1.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import Literal

import pandas as pd

from core.config import Contract
from core.errors import DataError

DELIMITERS = ",;\t|"
HEAD_BYTES = 64 * 1024
BLOCK_BYTES = 1 << 20
# "5,731.40" or "1,234": digits grouped by three with commas (an optional sign and decimals).
THOUSANDS = re.compile(r"^\s*[-+]?\d{1,3}(,\d{3})+(\.\d*)?\s*$")


def read_table(
    path: str | Path,
    fmt: Literal["csv", "parquet"] = "csv",
    contract: Contract | None = None,
    *,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read a CSV or Parquet file; raise DataError naming the file and what is wrong with it.

    With `contract`, numeric features written with thousands separators are refused too. A file
    with a header and no rows is refused unless `allow_empty` (a feedback table not filled yet).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} not found")
    if path.is_dir():
        raise DataError(f"data file {path} is a directory, expected a {fmt} file")
    frame, header_rows = (_read_parquet(path), 0) if fmt == "parquet" else (_read_csv(path), 1)
    duplicated_columns(path, list(map(str, frame.columns)))
    if frame.empty and not allow_empty:
        raise DataError(f"{path}: only a header, no data rows")
    if contract is not None:
        check_number_format(frame, contract, path, header_rows)
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


def _read_csv(path: Path) -> pd.DataFrame:
    read_header(path)
    try:
        return pd.read_csv(path, encoding="utf-8-sig", keep_default_na=True, na_values=[""])
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV ({str(exc).strip()})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None


def read_header(path: str | Path) -> list[str]:
    """Return a CSV file's column names: BOM dropped, delimiter checked, duplicates refused."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head.strip():
        raise DataError(f"{path}: the file is empty (no header, no rows)")
    # A multi-byte character may be cut at the end of the head: decode what is whole.
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    try:
        names = next(csv.reader(io.StringIO(text)))
    except (csv.Error, StopIteration) as exc:
        raise DataError(f"{path}: malformed CSV header ({exc})") from None
    if len(names) == 1:
        delimiter = _sniff(text)
        if delimiter is not None:
            raise DataError(
                f"{path}: only one column was found ({names[0][:60]!r}); the file looks "
                f"{_NAMES.get(delimiter, repr(delimiter))}-separated, not comma-separated: "
                "save it with commas"
            )
    duplicated_columns(path, names)
    return names


_NAMES = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _sniff(text: str) -> str | None:
    """The delimiter of `text` when it is not a comma; None when it is or none is clear."""
    try:
        found = csv.Sniffer().sniff(text[:4096], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return None
    return None if found == "," else found


def duplicated_columns(path: Path, names: list[str]) -> None:
    """Raise DataError naming the column names that appear more than once."""
    seen: set[str] = set()
    twice = [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    if twice:
        raise DataError(
            f"{path}: duplicated column name(s) {', '.join(map(repr, dict.fromkeys(twice)))}; "
            "each column must appear once"
        )


def not_utf8(path: str | Path) -> DataError:
    """The error for a file that is not UTF-8: the first bad byte, its offset in the file, its line."""
    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(BLOCK_BYTES), b""):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                line = lines + block[: max(exc.start - pending, 0)].count(b"\n") + 1
                bad = exc.object[exc.start]
                return DataError(
                    f"{path}: not UTF-8 text (byte 0x{bad:02x} at offset {at:,} of the file, "
                    f"line {line:,}); re-save the file as UTF-8"
                )
            offset += len(block)
            lines += block.count(b"\n")
    return DataError(f"{path}: not UTF-8 text (it ends inside a character); re-save it as UTF-8")


def check_number_format(
    frame: pd.DataFrame, contract: Contract, path: Path, header_rows: int = 1
) -> None:
    """Refuse numeric features written with thousands separators, naming column and file row."""
    for feature in contract.features:
        if feature.is_string or feature.name not in frame.columns:
            continue
        column = frame[feature.name]
        if pd.api.types.is_numeric_dtype(column):
            continue
        text = column.astype(str)
        grouped = text.str.match(THOUSANDS) & column.notna()
        if grouped.any():
            position = int(grouped.to_numpy().argmax())
            raise thousands_error(
                path, feature.name, text.iloc[position], position + 1 + header_rows
            )


def thousands_error(path: Path, column: str, value: str, row: int | None) -> DataError:
    """The error for a number with a thousands separator: its column, value and file row."""
    where = f", file row {row:,}" if row is not None else ""
    return DataError(
        f"{path}: column {column!r}{where}: {value!r} has a thousands separator; "
        "write numbers without one (5731.40, not 5,731.40)"
    )


def file_row_of(path: Path, column: int, value: str) -> int | None:
    """The file row (header = 1) where CSV column number `column` first holds `value`."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for row in reader:
            if column < len(row) and row[column] == value:
                return reader.line_num
    return None
