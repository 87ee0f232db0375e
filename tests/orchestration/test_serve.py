"""`make serve` with MODEL_URI: the bundle is built from a registry alias, then verified and served."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.bundle import load_bundle
from core.config import Config
from core.errors import ConfigError
from core.settings import Settings
from orchestration.serve import bundle_from_registry
from orchestration.train import train_and_gate
from tests.training.conftest import settings_for


@pytest.mark.slow
def test_registry_uri_builds_the_bundle_of_that_alias(tmp_path: Path, config: Config) -> None:
    settings = settings_for(tmp_path)
    trained = train_and_gate(config, settings)
    uri = f"models:/{config.mlflow.registered_model}@candidate"
    bundle = load_bundle(bundle_from_registry(config, settings, uri))
    assert bundle.path == settings.model_bundle
    assert bundle.version == trained.version
    assert bundle.metadata["alias"] == "candidate"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("runs:/abc/model", "expected models:/<registered model>@<alias>"),
        ("models:/other-model@candidate", "registers 'telco-churn-classifier'"),
    ],
)
def test_bad_registry_uri_names_the_problem(config: Config, uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bundle_from_registry(config, Settings(), uri)
