"""infra/ passes its checks, and each check catches the mistake it exists for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from core.config import Config
from core.frames import request_records
from deploy import alerts, lint_infra

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of what the checks read: Dockerfile and infra/."""
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    shutil.copytree(ROOT / "infra", tmp_path / "infra")
    return tmp_path


def edit_yaml(path: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    docs = list(yaml.safe_load_all(path.read_text()))
    change(docs[0])
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


@pytest.mark.slow  # runs kubectl, kubernetes-validate or check-jsonschema
def test_the_template_infra_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deploy.lint_infra"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("✓") == len(lint_infra.CHECKS)


@pytest.mark.slow  # runs kubectl, kubernetes-validate or check-jsonschema
@pytest.mark.parametrize("overlay", lint_infra.OVERLAYS)
def test_both_overlays_render_pinned_by_digest(overlay: str) -> None:
    rendered = lint_infra.render(ROOT, overlay)
    deployment = next(d for d in yaml.safe_load_all(rendered) if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "@sha256:" in container["image"]
    assert deployment["metadata"]["namespace"] == f"mlops-{overlay}"


@pytest.mark.slow  # runs kubectl, kubernetes-validate or check-jsonschema
def test_a_tag_instead_of_a_digest_fails(repo: Path) -> None:
    path = repo / "infra/k8s/overlays/staging/kustomization.yaml"

    def use_tag(doc: dict) -> None:  # type: ignore[type-arg]
        image = doc["images"][0]
        del image["digest"]
        image["newTag"] = "latest"

    edit_yaml(path, use_tag)
    assert any("not pinned by digest" in p for p in lint_infra.kubernetes(repo))


@pytest.mark.slow  # runs kubectl, kubernetes-validate or check-jsonschema
def test_a_writable_root_filesystem_and_a_wrong_field_fail(repo: Path) -> None:
    path = repo / "infra/k8s/base/deployment.yaml"
    text = path.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    path.write_text(text.replace("containerPort: 8000", "containerPort: eight-thousand"))
    problems = lint_infra.kubernetes(repo)
    assert any("readOnlyRootFilesystem" in p for p in problems)
    assert any("containerPort" in p for p in problems), "kubernetes-validate should catch it"


@pytest.mark.slow  # runs kubectl, kubernetes-validate or check-jsonschema
def test_a_broken_compose_file_fails(repo: Path) -> None:
    path = repo / "infra/compose.yaml"
    path.write_text(
        path.read_text().replace("    restart: unless-stopped\n", "    restarts: 1\n", 1)
    )
    assert lint_infra.compose(repo)


def test_argo_production_must_not_sync_by_itself(repo: Path) -> None:
    path = repo / "infra/argocd/production.yaml"
    edit_yaml(path, lambda d: d["spec"].setdefault("syncPolicy", {}).update(automated={}))
    assert any("must sync by hand" in p for p in lint_infra.argo(repo))


def test_argo_staging_needs_self_heal_and_a_real_path(repo: Path) -> None:
    path = repo / "infra/argocd/staging.yaml"

    def change(doc: dict) -> None:  # type: ignore[type-arg]
        doc["spec"]["syncPolicy"]["automated"]["selfHeal"] = False
        del doc["spec"]["destination"]["server"]

    edit_yaml(path, change)
    problems = lint_infra.argo(repo)
    assert any("prune and selfHeal" in p for p in problems)
    assert any("spec.destination.server is required" in p for p in problems)


def test_a_dashboard_on_an_unknown_data_source_fails(repo: Path) -> None:
    path = repo / "infra/grafana/dashboards/model-service.json"
    path.write_text(path.read_text().replace('"uid": "prometheus"', '"uid": "elsewhere"'))
    assert lint_infra.dashboards(repo)


@pytest.mark.slow  # a real server
def test_every_label_a_dashboard_panel_or_alert_rule_uses_is_on_a_live_metrics_page(
    trained_bundle: Path,
    tmp_path: Path,
    raw_config: dict[str, Any],
    config: Config,
    default_frame: pd.DataFrame,
) -> None:
    from tests.serving.conftest import serving_config, start_server

    server = start_server(
        tmp_path, bundle=trained_bundle, config=serving_config(tmp_path, raw_config)
    )
    try:
        with server.client() as client:
            # Traffic first: a labelled counter exports no sample (so no label) until it counts.
            record = request_records(default_frame.head(1), config.contract)[0]
            assert client.post("/predict", json=record).status_code == 200
            assert client.post("/predict", json={}).status_code == 422
            exposition = client.get("/metrics").text
    finally:
        server.stop()
    assert "model_info" in exposition
    assert lint_infra.dashboard_labels(ROOT, exposition) == []
    # The alerting rules too (target labels such as namespace come from the scrape, not /metrics).
    assert lint_infra.rule_labels(ROOT, exposition) == []


def test_the_label_check_names_a_label_no_metric_carries(repo: Path) -> None:
    exposition = '# TYPE model_info gauge\nmodel_info{name="m",version="1"} 1.0\n'
    path = repo / "infra/grafana/dashboards/model-service.json"
    dash = json.loads(path.read_text())
    dash["panels"] = [
        {
            "title": "model",
            "targets": [{"expr": "max by (release) (model_info)", "legendFormat": "{{release}}"}],
        },
        {"title": "gone", "targets": [{"expr": 'sum(rate(nothing_total{a="b"}[5m]))'}]},
    ]
    path.write_text(json.dumps(dash))
    problems = lint_infra.dashboard_labels(repo, exposition)
    assert len(problems) == 2
    assert "'release'" in problems[0] and "['name', 'version']" in problems[0]
    assert "nothing_total" in problems[1]


def test_the_rule_label_check_names_a_metric_the_service_does_not_export(repo: Path) -> None:
    path = repo / alerts.RULES_FILE
    path.write_text(path.read_text().replace("service_ready", "service_readiness"))
    exposition = "# TYPE service_ready gauge\nservice_ready 1\n"
    problems = lint_infra.rule_labels(repo, exposition)
    assert any("service_readiness" in p for p in problems), problems


def test_a_pod_monitor_that_misses_the_pods_or_the_hash_fails(repo: Path) -> None:
    def change(doc: dict) -> None:  # type: ignore[type-arg]
        doc["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "other"}
        doc["spec"]["podMetricsEndpoints"][0]["port"] = "metrics"
        doc["spec"]["podTargetLabels"] = []

    edit_yaml(repo / "infra" / "k8s" / "base" / "pod-monitor.yaml", change)
    problems = lint_infra.kubernetes(repo)
    assert any("selects app.kubernetes.io/name='other'" in p for p in problems), problems
    assert any("port 'metrics'" in p for p in problems), problems
    assert any("rollouts-pod-template-hash" in p for p in problems), problems
