"""The training reference the drift check compares traffic with: a sample and a readable profile.

Training calls `build_reference` and writes both into the model bundle (`reference_files` gives the
bytes for `core.bundle.write_bundle(extra_files=...)`); `make drift` reads them back with
`read_reference`. Everything here is a pure function of in-memory data, except `read_reference`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.bundle import PROFILE_FILE, REFERENCE_FILE, verify_bundle
from core.columns import REFERENCE_PREDICTED, REFERENCE_SCORE, SCORE
from core.config import Contract, FeatureType
from core.errors import BundleIntegrityError, ContractError, DataError
from core.frames import feature_frame
from core.text import token_counts

PROFILE_VERSION = 1
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
HISTOGRAM_BINS = 20


def contract_features(frame: pd.DataFrame, contract: Contract, what: str) -> pd.DataFrame:
    """Return the contract's features in pipeline dtypes; name missing or non-numeric columns."""
    missing = [name for name in contract.feature_names if name not in frame.columns]
    if missing:
        raise ContractError(f"{what} lacks contract column(s): {', '.join(missing)}")
    for f in contract.features:
        if not f.is_string:
            column = frame[f.name]
            if column.dtype == object or pd.api.types.is_string_dtype(column):
                converted = pd.to_numeric(column, errors="coerce")
                bad = column.notna() & converted.isna()
                if bad.any():
                    example = column[bad].iloc[0]
                    raise ContractError(
                        f"{what}: column {f.name!r} ({f.type.value}) has non-numeric values, "
                        f"e.g. {example!r} in {int(bad.sum())} row(s)"
                    )
    return feature_frame(frame, contract)


