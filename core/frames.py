"""Put a table's feature columns into the dtypes the fitted pipeline expects, from the contract."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.config import Contract, FeatureType


def feature_frame(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Select the contract's features in contract order, numeric as float64, categorical as object.

    Training, serving and batch scoring all call this, so the pipeline always sees the same dtypes.
    Values are not checked here; validation does that before.
    """
    out = {}
    for f in contract.features:
        col = frame[f.name]
        if f.type is FeatureType.categorical:
            out[f.name] = col.astype(object).where(col.notna(), np.nan)
        else:
            out[f.name] = pd.to_numeric(col, errors="raise").astype("float64")
    return pd.DataFrame(out, index=frame.index)


def target_vector(frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    """Return the target as 0/1 (1 = the positive class)."""
    return (frame[contract.target.name].astype(str) == contract.target.positive).to_numpy(
        dtype=np.int8
    )
