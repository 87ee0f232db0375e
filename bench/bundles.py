"""The bundle the benchmarks serve, written as `make package` writes it.

Beside the model: the compiled numpy form (when the pipeline compiles) and the probes, probed on
training rows too (`training.compile.model_files`). Without them the service falls back to the
sklearn model through skops and the image build picks the sklearn runtime: the bench would
measure what nobody ships.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from core.bundle import write_bundle
from core.config import Config
from core.frames import feature_frame, target_vector
from training.compile import model_files
from training.model import build_pipeline


def fit_bundle(
    target: Path, config: Config, frame: pd.DataFrame, metadata: dict[str, Any]
) -> tuple[Path, Any]:
    """Fit the configured pipeline on `frame`, write its bundle to `target`; return both."""
    features = feature_frame(frame, config.contract)
    pipeline = build_pipeline(config).fit(features, target_vector(frame, config.contract))
    files: dict[str, str | bytes] = {**model_files(pipeline, config.contract, features)}
    return write_bundle(target, pipeline, metadata, files), pipeline


def bench_metadata(config: Config) -> dict[str, Any]:
    """The metadata of an unregistered bench bundle (version "bench", threshold 0.5)."""
    return {
        "model_name": config.mlflow.registered_model,
        "model_version": "bench",
        "run_id": None,
        "threshold": 0.5,
        "metrics": {},
        "contract": config.contract.model_dump(mode="json"),
        "config_sha256": config.sha256,
    }