def _numeric_profile(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().to_numpy(dtype="float64")
    out: dict[str, Any] = {
        "count": int(present.size),
        "null_share": float(values.isna().mean()) if len(values) else 0.0,
    }
    if present.size == 0:
        return out
    quantiles = np.quantile(present, QUANTILES)
    counts, edges = np.histogram(present, bins=HISTOGRAM_BINS)
    out |= {
        "mean": float(present.mean()),
        "std": float(present.std(ddof=1)) if present.size > 1 else 0.0,
        "quantiles": {f"{q:g}": float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }
    return out


def _frequency_profile(values: pd.Series) -> dict[str, Any]:
    counts = values.astype(object).where(values.notna(), None).value_counts(dropna=True)
    total = int(values.notna().sum())
    frequencies = {
        str(k if not isinstance(k, float) or not k.is_integer() else int(k)): int(v)
        for k, v in counts.items()
    }
    return {
        "count": total,
        "null_share": float(values.isna().mean()) if len(values) else 0.0,
        "frequencies": frequencies,
        "shares": {k: v / total for k, v in frequencies.items()} if total else {},
    }


def _text_profile(values: pd.Series, top: int = 50) -> dict[str, Any]:
    """A text column: its length in characters as a number, and its most frequent tokens."""
    counts = token_counts(values)
    total = int(counts.sum())
    lengths = values.astype(str).str.len().where(values.notna())
    return {
        "length": _numeric_profile(lengths),
        "tokens": total,
        "distinct_tokens": len(counts),
        "top_terms": {str(k): int(v) for k, v in counts.head(top).items()},
        "null_share": float(values.isna().mean()) if len(values) else 0.0,
    }


def build_profile(features: pd.DataFrame, scores: np.ndarray, contract: Contract) -> dict[str, Any]:
    """Describe each feature (quantiles and histogram, or category frequencies) and the scores."""
    described: dict[str, Any] = {}
    for f in contract.features:
        column = features[f.name]
        if f.type is FeatureType.numeric:
            body = _numeric_profile(column)
        elif f.type is FeatureType.text:
            body = _text_profile(column)
        else:
            body = _frequency_profile(column)
        described[f.name] = {"type": f.type.value, **body}
    return {
        "profile_version": PROFILE_VERSION,
        # Training does not know the registry version yet; packaging may fill it in. The bundle's
        # own metadata is the fallback the drift check uses.
        "model_version": None,
        "size": len(features),
        "features": described,
        SCORE: _numeric_profile(pd.Series(scores, dtype="float64")),
    }


def build_reference(
    frame: pd.DataFrame,
    scores: np.ndarray | pd.Series,
    contract: Contract,
    max_rows: int = 20_000,
    seed: int = 0,
    predicted: list[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Sample up to `max_rows` rows of features plus `__score__`, and profile all rows.

    `predicted`: a multiclass model's class for each row, kept as `__predicted__` (the drift
    check's class-share test).

    Pass the rows and the positive-class probabilities the model gives them. Prefer rows the model
    was not fitted on (validation or test split): in-sample scores of a flexible model are sharper
    than live ones, and the score-drift test would then fire on healthy traffic.
    """
    features = contract_features(frame, contract, "the reference data")
    score_values = np.asarray(scores, dtype="float64").reshape(-1)
    if score_values.size != len(features):
        raise DataError(
            f"build_reference: {score_values.size} scores for {len(features)} rows; they must match"
        )
    if len(features) == 0:
        raise DataError("build_reference: the reference data has no rows")
    if max_rows < 1:
        raise DataError(f"build_reference: max_rows must be positive, got {max_rows}")
    profile = build_profile(features, score_values, contract)
    reference = features.reset_index(drop=True)
    reference[REFERENCE_SCORE] = score_values
    if predicted is not None:
        if len(predicted) != len(reference):
            raise DataError(
                f"build_reference: {len(predicted)} predicted classes for {len(reference)} rows"
            )
        reference[REFERENCE_PREDICTED] = pd.Series(predicted, dtype=object)
    if len(reference) > max_rows:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(reference), size=max_rows, replace=False))
        reference = reference.iloc[keep].reset_index(drop=True)
    profile["sample_size"] = len(reference)
    profile["sample_seed"] = seed
    return reference, profile


def reference_files(reference: pd.DataFrame, profile: dict[str, Any]) -> dict[str, bytes]:
    """Serialise the reference for `write_bundle(extra_files=...)`."""
    buffer = io.BytesIO()
    reference.to_parquet(buffer, index=False)
    return {
        REFERENCE_FILE: buffer.getvalue(),
        PROFILE_FILE: (json.dumps(profile, indent=2) + "\n").encode(),
    }


def read_reference(bundle_dir: Path, contract: Contract) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the reference sample and profile from a bundle folder (verify the bundle first)."""
    missing = [n for n in (REFERENCE_FILE, PROFILE_FILE) if not (bundle_dir / n).is_file()]
    if missing:
        raise BundleIntegrityError(
            f"{bundle_dir} has no {' or '.join(missing)}; the model was packaged without a drift "
            "reference (re-run make train and make package)"
        )
    try:
        reference = pd.read_parquet(bundle_dir / REFERENCE_FILE)
        profile = json.loads((bundle_dir / PROFILE_FILE).read_text())
    except Exception as exc:  # pyarrow and json raise many types for a damaged file
        raise BundleIntegrityError(
            f"{bundle_dir}: the drift reference is unreadable ({exc})"
        ) from None
    if REFERENCE_SCORE not in reference.columns:
        raise BundleIntegrityError(f"{bundle_dir / REFERENCE_FILE} has no {REFERENCE_SCORE} column")
    features = contract_features(reference, contract, f"{bundle_dir / REFERENCE_FILE}")
    features[REFERENCE_SCORE] = reference[REFERENCE_SCORE].astype("float64")
    if REFERENCE_PREDICTED in reference.columns:
        features[REFERENCE_PREDICTED] = reference[REFERENCE_PREDICTED].astype(object)
    return features, profile


def load_reference(
    bundle_dir: str | Path, contract: Contract
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Verify the bundle's manifest, then return its reference sample and profile."""
    bundle_dir = Path(bundle_dir)
    verify_bundle(bundle_dir)
    return read_reference(bundle_dir, contract)
