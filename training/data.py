"""Load the training table and split it into train, validation and test sets.

The split is stratified on the target with the configured seed, or time-based (oldest rows train,
newest rows test) when `model.split.time_column` is set. Every problem with the table is a
DataError naming the column or the count, raised before anything is fitted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from core.config import Config
from core.data import read_table
from core.errors import DataError
from core.frames import feature_frame, target_vector

# Below this many rows of each class in a split part, metrics and the threshold are noise.
MIN_PER_CLASS = 5


@dataclass(frozen=True)
class Part:
    """One part of the split: features in contract dtypes, 0/1 target, and the source row index."""

    X: pd.DataFrame
    y: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    """The split table, with the file's sha256 so MLflow and the bundle can name the exact data."""

    train: Part
    validation: Part
    test: Part
    path: Path
    sha256: str
    n_rows: int

    @property
    def parts(self) -> tuple[Part, Part, Part]:
        return (self.train, self.validation, self.test)


def file_sha256(path: Path) -> str:
    """Hash the data file as stored, so the fingerprint matches what `make data-check` checks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_table(frame: pd.DataFrame, config: Config) -> None:
    """Raise DataError when the table cannot train a binary classifier of the contract."""
    contract = config.contract
    target = contract.target.name
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is missing from {config.data.path}")
    missing = [f for f in contract.feature_names if f not in frame.columns]
    if missing:
        raise DataError(f"feature column(s) missing from {config.data.path}: {', '.join(missing)}")
    labels = frame[target]
    if labels.isna().any():
        raise DataError(f"target column {target!r} has {int(labels.isna().sum())} empty value(s)")
    unknown = sorted(set(labels.astype(str)) - set(contract.target.classes))
    if unknown:
        raise DataError(
            f"target column {target!r} has value(s) {unknown} outside classes "
            f"{contract.target.classes}"
        )
    counts = labels.astype(str).value_counts()
    for cls in contract.target.classes:
        if counts.get(cls, 0) == 0:
            raise DataError(
                f"target column {target!r} has only one class ({counts.index[0]!r}); "
                f"no row has {cls!r}, so no classifier can be trained"
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
    y = target_vector(frame, config.contract)
    minority = int(min(y.sum(), len(y) - y.sum()))
    if minority * min(split.test_size, split.validation_size) < 1:
        raise DataError(
            f"too few rows of the rarer class for a stratified split: {minority} row(s)"
        )
    seed = config.model.seed
    rest, test = train_test_split(frame, test_size=split.test_size, stratify=y, random_state=seed)
    val_share = split.validation_size / (1 - split.test_size)
    train, val = train_test_split(
        rest,
        test_size=val_share,
        stratify=target_vector(rest, config.contract),
        random_state=seed,
    )
    return train, val, test


def _part(frame: pd.DataFrame, config: Config, name: str) -> Part:
    y = target_vector(frame, config.contract)
    if y.sum() == 0 or y.sum() == len(y):
        raise DataError(
            f"the {name} split has only one class ({len(y)} rows); use more data or a "
            "different model.split"
        )
    return Part(X=feature_frame(frame, config.contract), y=y)


def load_dataset(config: Config) -> Dataset:
    """Read the configured table, check it can train a classifier, and split it."""
    path = config.data_path
    frame = read_table(path, config.data.format)
    check_table(frame, config)
    try:
        train, val, test = split_table(frame, config)
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
        sha256=file_sha256(path),
        n_rows=len(frame),
    )
