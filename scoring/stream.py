"""Score a CSV or Parquet file (or a folder of them) in chunks, in bounded memory, atomically.

Each chunk is read with pyarrow, checked with `core.checks.validate_features` (rows that
break the contract go to the rejects file with their reason, never silently dropped), scored
with the bundle's pipeline, and appended as a row group to a temporary Parquet file beside the
output (`core.io.temp_path`). Only a finished run renames the output and the rejects file into
place, both or neither (`core.io.replace_files`), so an interrupted or failed run leaves nothing
new under either name; a killed run's temporary files are removed by the next run. Headers go
through the one table reader's checks (`core.data.read_header`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from core.bundle import Bundle
from core.checks import validate_features
from core.columns import MODEL_VERSION
from core.config import Config, FeatureType
from core.data import (
    THOUSANDS,
    duplicated_columns,
    file_row_of,
    not_utf8,
    read_header,
    thousands_error,
)
from core.errors import ContractError, DataError
from core.frames import feature_frame
from core.io import remove_stale_temps, replace_files, temp_path
from core.task import model_scores, output_columns, scored_columns

DEFAULT_CHUNK_ROWS = 100_000
READ_BLOCK_BYTES = 1 << 20
# Batch output: the id columns, then the task's columns (core.task.output_columns: the log's SCORE
# and LABEL, a multiclass model's class probabilities) and MODEL_VERSION (core/columns.py).
REASON, ROW = "reject_reason", "row"


@dataclass
class Summary:
    """What a run did: rows read, scored and rejected, and how long it took."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def input_files(path: Path) -> list[Path]:
    """The data files to score: the file itself, or every CSV/Parquet file in a folder."""
    if not path.exists():
        raise DataError(f"input {path} not found")
    if path.is_file():
        return [path]
    files = sorted(
        p for p in path.iterdir() if p.suffix in (".csv", ".parquet") and not p.name.startswith(".")
    )
    if not files:
        raise DataError(f"input folder {path} holds no .csv or .parquet file")
    return files


def file_columns(path: Path) -> list[str]:
    """Read only the column names of a CSV header or a Parquet schema."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (no header, no rows)")
    if path.suffix == ".parquet":
        try:
            names = list(pq.read_schema(path).names)
        except pa.ArrowException as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        duplicated_columns(path, names)
        return names
    return read_header(path)


def check_columns(files: list[Path], config: Config) -> list[str]:
    """Check every file has the same columns, all contract features, and no unknown ones."""
    contract = config.contract
    columns = file_columns(files[0])
    for other in files[1:]:
        cols = file_columns(other)
        if set(cols) != set(columns):
            diff = sorted(set(cols) ^ set(columns))
            raise DataError(
                f"{other} has other columns than {files[0]} (differ: {', '.join(diff)}); "
                "a folder must hold one schema"
            )
    missing = [f for f in contract.feature_names if f not in columns]
    if missing:
        raise ContractError(f"{files[0]}: missing feature column(s) {', '.join(missing)}")
    known = set(contract.columns)
    unknown = [c for c in columns if c not in known]
    if unknown and contract.unknown_columns == "fail":
        raise ContractError(
            f"{files[0]}: column(s) {', '.join(unknown)} are not in the contract "
            "(contract.unknown_columns is 'fail'; set it to 'ignore' to score anyway)"
        )
    return columns


def csv_types(config: Config) -> dict[str, pa.DataType]:
    """Fix feature types up front: numbers as float64, labels as text (even when they look numeric)."""
    # Labels dictionary-encoded: they arrive as pandas categoricals, which the set check and
    # the conversion to the object columns the pipeline was fitted on handle several times faster.
    # Free text repeats rarely, so it stays plain strings.
    kinds = {FeatureType.categorical: pa.dictionary(pa.int32(), pa.string())}
    kinds[FeatureType.text] = pa.string()
    return {f.name: kinds.get(f.type, pa.float64()) for f in config.contract.features}


def read_chunks(path: Path, config: Config, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield the file as DataFrames of about `chunk_rows` rows; a bad value names its column."""
    columns = file_columns(path)
    try:
        if path.suffix == ".parquet":
            labels = [f.name for f in config.contract.of_type(FeatureType.categorical)]
            parquet = pq.ParquetFile(path, read_dictionary=labels)
            _check_parquet_types(path, parquet.schema_arrow, config)
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
            return
        reader = pcsv.open_csv(
            path,
            # Small blocks: the reader reads ~30 blocks ahead, so the block size, not the chunk
            # size, sets its memory; blocks are then joined into chunks of `chunk_rows` rows.
            read_options=pcsv.ReadOptions(block_size=READ_BLOCK_BYTES),
            convert_options=pcsv.ConvertOptions(
                column_types=csv_types(config), strings_can_be_null=True
            ),
        )
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if rows < chunk_rows:
                continue
            table = pa.Table.from_batches(pending)
            start = 0
            while rows - start >= chunk_rows:
                yield table.slice(start, chunk_rows).to_pandas()
                start += chunk_rows
            pending = table.slice(start).to_batches()
            rows -= start
        if rows:
            yield pa.Table.from_batches(pending).to_pandas()
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, str(exc), columns) from None


