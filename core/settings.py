"""Deploy-time settings: the only place that reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

# Addresses only this machine reaches: serving there without a key is the local default.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    # "off" turns authentication off on purpose; anything else with no usable key refuses to serve.
    auth: str | None = Field(None, validation_alias="AUTH")
    # The bundle digest recorded outside the bundle (core.bundle.check_anchor).
    model_digest: str | None = Field(None, validation_alias="MODEL_DIGEST")
    # A missing MODEL_DIGEST refuses instead of warning: in CI (set by GitHub Actions and most CI
    # systems) and where REQUIRE_MODEL_DIGEST is set (the image sets it).
    ci: bool = Field(False, validation_alias="CI")
    require_model_digest: bool = Field(False, validation_alias="REQUIRE_MODEL_DIGEST")
    reports_dir: Path = Field(Path("reports"), validation_alias="REPORTS_DIR")
    # Set by GitHub Actions: steps append `key=value` lines there to pass outputs to later steps.
    github_output: Path | None = Field(None, validation_alias="GITHUB_OUTPUT")
    # Also GitHub Actions': `key=value` lines there are environment variables of later steps.
    github_env: Path | None = Field(None, validation_alias="GITHUB_ENV")

    @property
    def anchor_required(self) -> bool:
        """A bundle must be checked against MODEL_DIGEST: in CI and in the image."""
        return self.ci or self.require_model_digest

    def auth_key(self) -> str | None:
        """Return the API key the service requires; None only when AUTH=off says so.

        An empty or blank API_KEY (an empty Kubernetes Secret) is a ConfigError, never "no auth";
        without a key, serving on anything but a loopback address needs AUTH=off.
        """
        auth = (self.auth or "").strip().lower()
        if auth not in ("", "on", "off"):
            raise ConfigError(f"AUTH={self.auth!r}: expected on or off")
        key = None if self.api_key is None else self.api_key.get_secret_value()
        if key is not None and key.strip():
            if auth == "off":
                raise ConfigError("AUTH=off and API_KEY are both set; unset one of them")
            return key
        if auth == "off":
            return None
        if key is not None:
            raise ConfigError(
                "API_KEY is set but empty; set a key, or AUTH=off to serve without authentication"
            )
        if auth == "on" or self.host not in LOOPBACK:
            raise ConfigError(
                f"no API_KEY to serve on {self.host} with; set API_KEY, or AUTH=off to serve "
                "without authentication"
            )
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment once."""
    return Settings()
