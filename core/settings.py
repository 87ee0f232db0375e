"""Deploy-time settings: the only place that reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where things run; what the data looks like lives in the config file instead."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    config_path: Path = Field(Path("config.yaml"), validation_alias="CONFIG_PATH")
    mlflow_tracking_uri: str = Field(
        "sqlite:///mlruns/mlflow.db", validation_alias="MLFLOW_TRACKING_URI"
    )
    mlflow_artifact_root: Path = Field(
        Path("mlruns/artifacts"), validation_alias="MLFLOW_ARTIFACT_ROOT"
    )
    model_bundle: Path = Field(Path("build/bundle"), validation_alias="MODEL_BUNDLE")
    model_uri: str | None = Field(None, validation_alias="MODEL_URI")
    prediction_log_url: str = Field(
        "sqlite:///reports/predictions.db", validation_alias="PREDICTION_LOG_URL"
    )
    # The image sets uvicorn's own variables (UVICORN_HOST/PORT); read them first so the settings
    # always name the address uvicorn actually listens on.
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("UVICORN_HOST", "HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=AliasChoices("UVICORN_PORT", "PORT"))
    workers: int = Field(1, ge=1, validation_alias=AliasChoices("WEB_CONCURRENCY", "WORKERS"))
    api_key: SecretStr | None = Field(None, validation_alias="API_KEY")
    reports_dir: Path = Field(Path("reports"), validation_alias="REPORTS_DIR")
    # Set by GitHub Actions: steps append `key=value` lines there to pass outputs to later steps.
    github_output: Path | None = Field(None, validation_alias="GITHUB_OUTPUT")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment once."""
    return Settings()
