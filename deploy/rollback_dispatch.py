"""Propose the revert of an aborted canary: `make rollback-aborted PAYLOAD=file.json`.

Usage: python -m deploy.rollback_dispatch PAYLOAD.json [--repo .]
(PAYLOAD.json: the client_payload, or GitHub's whole event file, which holds it.)

When Argo Rollouts aborts a canary, its notification (infra/k8s/base/rollout-notifications.yaml)
sends GitHub a `repository_dispatch` whose `client_payload` is the file read here: the Rollout's
namespace, the model version it was rolling out (the overlay's `mlops-template/model-version`
annotation) and the analysis' status and message. `.github/workflows/rollback-dispatch.yml`
saves it and calls this.

The overlay is found by its namespace. When it still pins the aborted model version, this does
what `make rollback` does (deploy/gitops.py: the overlay's last image change reverted in the
checkout, uncommitted) and writes the pull-request body, with the analysis results, to
REPORTS_DIR/rollback/pr.md; the workflow opens it on the branch `rollback/<overlay>`, the same one
a manual rollback uses, so a second notification updates that pull request instead of opening
another. When the overlay pins something else (the revert is merged, or a newer version has
replaced it), there is nothing to revert: the step output `revert` is `false` and no file is written.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.cli import entry_point, github_output
from core.errors import DeployError
from core.io import atomic_write_text
from core.settings import get_settings
from core.templates import render
from deploy.gitops import overlay_file, read_pin, rollback, rollback_body

OVERLAYS = ("staging", "production")


@dataclass(frozen=True)
class Aborted:
    """What the notification says about the aborted rollout."""

    namespace: str
    rollout: str
    model_version: str
    phase: str
    message: str
    analysis_run: str

    @classmethod
    def from_payload(cls, payload: Any) -> Aborted:
        if not isinstance(payload, dict):
            raise DeployError("the dispatch payload must be a JSON object")
        missing = [k for k in ("namespace", "rollout", "model_version") if not payload.get(k)]
        if missing:
            raise DeployError(f"the dispatch payload lacks {', '.join(missing)}")
        analysis = payload.get("analysis") or {}
        return cls(
            namespace=str(payload["namespace"]),
            rollout=str(payload["rollout"]),
            model_version=str(payload["model_version"]),
            phase=str(analysis.get("status") or "unknown"),
            message=str(analysis.get("message") or payload.get("message") or "(none given)"),
            analysis_run=str(analysis.get("name") or "(unknown)"),
        )


def overlay_of(repo: Path, namespace: str) -> str:
    """The overlay whose kustomization deploys into `namespace`."""
    for overlay in OVERLAYS:
        path = repo / overlay_file(overlay)
        if path.is_file() and yaml.safe_load(path.read_text()).get("namespace") == namespace:
            return overlay
    raise DeployError(f"no overlay deploys into namespace {namespace!r} ({', '.join(OVERLAYS)})")


def propose(repo: Path, aborted: Aborted) -> tuple[str, str | None]:
    """Revert the overlay's aborted image change in the checkout; return the overlay and body.

    The body is None when the overlay no longer pins the aborted model version.
    """
    overlay = overlay_of(repo, aborted.namespace)
    path = overlay_file(overlay)
    pinned = read_pin((repo / path).read_text(), str(path))
    if pinned.model_version != aborted.model_version:
        return overlay, None
    change = rollback(repo, overlay)
    analysis = render(
        "canary_aborted.md.j2", aborted=aborted, overlay=overlay, overlay_file=path.as_posix()
    )
    return overlay, rollback_body(overlay, change) + "\n" + analysis


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("payload", type=Path, help="the dispatch's client_payload (JSON)")
    parser.add_argument("--repo", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    try:
        payload = json.loads(args.payload.read_text())
    except (OSError, ValueError) as exc:
        raise DeployError(f"{args.payload}: not a readable JSON payload ({exc})") from None
    # GitHub's event file ($GITHUB_EVENT_PATH) wraps the notification's body in client_payload.
    if isinstance(payload, dict) and isinstance(payload.get("client_payload"), dict):
        payload = payload["client_payload"]
    aborted = Aborted.from_payload(payload)
    settings = get_settings()
    overlay, body = propose(args.repo, aborted)
    if body is None:
        github_output(settings.github_output, revert="false", overlay=overlay)
        print(
            f"✓ {overlay_file(overlay)} no longer pins model version {aborted.model_version}: "
            "nothing to revert (already rolled back or replaced)"
        )
        return 0
    out = atomic_write_text(settings.reports_dir / "rollback" / "pr.md", body)
    github_output(settings.github_output, revert="true", overlay=overlay)
    print(
        f"✓ {overlay_file(overlay)}: the aborted model version {aborted.model_version} reverted "
        f"in the checkout (uncommitted); pull-request body → {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
