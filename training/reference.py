"""The training reference the drift check compares production traffic with.

`reference.parquet`: a sample (up to 20,000 rows) of the training features in contract columns and
dtypes, plus `__score__`, the fitted pipeline's positive-class probability for each row.
`reference_profile.json`: per numeric feature its quantiles and histogram (bin edges from the
reference's own deciles, so production values are binned the same way), per categorical or boolean
feature its category frequencies, the same for the score, the null share of each, and the size.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from core.config import Config, FeatureType

SCORE_COLUMN = "__score__"
MAX_ROWS = 20_000
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
PROFILE_VERSION = 1


def reference_sample(X: pd.DataFrame, scores: np.ndarray, seed: int) -> pd.DataFrame:
    """Return up to MAX_ROWS training rows (seeded sample) with their predicted score."""
    frame = X.copy()
    frame[SCORE_COLUMN] = np.asarray(scores, dtype="float64")
    if len(frame) > MAX_ROWS:
        frame = frame.sample(n=MAX_ROWS, random_state=seed)
    return frame.reset_index(drop=True)


def _numeric_profile(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().to_numpy(dtype="float64")
    out: dict[str, Any] = {"type": "numeric", "null_share": float(values.isna().mean())}
    if len(present) == 0:
        return {**out, "quantiles": {}, "bin_edges": [], "bin_counts": []}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, 11)))
    if len(edges) < 2:
        edges = np.array([edges[0], edges[0]])
    counts, _ = np.histogram(present, bins=edges)
    return {
        **out,
        "mean": float(present.mean()),
        "std": float(present.std()),
        "quantiles": {str(q): float(np.quantile(present, q)) for q in QUANTILES},
        "bin_edges": [float(e) for e in edges],
        "bin_counts": [int(c) for c in counts],
    }


def _categorical_profile(values: pd.Series, kind: str, known: list[str]) -> dict[str, Any]:
    as_text = values.dropna().map(lambda v: str(int(v)) if kind == "boolean" else str(v))
    counts = as_text.value_counts()
    total = max(int(counts.sum()), 1)
    keys = list(dict.fromkeys([*known, *sorted(counts.index)]))
    return {
        "type": kind,
        "null_share": float(values.isna().mean()),
        "frequencies": {k: float(counts.get(k, 0)) / total for k in keys},
    }


def build_profile(reference: pd.DataFrame, config: Config) -> dict[str, Any]:
    """Summarise a reference sample per feature (by contract type) and for the score."""
    features: dict[str, Any] = {}
    for f in config.contract.features:
        if f.type is FeatureType.numeric:
            features[f.name] = _numeric_profile(reference[f.name])
        elif f.type is FeatureType.boolean:
            features[f.name] = _categorical_profile(reference[f.name], "boolean", ["0", "1"])
        else:
            features[f.name] = _categorical_profile(
                reference[f.name], "categorical", list(f.categories or [])
            )
    score = _numeric_profile(reference[SCORE_COLUMN])
    score["bin_edges"] = [float(e) for e in np.linspace(0, 1, 11)]
    score["bin_counts"] = [
        int(c) for c in np.histogram(reference[SCORE_COLUMN], bins=np.linspace(0, 1, 11))[0]
    ]
    return {
        "version": PROFILE_VERSION,
        "size": len(reference),
        "features": features,
        "score": score,
    }


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise a frame to Parquet in memory (for the bundle and the MLflow run)."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
