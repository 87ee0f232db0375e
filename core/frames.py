"""Frames and the contract: feature columns in the pipeline's dtypes, rows as JSON request bodies."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from core.config import Contract, Feature, FeatureType, TaskType


def feature_frame(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Select the contract's features in contract order: numbers as float64, strings as object.

    Training, serving and batch scoring all call this, so the pipeline always sees the same dtypes.
    Values are not checked here; validation does that before.
    """
    out = {}
    for f in contract.features:
        col = frame[f.name]
        if f.type is FeatureType.categorical:
            out[f.name] = col.astype(object).where(col.notna(), np.nan)
        elif f.type is FeatureType.text:
            # TF-IDF takes no missing document: a missing text is the empty one.
            out[f.name] = col.astype(object).where(col.notna(), "")
        else:
            out[f.name] = pd.to_numeric(col, errors="raise").astype("float64")
    return pd.DataFrame(out, index=frame.index)


def target_vector(frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    """Return the target as the model learns it, per task.

    Binary: 0/1 (1 = the positive class); multiclass: the class's index in the contract's list
    (-1 for a value outside it, which the data checks refuse first); regression: float64.
    """
    target = contract.target
    column = frame[target.name]
    if target.type is TaskType.regression:
        return pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64)
    if target.type is TaskType.multiclass:
        index = {c: i for i, c in enumerate(target.classes)}
        return np.array([index.get(v, -1) for v in column.astype(str)], dtype=np.int64)
    return (column.astype(str) == target.positive).to_numpy(dtype=np.int8)


def json_value(value: Any, feature: Feature) -> Any:
    """Turn one cell into the JSON a client would send: null for missing, ints where exact."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if feature.is_string:
        return str(value)
    if feature.type is FeatureType.boolean or feature.integer:
        return int(value)
    return float(value)


def request_record(row: pd.Series, contract: Contract) -> dict[str, Any]:
    """Turn one row into a /predict body: the contract's features only, in JSON types."""
    return {f.name: json_value(row[f.name], f) for f in contract.features}


def request_records(rows: pd.DataFrame, contract: Contract) -> list[dict[str, Any]]:
    """Turn rows into /predict bodies, one per row (the smoke test, the simulator, the probes)."""
    return [request_record(row, contract) for _, row in rows.iterrows()]
