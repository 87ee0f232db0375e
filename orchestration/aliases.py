"""Make a registry alias follow what an overlay runs: the overlay in git is the truth.

Usage: python -m orchestration.aliases sync ENV [--config config.yaml] [--repo .] [--remote origin]
       [--branch main] [--ref COMMIT]

ENV is an overlay under infra/k8s/overlays/ (staging, production) and the alias of the same
name. The pin is read from the remote branch (what Argo CD syncs); the model version it names
gets the alias, and the tags `<ENV>_image` (the image digest) and `<ENV>_commit` (the overlay's
last commit). A revert of the overlay commit (`make rollback`) moves the alias back the same way;
an overlay pinning the template's placeholder runs no model, so the alias is removed.
`make deploy-staging` runs it for staging; `.github/workflows/aliases.yml` after every overlay
change on main (a merged promotion or rollback pull request).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from core.cli import entry_point
from core.config import load_config
from core.errors import DeployError, ModelNotFound
from core.git import Git
from core.settings import Settings, get_settings
from deploy.gitops import PLACEHOLDER, Pin, overlay_file, read_pin
from training import registry


@dataclass(frozen=True)
class OverlayState:
    """What an overlay pins on the remote branch, and the commit that last changed it."""

    pin: Pin
    commit: str


@dataclass(frozen=True)
class Synced:
    """The alias after a sync: the version it points at (None: removed) and the one before."""

    alias: str
    version: str | None
    before: str | None
    skipped: bool = False  # an embedded store without the model: nothing to point at


def overlay_state(
    repo: Path, overlay: str, remote: str, branch: str, ref: str | None = None
) -> OverlayState:
    """Read the overlay's pin and last commit from `remote/branch` (or a local `ref`, unfetched)."""
    git = Git(repo, exit_code=DeployError.exit_code)
    base = ref or git.fetch(remote, branch)
    path = overlay_file(overlay).as_posix()
    shown = git.run("show", f"{base}:{path}", check=False)
    if shown.returncode != 0:
        raise DeployError(f"overlay {overlay!r} not found at {ref or f'{remote}/{branch}'}")
    commit = git.output("log", "-1", "--format=%H", base, "--", path).strip()
    return OverlayState(read_pin(shown.stdout, f"{remote}/{branch}:{path}"), commit)


def sync_alias(client: object, model_name: str, env: str, state: OverlayState) -> Synced:
    """Point alias `env` at the version the overlay runs, tagged with its digest and commit."""
    if state.pin.image.digest == PLACEHOLDER:
        registry.drop_alias(client, model_name, env)
        return Synced(env, None, None)
    tags = {f"{env}_image": str(state.pin.image), f"{env}_commit": state.commit}
    before = registry.point_alias(client, model_name, env, state.pin.model_version, tags)
    return Synced(env, state.pin.model_version, before)


def sync(settings: Settings, model_name: str, env: str, state: OverlayState) -> Synced:
    """Connect to the registry and sync the alias; a missing version is an error."""
    client = registry.connect(settings)
    with registry.reachable(settings):
        local = not registry.is_remote(settings.mlflow_tracking_uri)
        if local and not registry.is_registered(client, model_name):
            # A workflow without a team registry trains into a store thrown away with its
            # runner: there is no alias to keep in step, and that is not an error.
            return Synced(env, None, None, skipped=True)
        missing = state.pin.image.digest != PLACEHOLDER and not registry.has_version(
            client, model_name, state.pin.model_version
        )
    if missing:
        raise ModelNotFound(
            f"the {env} overlay pins {model_name} version={state.pin.model_version}, which the "
            "registry does not hold: register it, or fix the pin"
        )
    with registry.reachable(settings):
        return sync_alias(client, model_name, env, state)


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="point alias ENV at the model version overlay ENV runs")
    s.add_argument("env")
    s.add_argument("--config", default="config.yaml")
    s.add_argument("--repo", type=Path, default=Path("."))
    s.add_argument("--remote", default="origin")
    s.add_argument("--branch", default="main")
    s.add_argument(
        "--ref",
        help="read the overlay at this local commit instead of fetching (a workflow's checkout)",
    )
    args = parser.parse_args(argv)
    model_name = load_config(args.config).mlflow.registered_model
    state = overlay_state(args.repo, args.env, args.remote, args.branch, args.ref)
    synced = sync(get_settings(), model_name, args.env, state)
    if synced.skipped:
        print(
            f"✓ alias {args.env} not moved: {model_name} is not registered in the embedded store "
            "(set MLFLOW_TRACKING_URI to the team's registry)"
        )
    elif synced.version is None:
        print(f"✓ {args.env} runs no model (placeholder digest): alias {args.env} removed")
    else:
        moved = "" if synced.before in (None, synced.version) else f" (was {synced.before})"
        print(
            f"✓ alias {args.env} → {model_name} version {synced.version}{moved}; "
            f"tagged {state.pin.image.digest[:19]}…, commit {state.commit[:12]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