def _csv_error(path: Path, message: str, columns: list[str]) -> DataError:
    """The DataError for pyarrow's complaint: the column by name, the bad value's file row."""
    if "invalid UTF8" in message:
        return not_utf8(path)
    index, value = _csv_column_value(message)
    if index is not None and value is not None and THOUSANDS.match(value) and index < len(columns):
        return thousands_error(path, columns[index], value, file_row_of(path, index, value))
    return DataError(f"{path}: {_name_csv_column(message, columns)}")


def _csv_column_value(message: str) -> tuple[int | None, str | None]:
    """The column number and the value of pyarrow's "In CSV column #i: ... invalid value 'v'"."""
    found = re.search(r"In CSV column #(\d+):.*invalid value '(.*)'", message)
    return (int(found[1]), found[2]) if found else (None, None)


def _check_parquet_types(path: Path, schema: pa.Schema, config: Config) -> None:
    for f in config.contract.features:
        kind = schema.field(f.name).type
        numeric = (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        )
        if not f.is_string and not (numeric or pa.types.is_null(kind)):
            raise ContractError(
                f"{path}: column {f.name} is {kind}, the contract says {f.type.value}"
            )


def _name_csv_column(message: str, columns: list[str]) -> str:
    """Replace pyarrow's 'CSV column #i' with the column's name."""
    first = message.strip().splitlines()[0]
    marker = "In CSV column #"
    if marker in first:
        index = int(first.split(marker, 1)[1].split(":", 1)[0])
        if index < len(columns):
            return f"column {columns[index]}: {first.split(':', 1)[1].strip()}"
    return first


