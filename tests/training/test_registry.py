"""MLflow tracking and registry, against the embedded SQLite store and a real `mlflow server`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.bundle import load_bundle
from core.config import Config, load_config
from core.errors import GateRejected
from core.net import free_port
from orchestration.train import train_and_gate
from tests.conftest import ROOT
from tests.training.conftest import Trained, env_for, settings_for
from training import registry
from training.package import package_candidate

pytestmark = pytest.mark.slow


def _client(trained: Trained) -> Any:
    from mlflow import MlflowClient  # imported here: collecting the fast tests must not pay for it

    uri = trained.settings.mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _versions(client: Any, name: str) -> list[str]:
    return sorted(str(mv.version) for mv in client.search_model_versions(f"name = '{name}'"))


def test_a_passing_run_is_logged_registered_and_aliased_candidate(
    embedded_run: Trained, config: Config
) -> None:
    client = _client(embedded_run)
    result = embedded_run.result
    assert result.decision.passed and result.version is not None
    mv = client.get_model_version_by_alias(config.mlflow.registered_model, "candidate")
    assert str(mv.version) == result.version and mv.run_id == result.run_id
    assert float(mv.tags["threshold"]) == pytest.approx(result.threshold)
    assert mv.tags["config_sha256"] == config.sha256 and len(mv.tags["data_sha256"]) == 64
    assert mv.tags["gate"] == "passed"

    run = client.get_run(result.run_id)
    assert run.data.params["estimator"] == config.model.estimator
    assert run.data.metrics["test_roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    assert run.data.tags["gate.passed"] == "true" and run.data.tags["git_commit"]
    (dataset_input,) = run.inputs.dataset_inputs
    assert {t.key: t.value for t in dataset_input.tags}["sha256"] == mv.tags["data_sha256"]
    files = {f.path for f in client.list_artifacts(result.run_id, "plots")}
    assert "plots/roc.png" in files and "plots/permutation_importance.png" in files
    assert {f.path for f in client.list_artifacts(result.run_id, "gate")} >= {"gate/decision.json"}
    logged_validation = Path(client.download_artifacts(result.run_id, "validation/result.json"))
    assert "tests/training/conftest.py" in logged_validation.read_text()
    # Artifacts land under the configured root, not ./mlruns of whatever the working folder is.
    experiment = client.get_experiment(run.info.experiment_id)
    assert (
        experiment.artifact_location
        == embedded_run.settings.mlflow_artifact_root.resolve().as_uri()
    )
    model = client.get_logged_model(run.outputs.model_outputs[0].model_id)
    assert model.model_id


def test_impossible_threshold_exits_4_names_the_rule_and_registers_nothing(
    embedded_run: Trained, write_config: Callable[..., Path], config: Config
) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["gate"]["rules"] = [{"metric": "roc_auc", "min": 0.999}]

    client = _client(embedded_run)
    name = config.mlflow.registered_model
    before = _versions(client, name)
    candidate = client.get_model_version_by_alias(name, "candidate").version
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.train", "--config", str(write_config(edit))],
        cwd=ROOT,
        env=env_for(embedded_run.settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 4, proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "roc_auc ≥ 0.999" in error_lines[0]
    assert "Traceback" not in proc.stderr
    assert _versions(client, name) == before
    assert str(client.get_model_version_by_alias(name, "candidate").version) == str(candidate)
    # The rejected run is logged with its reason (and without a model).
    runs = client.search_runs(
        [client.get_experiment_by_name(config.mlflow.experiment).experiment_id],
        filter_string="tags.`gate.passed` = 'false'",
    )
    assert runs and "roc_auc ≥ 0.999" in runs[0].data.tags["gate.reason"]


def test_second_run_is_compared_with_the_first_once_it_holds_production(
    embedded_run: Trained, config: Config
) -> None:
    client = _client(embedded_run)
    name = config.mlflow.registered_model
    first = embedded_run.result.version
    assert first is not None
    client.set_registered_model_alias(name, "production", first)
    second = train_and_gate(config, embedded_run.settings)
    assert second.champion_version == first
    champion_rule = second.decision.rules[-1]
    assert champion_rule.metric == "roc_auc" and "vs champion" in champion_rule.rule
    # Same data, config and seed: the challenger equals the champion, so it passes the margin.
    assert champion_rule.passed and champion_rule.observed == pytest.approx(0.0, abs=1e-9)
    assert second.champion_metrics == pytest.approx(second.metrics)
    assert str(client.get_model_version_by_alias(name, "candidate").version) == second.version
    assert str(client.get_model_version_by_alias(name, "production").version) == first


def test_a_clearly_worse_challenger_is_rejected_against_the_champion(
    embedded_run: Trained, write_config: Callable[..., Path], config: Config
) -> None:
    client = _client(embedded_run)
    name = config.mlflow.registered_model
    if embedded_run.result.version is not None:
        client.set_registered_model_alias(name, "production", embedded_run.result.version)

    def edit(raw: dict[str, Any]) -> None:
        # A constant scorer (AUC 0.5): no threshold rule stops it, the champion check must.
        raw["model"]["estimator"] = "sklearn.dummy.DummyClassifier"
        raw["model"]["params"] = {"strategy": "prior"}
        raw["gate"]["rules"] = []

    before = _versions(client, name)
    with pytest.raises(GateRejected, match="vs champion"):
        train_and_gate(load_config(write_config(edit)), embedded_run.settings)
    assert _versions(client, name) == before


def test_dry_run_writes_reports_and_logs_nothing(embedded_run: Trained, config: Config) -> None:
    client = _client(embedded_run)
    experiment = client.get_experiment_by_name(config.mlflow.experiment).experiment_id
    runs_before = len(client.search_runs([experiment]))
    versions_before = _versions(client, config.mlflow.registered_model)
    result = train_and_gate(config, embedded_run.settings, log=False, register=False)
    assert result.run_id is None and result.version is None
    assert (embedded_run.settings.reports_dir / "training" / "pr_comment.md").is_file()
    assert len(client.search_runs([experiment])) == runs_before
    assert _versions(client, config.mlflow.registered_model) == versions_before


def test_unreachable_server_exits_6_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"http://127.0.0.1:{free_port()}")
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.train", "--config", str(ROOT / "config.yaml")],
        cwd=ROOT,
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 6, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "unreachable" in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_train_and_package_against_a_real_mlflow_server(
    mlflow_server: str, tmp_path: Path, config: Config
) -> None:
    settings = settings_for(tmp_path, mlflow_server)
    from mlflow import MlflowClient

    result = train_and_gate(config, settings)
    assert result.version == "1"
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    run = client.get_run(result.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # uploaded through the server
    assert (
        str(client.get_model_version_by_alias(config.mlflow.registered_model, "candidate").version)
        == "1"
    )
    bundle = load_bundle(package_candidate(config, settings))
    assert bundle.version == "1" and bundle.metadata["run_id"] == result.run_id
    assert not (tmp_path / "artifacts").exists()  # nothing written to a local artifact root
    # The anchor: the registry holds the digest of exactly this bundle.
    from core.bundle import DIGEST_TAG, bundle_digest

    tags = client.get_model_version(config.mlflow.registered_model, "1").tags
    assert tags[DIGEST_TAG] == bundle_digest(bundle.path)
    assert (
        registry.recorded_bundle_digest(client, config.mlflow.registered_model, "1")
        == tags[DIGEST_TAG]
    )


def test_a_champion_registered_before_the_threshold_moved_into_the_model_still_loads(
    tmp_path: Path, config: Config, default_frame: Any
) -> None:
    """A bare pipeline plus a `threshold` tag (how versions were registered before): it loads,
    scores as it did, and its threshold comes from the tag."""
    import mlflow
    import numpy as np

    from core.bundle import split_threshold
    from core.frames import feature_frame, target_vector
    from training import registry
    from training.model import build_pipeline

    settings = settings_for(tmp_path)
    client = registry.connect(settings)
    X = feature_frame(default_frame, config.contract)
    bare = build_pipeline(config).fit(X, target_vector(default_frame, config.contract))
    experiment = registry.ensure_experiment(client, "older", settings)
    with mlflow.start_run(experiment_id=experiment) as run:
        logged = registry.log_model(bare, X.head(5))
    registry.register(client, "older-model", run.info.run_id, logged, {"threshold": "0.25"})
    champion = registry.find_by_alias(client, "older-model", registry.CANDIDATE_ALIAS)
    assert champion is not None and champion.threshold == 0.25
    assert split_threshold(champion.pipeline)[1] is None
    np.testing.assert_array_equal(
        champion.pipeline.predict_proba(X.head(200)), bare.predict_proba(X.head(200))
    )


def test_the_registered_model_carries_the_chosen_threshold(
    embedded_run: Trained, config: Config
) -> None:
    from core.bundle import split_threshold
    from training import registry

    client = registry.connect(embedded_run.settings)
    model = registry.find_by_alias(client, config.mlflow.registered_model, registry.CANDIDATE_ALIAS)
    assert model is not None
    assert split_threshold(model.pipeline)[1] == model.threshold == embedded_run.result.threshold
