"""Registry aliases follow the overlays in git: deploy, a second deploy, a revert, a placeholder."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.config import Config
from core.settings import Settings, get_settings
from deploy.gitops import ImageRef, Pin, set_image
from orchestration.aliases import main
from tests.gitrepo import git, seeded_remote
from tests.training.conftest import env_for, settings_for
from training import registry

ROOT = Path(__file__).resolve().parents[2]
REPO = "ghcr.io/acme/churn-api"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of a bare remote whose main holds the template's infra/ folder."""
    return seeded_remote(tmp_path)[1]


@pytest.fixture
def store(tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real SQLite MLflow store with versions 1 and 2 of the configured model."""
    settings: Settings = settings_for(tmp_path / "mlflow")
    for key, value in env_for(settings).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    client = registry.connect(settings)
    name = config.mlflow.registered_model
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source=str(tmp_path / "model"))
    yield client
    get_settings.cache_clear()


def deploy(clone: Path, overlay: str, digest: str, version: str) -> str:
    pushed = set_image(clone, overlay, Pin(ImageRef(REPO, digest), version))
    assert pushed is not None
    return pushed


def sync(clone: Path, env: str, config: Config) -> int:
    return main(["sync", env, "--repo", str(clone), "--config", str(config.source)])


@pytest.mark.slow  # a real MLflow store (its migrations take a few seconds)
def test_the_alias_follows_deploys_and_a_revert_with_digest_and_commit_tags(
    clone: Path, store: Any, config: Config
) -> None:
    name = config.mlflow.registered_model
    first = deploy(clone, "staging", DIGEST_A, "1")
    assert sync(clone, "staging", config) == 0
    mv = store.get_model_version_by_alias(name, "staging")
    assert str(mv.version) == "1"
    assert mv.tags["staging_image"] == f"{REPO}@{DIGEST_A}" and mv.tags["staging_commit"] == first
    deploy(clone, "staging", DIGEST_B, "2")
    assert sync(clone, "staging", config) == 0
    assert str(store.get_model_version_by_alias(name, "staging").version) == "2"
    # Rollback is a revert of the overlay commit; the alias follows it back.
    git(clone, "pull", "--quiet", "origin", "main")
    git(clone, "revert", "--no-edit", "HEAD")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    assert sync(clone, "staging", config) == 0
    mv = store.get_model_version_by_alias(name, "staging")
    assert str(mv.version) == "1" and mv.tags["staging_commit"] == git(clone, "rev-parse", "HEAD")
    # Production was never deployed: its overlay pins the placeholder, so no alias exists.
    assert sync(clone, "production", config) == 0
    assert "production" not in store.get_registered_model(name).aliases


@pytest.mark.slow
def test_an_overlay_naming_an_unregistered_version_moves_nothing(
    clone: Path, store: Any, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    name = config.mlflow.registered_model
    deploy(clone, "staging", DIGEST_A, "1")
    assert sync(clone, "staging", config) == 0
    deploy(clone, "staging", DIGEST_B, "9")
    assert sync(clone, "staging", config) == 8  # ModelNotFound, not "MLflow unreachable"
    assert str(store.get_model_version_by_alias(name, "staging").version) == "1"
    assert "version=9" in capsys.readouterr().err


def test_make_deploy_staging_moves_the_staging_alias_after_the_push() -> None:
    dry = subprocess.run(
        ["make", "-n", "deploy-staging", f"IMAGE={REPO}@{DIGEST_A}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    commands = [line for line in dry if "-m deploy.gitops" in line or "-m orchestration" in line]
    assert "set-image staging" in commands[0]
    assert "orchestration.aliases sync staging" in commands[1]


@pytest.mark.slow
def test_an_embedded_store_without_the_model_is_left_alone(
    clone: Path, tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pipeline's deploy job without a team registry: the train job's store is gone.
    for key, value in env_for(settings_for(tmp_path / "empty")).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        deploy(clone, "staging", DIGEST_A, "1")
        assert sync(clone, "staging", config) == 0
    finally:
        get_settings.cache_clear()
