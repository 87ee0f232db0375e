"""Fixtures for the MLflow-backed training tests: one real training run per store, shared."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.config import Config
from core.io import sha256_file
from core.settings import Settings
from orchestration.train import TrainResult, train_and_gate


@dataclass(frozen=True)
class Trained:
    settings: Settings
    result: TrainResult


def settings_for(folder: Path, tracking_uri: str | None = None) -> Settings:
    """Settings with every output under `folder` (and the given tracking URI, else SQLite there)."""
    return Settings(
        MLFLOW_TRACKING_URI=tracking_uri or f"sqlite:///{folder}/mlflow.db",
        MLFLOW_ARTIFACT_ROOT=folder / "artifacts",
        MODEL_BUNDLE=folder / "bundle",
        REPORTS_DIR=folder / "reports",
    )


def env_for(settings: Settings) -> dict[str, str]:
    """The environment a `python -m training.…` subprocess needs to use the same settings."""
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
        "MODEL_BUNDLE": str(settings.model_bundle),
        "REPORTS_DIR": str(settings.reports_dir),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


@pytest.fixture(scope="session")
def embedded_run(tmp_path_factory: pytest.TempPathFactory, config: Config) -> Trained:
    """Train once on the default data against an embedded SQLite store (passes the gate).

    A validation result sits where `make validate` writes it, so the run must log it.
    """
    settings = settings_for(tmp_path_factory.mktemp("embedded"))
    result_file = settings.reports_dir / "validation" / "result.json"
    result_file.parent.mkdir(parents=True)
    # Made for the very file trained on (meta.data_sha256), as `make validate` writes it.
    meta = {"data_sha256": sha256_file(config.data_path)}
    result_file.write_text(
        json.dumps({"success": True, "source": "tests/training/conftest.py", "meta": meta}) + "\n"
    )
    return Trained(settings, train_and_gate(config, settings))
