"""Load the training table and split it into train, validation and test sets.

The split is stratified on the target with the configured seed, or time-based (oldest rows train,
newest rows test) when `model.split.time_column` is set. Every problem with the table is a
DataError naming the column or the count, raised before anything is fitted.

With `data.feedback_path` set, the labelled production rows in that file join the split: the
configured rows are split exactly as without them (so a champion trained without those rows is
never scored on a row it trained on), and each feedback row goes to train, validation or test by a
hash of its request id, in the configured shares (stable as the file grows). Champion and
challenger are compared on the same test rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from core.checks import first_breach
from core.columns import REQUEST_ID
from core.config import Config, TaskType
from core.data import read_table
from core.errors import DataError
from core.frames import feature_frame, target_vector
from core.io import sha256_file

# The feedback file keeps the prediction log's request id (REQUEST_ID) so `make retrain` can
# deduplicate; training ignores it.

# Below this many rows of each class in a split part, metrics and the threshold are noise.
MIN_PER_CLASS = 5


@dataclass(frozen=True)
class Part:
    """One part of the split: features in contract dtypes and the target (core.frames.target_vector)."""

    X: pd.DataFrame
    y: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    """The split table, with the files' sha256 so MLflow and the bundle can name the exact data.

    `n_rows` counts every row, feedback included; `feedback_rows` of them came from
    `feedback_path` (None, with no sha256, when no feedback file was read).
    """

    train: Part
    validation: Part
    test: Part
    path: Path
    sha256: str
    n_rows: int
    feedback_path: Path | None = None
    feedback_sha256: str | None = None
    feedback_rows: int = 0

    @property
    def parts(self) -> tuple[Part, Part, Part]:
        return (self.train, self.validation, self.test)

    @property
    def fingerprint(self) -> str:
        """The data file's sha256, or with a feedback file the sha256 of both files' hashes."""
        if self.feedback_sha256 is None:
            return self.sha256
        return hashlib.sha256(f"{self.sha256}\n{self.feedback_sha256}".encode()).hexdigest()

    def describe(self) -> str:
        """One markdown line naming the data trained on: files, hashes, row counts."""
        text = (
            f"Data: `{self.path.name}` (sha256 `{self.sha256[:12]}`, "
            f"{self.n_rows - self.feedback_rows} rows)"
        )
        if self.feedback_path is not None:
            text += (
                f" + {self.feedback_rows} feedback rows from `{self.feedback_path.name}` "
                f"(sha256 `{(self.feedback_sha256 or '')[:12]}`)"
            )
        return text + "."


def check_columns(frame: pd.DataFrame, config: Config, source: Path) -> None:
    """Raise DataError naming `source` when the target or a feature is missing or a label unknown."""
    contract = config.contract
    target = contract.target.name
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is missing from {source}")
    missing = [f for f in contract.feature_names if f not in frame.columns]
    if missing:
        raise DataError(f"feature column(s) missing from {source}: {', '.join(missing)}")
    labels = frame[target]
    if labels.isna().any():
        raise DataError(
            f"{source}: target column {target!r} has {int(labels.isna().sum())} empty value(s)"
        )
    if contract.target.type is TaskType.regression:
        check_numeric_target(labels, config, source)
        return
    unknown = sorted(set(labels.astype(str)) - set(contract.target.classes))
    if unknown:
        raise DataError(
            f"{source}: target column {target!r} has value(s) {unknown[:10]} outside classes "
            f"{contract.target.classes} (contract.target.classes)"
        )


def check_numeric_target(labels: pd.Series, config: Config, source: Path) -> None:
    """Raise DataError naming the column when a regression target is not a number or out of range."""
    target = config.contract.target
    values = pd.to_numeric(labels, errors="coerce")
    bad = labels[values.isna()]
    if len(bad):
        raise DataError(
            f"{source}: target column {target.name!r} is a regression target but has "
            f"{len(bad)} value(s) that are not numbers, e.g. {str(bad.iloc[0])!r}"
        )
    for bound, outside in (
        ("min", values < target.min if target.min is not None else None),
        ("max", values > target.max if target.max is not None else None),
    ):
        if outside is not None and outside.any():
            raise DataError(
                f"{source}: target column {target.name!r} has {int(outside.sum())} value(s) "
                f"beyond contract.target.{bound} ({getattr(target, bound)}), e.g. "
                f"{float(values[outside].iloc[0])}"
            )


# A class needs a row in each of train, validation and test to be stratified at all.
MIN_CLASS_ROWS = 3


def check_table(frame: pd.DataFrame, config: Config) -> None:
    """Raise DataError when the table cannot train a model of the contract's task."""
    check_columns(frame, config, config.data.path)
    target = config.contract.target
    if not target.is_classifier:
        return
    counts = frame[target.name].astype(str).value_counts()
    for cls in target.classes:
        if counts.get(cls, 0) == 0 and target.type is TaskType.binary:
            raise DataError(
                f"target column {target.name!r} has only one class ({counts.index[0]!r}); "
                f"no row has {cls!r}, so no classifier can be trained"
            )
        if counts.get(cls, 0) < MIN_CLASS_ROWS and target.type is TaskType.multiclass:
            raise DataError(
                f"target column {target.name!r}: class {cls!r} has {counts.get(cls, 0)} row(s); "
                f"a stratified split needs at least {MIN_CLASS_ROWS} (one per part): add rows of "
                "it, or merge it into another class in the data and contract.target.classes"
            )


