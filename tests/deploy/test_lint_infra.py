"""infra/ passes its checks, and each check catches the mistake it exists for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from deploy import lint_infra

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
