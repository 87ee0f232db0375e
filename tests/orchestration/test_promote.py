"""`make promote`: the production pin in the checkout, and a body with the registry's evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.bundle import MODEL_CARD_FILE
from core.config import Config
from core.settings import Settings, get_settings
from deploy.gitops import OVERLAYS_DIR, ImageRef, Pin, read_pin, set_image
from orchestration.promote import main
from tests.gitrepo import git, seeded_remote
from tests.training.conftest import env_for, settings_for
from training import registry
from training.report import GATE_TABLE

ROOT = Path(__file__).resolve().parents[2]
REPO = "ghcr.io/acme/churn-api"
DIGEST = "sha256:" + "c" * 64


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A checkout of a bare remote whose staging overlay runs version 1 of the model."""
    work = seeded_remote(tmp_path)[1]
    assert set_image(work, "staging", Pin(ImageRef(REPO, DIGEST), "1")) is not None
    git(work, "pull", "--quiet", "origin", "main")
    return work


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings: Settings = settings_for(tmp_path / "mlflow")
    for key, value in env_for(settings).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def register_version_one(settings: Settings, config: Config) -> None:
    """Version 1 as training and `make deploy-staging` leave it: its run's card and gate, tags."""
    client = registry.connect(settings)
    name = config.mlflow.registered_model
    experiment = registry.ensure_experiment(client, "promote-test", settings)
    run = client.create_run(experiment, tags={"champion_version": "none"})
    registry.log_text_to_run(client, run.info.run_id, MODEL_CARD_FILE, "# Model card: v1\n")
    registry.log_text_to_run(client, run.info.run_id, GATE_TABLE, "## Gate: ✅ passed\n")
    client.create_registered_model(name)
    client.create_model_version(
        name, source=str(settings.mlflow_artifact_root), run_id=run.info.run_id
    )
    tags = {"gate": "passed", "git_commit": "a" * 40, "staging_commit": "b" * 40}
    registry.point_alias(
        client, name, "staging", "1", {**tags, "staging_image": f"{REPO}@{DIGEST}"}
    )


def test_promote_pins_production_and_the_body_has_the_card_and_gate_history(
    work: Path, settings: Settings, config: Config
) -> None:
    register_version_one(settings, config)
    before = registry.connect(settings).get_model_version(config.mlflow.registered_model, "1")
    assert main(["--repo", str(work), "--config", str(config.source)]) == 0
    production = OVERLAYS_DIR / "production" / "kustomization.yaml"
    assert read_pin((work / production).read_text(), "production") == Pin(
        ImageRef(REPO, DIGEST), "1"
    )
    assert git(work, "status", "--porcelain") == f"M {production.as_posix()}"
    body = (settings.reports_dir / "promote" / "pr.md").read_text()
    assert body.startswith("# Promote model version 1 from staging to production")
    assert "## Gate history of version 1" in body
    assert "| gate (training run) | passed | against no champion" in body
    assert f"| staging | deployed | overlay commit `{'b' * 12}`" in body
    assert "## Gate: ✅ passed" in body and "# Model card: v1" in body
    # Read-only: the registry is as it was (no alias moved, no tag added).
    after = registry.connect(settings).get_model_version(config.mlflow.registered_model, "1")
    assert (after.aliases, after.tags) == (before.aliases, before.tags)


def test_promote_without_the_version_in_the_registry_says_so(
    work: Path, settings: Settings, config: Config
) -> None:
    assert main(["--repo", str(work), "--config", str(config.source)]) == 0
    body = (settings.reports_dir / "promote" / "pr.md").read_text()
    assert "does not hold" in body and "version 1" in body