def _minimum_rows(config: Config) -> int:
    split = config.model.split
    smallest = min(
        split.test_size, split.validation_size, 1 - split.test_size - split.validation_size
    )
    return int(np.ceil(2 * MIN_PER_CLASS / max(smallest, 1e-9)))


def split_table(
    frame: pd.DataFrame, config: Config
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split rows into train/validation/test (stratified with the seed, or by time)."""
    split = config.model.split
    if split.test_size + split.validation_size >= 0.9:
        raise DataError(
            "model.split: test_size + validation_size must leave at least 10 % of rows to train"
        )
    need = _minimum_rows(config)
    if len(frame) < need:
        raise DataError(
            f"too few rows for the split: {len(frame)} rows, need at least {need} "
            f"(test_size {split.test_size}, validation_size {split.validation_size})"
        )
    if split.time_column is not None:
        ordered = frame.sort_values(split.time_column, kind="stable")
        n_test = round(len(ordered) * split.test_size)
        n_val = round(len(ordered) * split.validation_size)
        n_train = len(ordered) - n_test - n_val
        return (
            ordered.iloc[:n_train],
            ordered.iloc[n_train : n_train + n_val],
            ordered.iloc[n_train + n_val :],
        )
    target = config.contract.target
    y = target_vector(frame, config.contract)
    if target.type is TaskType.binary:
        minority = int(min(y.sum(), len(y) - y.sum()))
        if minority * min(split.test_size, split.validation_size) < 1:
            raise DataError(
                f"too few rows of the rarer class for a stratified split: {minority} row(s)"
            )
    seed = config.model.seed
    stratify = target.is_classifier
    rest, test = train_test_split(
        frame, test_size=split.test_size, stratify=y if stratify else None, random_state=seed
    )
    val_share = split.validation_size / (1 - split.test_size)
    train, val = train_test_split(
        rest,
        test_size=val_share,
        stratify=target_vector(rest, config.contract) if stratify else None,
        random_state=seed,
    )
    return train, val, test


def split_feedback(
    feedback: pd.DataFrame, config: Config
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Put each feedback row into train, validation or test by a hash of its request id.

    Stable: a row stays in its part as the table grows, so a row the champion trained on never
    lands in a later challenger's test set. Rows without a request id are hashed by content.
    """
    if REQUEST_ID in feedback.columns:
        keys = feedback[REQUEST_ID].astype(str)
        hashes = [hashlib.sha256(k.encode()).digest()[:8] for k in keys]
        share = np.array([int.from_bytes(h, "big") for h in hashes], dtype=np.float64) / 2.0**64
    else:
        share = pd.util.hash_pandas_object(feedback, index=False).to_numpy() / 2.0**64
    split = config.model.split
    test = share < split.test_size
    val = ~test & (share < split.test_size + split.validation_size)
    rows = feedback.drop(columns=REQUEST_ID, errors="ignore")
    return rows[~test & ~val], rows[val], rows[test]


def _part(frame: pd.DataFrame, config: Config, name: str) -> Part:
    target = config.contract.target
    y = target_vector(frame, config.contract)
    if target.is_classifier and len(np.unique(y)) < 2:
        raise DataError(
            f"the {name} split has only one class ({len(y)} rows); use more data or a "
            "different model.split"
        )
    if target.type is TaskType.multiclass and name == "train":
        absent = [c for i, c in enumerate(target.classes) if not (y == i).any()]
        if absent:
            raise DataError(
                f"the train split has no row of class(es) {absent}; a classifier cannot learn "
                "them: use more data or a different model.split"
            )
    return Part(X=feature_frame(frame, config.contract), y=y)


def load_feedback(config: Config) -> pd.DataFrame | None:
    """Read the feedback table; None when none is configured or the file does not exist yet.

    Its rows must follow the contract as the service enforces it (the API refuses anything else),
    so a broken file is a DataError naming the file and the column.
    """
    path = config.feedback_path
    if path is None:
        return None
    if not path.is_file():
        print(f"no feedback file {path} yet: training on {config.data.path} alone")
        return None
    frame = read_table(path, "csv", config.contract, allow_empty=True)
    check_columns(frame, config, path)
    contract = config.contract
    known = {*contract.columns, REQUEST_ID}
    unknown = [c for c in frame.columns if c not in known]
    if unknown and contract.unknown_columns == "fail":
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, unknown))} are not in the contract "
            "(contract.unknown_columns: fail)"
        )
    check_values(frame, config, path)
    return frame