def score_chunk(
    frame: pd.DataFrame, bundle: Bundle, config: Config, offset: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate and score one chunk; return (scored rows, rejected rows with their reason)."""
    contract = config.contract
    check = validate_features(frame, config)
    ok = check.ok_mask.to_numpy()
    good = frame[ok]
    target = contract.target
    scored = pd.DataFrame({c: good[c].to_numpy() for c in contract.id_columns if c in frame})
    if len(good):
        scores = model_scores(bundle.pipeline, feature_frame(good, contract), target)
        # The threshold the model carries, by sklearn's own rule (FixedThresholdClassifier.predict
        # is `score >= threshold`): the labels of `predict`, without scoring twice.
        for name, values in scored_columns(scores, target, bundle.threshold).items():
            scored[name] = values
    else:
        for name, kind in output_columns(target):
            scored[name] = pd.Series(dtype="float64" if kind is float else "object")
    scored[MODEL_VERSION] = bundle.version
    rejected = frame[~ok].astype(str).where(frame[~ok].notna(), None)
    rejected.insert(0, ROW, np.flatnonzero(~ok) + offset)
    rejected[REASON] = check.row_errors[~ok].to_numpy()
    return scored, rejected


class AtomicParquet:
    """A Parquet file written row group by row group under a temporary name (`core.io.temp_path`).

    `finish` closes it; `score_file` then renames every finished file into place at once.
    """

    def __init__(self, target: Path, schema: pa.Schema | None = None) -> None:
        self.target = target
        self.tmp = temp_path(target)
        self.writer: pq.ParquetWriter | None = None
        self.schema = schema

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        if self.writer is None:
            self.schema = table.schema
            try:
                self.writer = pq.ParquetWriter(self.tmp, table.schema)
            except OSError as exc:
                raise _unwritable(self.target, exc) from None
        self.writer.write_table(table)

    def finish(self, empty: pd.DataFrame) -> tuple[Path, Path]:
        """Close the file (with no rows of its own: `empty`'s columns); return (temporary, target)."""
        if self.writer is None:
            self.write(empty)
        assert self.writer is not None
        self.writer.close()
        return self.tmp, self.target

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)


def check_outputs(targets: tuple[Path, ...], overwrite: bool) -> None:
    """Refuse outputs that exist (without overwrite), are folders, or cannot be written; clean up
    the temporary files a killed run left beside them."""
    for target in targets:
        if target.is_dir():
            raise DataError(
                f"output {target} is a folder; give a file name such as {target}/scores.parquet"
            )
        if target.exists() and not overwrite:
            raise DataError(f"output {target} exists; pass OVERWRITE=1 (--overwrite) to replace it")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(target, exc) from None
        if not os.access(target.parent, os.W_OK):
            raise DataError(f"cannot write {target}: its folder {target.parent} is not writable")
        for leftover in remove_stale_temps(target):
            print(f"removed {leftover}, left by a run that did not finish")


def _unwritable(target: Path, exc: OSError) -> DataError:
    return DataError(f"cannot write {target}: {exc.strerror or exc} ({target.parent})")


def rejects_path(output: Path) -> Path:
    """Where the rejected rows of `output` go: beside it, `<stem>.rejects.parquet`."""
    return output.with_name(f"{output.stem}.rejects.parquet")


def score_file(
    source: Path,
    output: Path,
    bundle: Bundle,
    config: Config,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    overwrite: bool = False,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Score `source` into `output` (Parquet) and the rejects beside it; return the counts."""
    rejects = rejects_path(output)
    check_outputs((output, rejects), overwrite)
    files = input_files(source)
    columns = check_columns(files, config)
    summary = Summary(files=[str(f) for f in files])
    started = time.perf_counter()
    # Rejected rows keep every input value as text: a bad value may not fit the column's type.
    reject_schema = pa.schema(
        [(ROW, pa.int64()), *((c, pa.string()) for c in columns), (REASON, pa.string())]
    )
    out, bad = AtomicParquet(output), AtomicParquet(rejects, reject_schema)
    try:
        for path in files:
            for chunk in read_chunks(path, config, chunk_rows):
                scored, rejected = score_chunk(chunk, bundle, config, summary.rows)
                out.write(scored)
                if len(rejected):
                    bad.write(rejected)
                summary.rows += len(chunk)
                summary.scored += len(scored)
                summary.rejected += len(rejected)
                summary.seconds = time.perf_counter() - started
                if progress is not None:
                    progress(summary)
        if summary.rows == 0:
            raise DataError(f"{source}: only a header, no data rows")
        empty_scored, empty_rejected = _empty(columns, bundle, config)
        try:
            replace_files([out.finish(empty_scored), bad.finish(empty_rejected)])
        except OSError as exc:
            raise _unwritable(output, exc) from None
    except BaseException:
        out.abort()
        bad.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def _empty(columns: list[str], bundle: Bundle, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Zero-row frames with the output columns, for a file that ends up with no rows of a kind."""
    ids = {c: pd.Series(dtype="object") for c in config.contract.id_columns if c in columns}
    outputs = {
        name: pd.Series(dtype="float64" if kind is float else "object")
        for name, kind in output_columns(config.contract.target)
    }
    scored = pd.DataFrame({**ids, **outputs, MODEL_VERSION: pd.Series(dtype="object")})
    rejected: dict[str, Any] = {ROW: pd.Series(dtype="int64")}
    rejected.update({c: pd.Series(dtype="object") for c in columns})
    rejected[REASON] = pd.Series(dtype="object")
    return scored, pd.DataFrame(rejected)
