"""Shared fixtures: real configs, real data and a real trained bundle, built once per session."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from core.bundle import write_bundle
from core.config import Config, load_config
from core.data import read_table
from core.frames import feature_frame, target_vector

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config.yaml"
CREDIT_CONFIG = ROOT / "examples" / "credit" / "config.yaml"
CONFIGS = {"telco": DEFAULT_CONFIG, "credit": CREDIT_CONFIG}


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def raw_config() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


@pytest.fixture(scope="session")
def default_frame(config: Config) -> pd.DataFrame:
    return read_table(config.data_path)


@pytest.fixture
def write_config(tmp_path: Path, raw_config: dict[str, Any]) -> Callable[..., Path]:
    """Write a copy of the default config, changed by `edit(raw)`, into tmp_path; data path absolute."""

    def make(
        edit: Callable[[dict[str, Any]], None] | None = None, name: str = "config.yaml"
    ) -> Path:
        raw = copy.deepcopy(raw_config)
        raw["data"]["path"] = str(ROOT / raw["data"]["path"])
        if edit is not None:
            edit(raw)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return make


@pytest.fixture(scope="session")
def trained_bundle(
    tmp_path_factory: pytest.TempPathFactory, config: Config, default_frame: pd.DataFrame
) -> Path:
    """A bundle with the default pipeline fitted on the default data (unregistered, threshold 0.5)."""
    from training.model import build_pipeline

    pipeline = build_pipeline(config)
    pipeline.fit(
        feature_frame(default_frame, config.contract), target_vector(default_frame, config.contract)
    )
    metadata = {
        "model_name": config.mlflow.registered_model,
        "model_version": "0",
        "run_id": None,
        "threshold": 0.5,
        "metrics": {},
        "contract": config.contract.model_dump(mode="json"),
        "config_sha256": config.sha256,
    }
    return write_bundle(tmp_path_factory.mktemp("bundle") / "bundle", pipeline, metadata)