def check_values(frame: pd.DataFrame, config: Config, path: Path, header_rows: int = 1) -> None:
    """Refuse feature values the contract rejects, naming the file row (as `make validate` does)."""
    try:
        breach = first_breach(frame, config, str(path), header_rows)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: cannot check the feature values ({exc})") from None
    if breach is not None:
        raise DataError(f"{breach}; `make validate` reports every check")


def load_dataset(config: Config) -> Dataset:
    """Read the configured table (plus any feedback rows), check it trains the task's model, split it."""
    path = config.data_path
    frame = read_table(path, config.data.format, config.contract)
    check_table(frame, config)
    check_values(frame, config, path, 1 if config.data.format == "csv" else 0)
    feedback = load_feedback(config)
    try:
        train, val, test = split_table(frame, config)
        if feedback is not None and len(feedback):
            # The configured rows keep the parts they had without feedback (so the champion is
            # never scored on rows it trained on); feedback rows join a part by their id.
            feedback = feedback.set_axis(range(len(frame), len(frame) + len(feedback)))
            extra = split_feedback(feedback, config)
            train, val, test = (
                pd.concat([a, b]) for a, b in zip((train, val, test), extra, strict=True)
            )
        parts = {
            n: _part(f, config, n)
            for n, f in (("train", train), ("validation", val), ("test", test))
        }
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: cannot split or convert the table ({exc})") from None
    return Dataset(
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        path=path,
        sha256=sha256_file(path),
        n_rows=len(frame) + (0 if feedback is None else len(feedback)),
        feedback_path=config.feedback_path if feedback is not None else None,
        feedback_sha256=(
            sha256_file(config.feedback_path)
            if feedback is not None and config.feedback_path is not None
            else None
        ),
        feedback_rows=0 if feedback is None else len(feedback),
    )
