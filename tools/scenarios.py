"""Traffic scenarios for the simulator and the drift benchmark: pure functions of a table.

Every column they touch is chosen from the contract (by type, then by a seeded draw), never named.
- none: rows drawn from the data as they are;
- covariate: some numeric features shifted by `strength` standard deviations (kept inside the
  contract's range, rounded when integer), one text feature shortened (with probability
  `strength`, a document keeps its first third) and one categorical feature re-mixed (with
  probability `strength`, a value becomes the feature's rarest level);
- prior: rows resampled so the positive class has the share `strength` (default: one half, or the
  base share moved by 0.3 when it is already near one half);
- concept: features untouched; the labels sent as feedback are flipped with probability `strength`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from core.config import Contract, FeatureType
from core.errors import DataError

Scenario = Literal["none", "covariate", "prior", "concept"]
SCENARIOS: tuple[str, ...] = get_args(Scenario)
DEFAULT_STRENGTH: dict[str, float] = {"none": 0.0, "covariate": 0.5, "concept": 0.3}


@dataclass(frozen=True)
class Traffic:
    """Rows to send (original columns) and the 0/1 label to send back as feedback for each."""

    rows: pd.DataFrame
    labels: np.ndarray | None
    changed: list[str]


def _labels(frame: pd.DataFrame, contract: Contract) -> np.ndarray | None:
    target = contract.target.name
    if target not in frame.columns:
        return None
    return (frame[target].astype(str) == contract.target.positive).to_numpy(dtype="int64")


def shift_numeric(
    column: pd.Series, strength: float, lo: float | None, hi: float | None, integer: bool
) -> pd.Series:
    """Move a numeric column up by `strength` of its standard deviation, inside [lo, hi]."""
    values = pd.to_numeric(column, errors="coerce").astype("float64")
    spread = float(values.std())
    step = strength * (spread if spread > 0 else 1.0)
    if integer and 0 < step < 1:
        step = 1.0  # a count whose spread is below one (mostly zeros) moves by one, or not at all
    shifted = values + step
    shifted = shifted.clip(lower=lo, upper=hi)
    if integer:
        shifted = shifted.round()
    return shifted


def remix_categorical(column: pd.Series, strength: float, rng: np.random.Generator) -> pd.Series:
    """Replace each value by the column's rarest level with probability `strength`.

    The rarest level's share grows by strength * (1 - its share), a clear change even when the
    levels are about equally frequent.
    """
    counts = column.dropna().value_counts()
    if counts.empty:
        return column.copy()
    rarest = counts.index[-1]
    swap = (rng.random(len(column)) < strength) & column.notna().to_numpy()
    out = column.copy()
    out[swap] = rarest
    return out


def shorten_text(
    column: pd.Series, strength: float, rng: np.random.Generator, min_length: int | None
) -> pd.Series:
    """Cut each document to its first third with probability `strength` (not below min_length).

    Shorter texts move the length distribution and, less, the vocabulary: the words of a
    review's end (the verdict) go missing.
    """
    text = column.astype(str)
    keep = np.maximum((text.str.len() // 3).to_numpy(), min_length or 1)
    cut = pd.Series([t[:k] for t, k in zip(text, keep, strict=True)], index=column.index)
    swap = (rng.random(len(column)) < strength) & column.notna().to_numpy()
    return column.where(~swap, cut)


def covariate_shift(
    frame: pd.DataFrame, contract: Contract, rng: np.random.Generator, strength: float = 0.5
) -> tuple[pd.DataFrame, list[str]]:
    """Shift half the numeric features (at least one), shorten one text, re-mix one category."""
    out = frame.copy()
    changed: list[str] = []
    numeric = contract.of_type(FeatureType.numeric)
    if numeric:
        k = max(1, math.ceil(len(numeric) / 2))
        for i in sorted(rng.choice(len(numeric), size=k, replace=False)):
            f = numeric[int(i)]
            out[f.name] = shift_numeric(frame[f.name], strength, f.min, f.max, f.integer)
            changed.append(f.name)
    texts = contract.of_type(FeatureType.text)
    if texts:
        f = texts[int(rng.integers(len(texts)))]
        out[f.name] = shorten_text(frame[f.name], strength, rng, f.min_length)
        changed.append(f.name)
    levelled = contract.of_type(FeatureType.categorical) or contract.of_type(FeatureType.boolean)
    if levelled:
        f = levelled[int(rng.integers(len(levelled)))]
        out[f.name] = remix_categorical(frame[f.name], strength, rng)
        changed.append(f.name)
    return out, changed


def default_positive_share(base: float) -> float:
    """Pick a clearly different class balance: one half, or base +- 0.3 when base is near it."""
    if abs(base - 0.5) > 0.15:
        return 0.5
    return base + 0.3 if base < 0.5 else base - 0.3


def prior_shift(
    frame: pd.DataFrame,
    labels: np.ndarray,
    n: int,
    rng: np.random.Generator,
    positive_share: float | None = None,
) -> pd.DataFrame:
    """Resample `n` rows (with replacement) so that a share `positive_share` is positive."""
    share = (
        default_positive_share(float(labels.mean())) if positive_share is None else positive_share
    )
    if not 0 < share < 1:
        raise DataError(f"prior scenario: the positive share must be in (0, 1), got {share}")
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if positives.size == 0 or negatives.size == 0:
        raise DataError("prior scenario: the data needs rows of both classes")
    n_pos = int(rng.binomial(n, share))
    index = np.concatenate(
        [rng.choice(positives, size=n_pos), rng.choice(negatives, size=n - n_pos)]
    )
    rng.shuffle(index)
    return frame.iloc[index].reset_index(drop=True)


def generate(
    frame: pd.DataFrame,
    contract: Contract,
    scenario: str,
    n: int,
    seed: int = 0,
    strength: float | None = None,
) -> Traffic:
    """Draw `n` rows of traffic for a scenario from a table of held-out data."""
    if scenario not in SCENARIOS:
        raise DataError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if len(frame) == 0:
        raise DataError("the data to simulate traffic from has no rows")
    if n < 1:
        raise DataError(f"the number of requests must be positive, got {n}")
    missing = [c for c in contract.feature_names if c not in frame.columns]
    if missing:
        raise DataError(f"the data lacks contract column(s): {', '.join(missing)}")
    rng = np.random.default_rng(seed)
    labels = _labels(frame, contract)
    if scenario == "prior":
        if labels is None:
            raise DataError(f"prior scenario needs the target column {contract.target.name!r}")
        rows = prior_shift(frame, labels, n, rng, strength)
        return Traffic(rows, _labels(rows, contract), [contract.target.name])
    index = rng.choice(len(frame), size=n, replace=n > len(frame))
    rows = frame.iloc[index].reset_index(drop=True)
    labels = _labels(rows, contract)
    level = DEFAULT_STRENGTH[scenario] if strength is None else strength
    if scenario == "covariate":
        rows, changed = covariate_shift(rows, contract, rng, level)
        return Traffic(rows, labels, changed)
    if scenario == "concept":
        if labels is None:
            raise DataError(f"concept scenario needs the target column {contract.target.name!r}")
        flip = rng.random(len(labels)) < level
        return Traffic(rows, np.where(flip, 1 - labels, labels), ["feedback labels"])
    return Traffic(rows, labels, [])
