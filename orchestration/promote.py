"""`make promote`: propose staging's image for production, with the evidence a reviewer needs.

Usage: python -m orchestration.promote [--config config.yaml] [--repo .] [--source staging]
       [--target production]

The overlay change is deploy.gitops.promote's: staging's pin written into the production overlay
of the checkout, uncommitted, for `.github/workflows/promote.yml` to open as one pull request. The
body (REPORTS_DIR/promote/pr.md, templates/promote_pr.md.j2) adds, read from the registry and
never written to it: the model card of the version that image carries and its gate history (the
gate its training run passed, and where it has run since, from the version's tags). Without a
registry that holds the version the body says so, and the promotion can still be reviewed.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.bundle import MODEL_CARD_FILE
from core.cli import entry_point
from core.config import load_config
from core.io import atomic_write_text
from core.settings import Settings, get_settings
from deploy.gitops import Pin, overlay_file, promote, promote_body
from training import registry
from training.report import GATE_TABLE

# The stages a version passes, in order, and the tags each leaves on it (orchestration/aliases.py
# writes `<env>_image` and `<env>_commit`; training writes `gate` and `git_commit`).
LIFECYCLE = ("staging", "production")


@dataclass(frozen=True)
class Evidence:
    """What the registry says about the version being promoted (empty, with a note, without it)."""

    model_card: str | None = None
    gate_report: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    note: str | None = None


def gate_history(tags: dict[str, str], run_tags: dict[str, str]) -> list[dict[str, str]]:
    """One row per step the version passed: its training gate, then each overlay that ran it."""
    champion = run_tags.get("champion_version", "none")
    against = "no champion" if champion in ("", "none") else f"champion version {champion}"
    rows = [
        {
            "step": "gate (training run)",
            "result": tags.get("gate", "unknown"),
            "evidence": f"against {against}; trained at commit `{tags.get('git_commit', '?')[:12]}`",
        }
    ]
    for env in LIFECYCLE:
        if f"{env}_commit" in tags:
            rows.append(
                {
                    "step": env,
                    "result": "deployed",
                    "evidence": f"overlay commit `{tags[f'{env}_commit'][:12]}`, "
                    f"image `{tags.get(f'{env}_image', '?')}`",
                }
            )
    return rows


def _run_text(client: Any, run_id: str, path: str, folder: Path) -> str | None:
    """One text artifact of the run, or None when the run never logged it."""
    from mlflow.exceptions import MlflowException

    try:
        return registry.download_run_file(client, run_id, path, folder).read_text()
    except (MlflowException, OSError):
        return None


def read_evidence(settings: Settings, model_name: str, version: str) -> Evidence:
    """Read the version's model card, gate report and tags from the registry (read-only)."""
    client = registry.connect(settings)
    with registry.reachable(settings):
        if not registry.has_version(client, model_name, version):
            return Evidence(
                note=f"The registry ({settings.mlflow_tracking_uri}) does not hold {model_name} "
                f"version {version}: no model card or gate history to show."
            )
        mv = client.get_model_version(model_name, version)
        run_tags = dict(client.get_run(mv.run_id).data.tags) if mv.run_id else {}
        with tempfile.TemporaryDirectory() as tmp:
            card = _run_text(client, mv.run_id, MODEL_CARD_FILE, Path(tmp)) if mv.run_id else None
            gate = _run_text(client, mv.run_id, GATE_TABLE, Path(tmp)) if mv.run_id else None
    return Evidence(card, gate, gate_history(dict(mv.tags), run_tags))


def write_body(repo: Path, pin: Pin, evidence: Evidence, source: str, target: str) -> Path:
    """Render the pull-request body with the evidence and write it to REPORTS_DIR/promote/pr.md."""
    body = promote_body(repo, pin, source, target, evidence=evidence)
    return atomic_write_text(get_settings().reports_dir / "promote" / "pr.md", body)


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--source", default="staging")
    parser.add_argument("--target", default="production")
    args = parser.parse_args(argv)
    model_name = load_config(args.config).mlflow.registered_model
    pin = promote(args.repo, args.source, args.target)
    if pin is None:
        print(f"✓ {args.target} already pins {args.source}'s image; nothing to promote")
        return 0
    evidence = read_evidence(get_settings(), model_name, pin.model_version)
    body = write_body(args.repo, pin, evidence, args.source, args.target)
    print(
        f"✓ {overlay_file(args.target)} now pins {pin.image} (model version "
        f"{pin.model_version}), uncommitted; pull-request body → {body}"
        + (f" ({evidence.note})" if evidence.note else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
