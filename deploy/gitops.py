"""The GitOps change: pin an image digest in an overlay, commit, push; or propose it for production.

Usage:
  python -m deploy.gitops set-image OVERLAY IMAGE@sha256:<64 hex> [--model-version V]
  python -m deploy.gitops rollback OVERLAY
Common options: --repo . --remote origin --branch main --retries 3

`set-image` works in a temporary git worktree made from the remote branch, so the caller's checkout
and uncommitted files are never touched; it pushes to the branch (no commit when the overlay
already pins that digest); a push rejected because someone pushed first is fetched, rebased and
retried a bounded number of times; nothing is ever force-pushed. `promote()` writes the source
overlay's pin into the target overlay of the checkout, uncommitted (`make promote`:
orchestration/promote.py, which adds the registry's evidence to the pull-request body).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.bundle import METADATA_FILE
from core.cli import entry_point
from core.errors import DeployError
from core.git import Git
from core.io import atomic_write_text
from core.settings import get_settings
from core.templates import render

OVERLAYS_DIR = Path("infra/k8s/overlays")
VERSION_ANNOTATION = "mlops-template/model-version"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PLACEHOLDER = "sha256:" + "0" * 64  # what the template's overlays pin before the first deploy
# registry[:port]/path/name, lower case, as in the OCI distribution spec (tags are not accepted).
REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$"
)


@dataclass(frozen=True)
class ImageRef:
    """An image pinned by digest: `repository@sha256:<64 hex>`."""

    repository: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"

    @property
    def short(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]


def parse_image(text: str) -> ImageRef:
    """Accept only `repository@sha256:<64 hex>`; a tag is not a deploy target (it can move)."""
    repository, sep, digest = text.strip().partition("@")
    if not sep or not DIGEST.match(digest):
        raise DeployError(
            f"image {text!r} is not pinned by digest; give it as "
            "REPOSITORY@sha256:<64 lower-case hex> (tags like :latest can move, digests cannot)"
        )
    if digest == PLACEHOLDER:
        raise DeployError(
            f"image {text!r} has the template's all-zero placeholder digest; "
            "no image was deployed there yet"
        )
    if not REPOSITORY.match(repository):
        raise DeployError(
            f"image {text!r}: {repository!r} is not a repository name like ghcr.io/org/name "
            "(lower case, no tag before the @)"
        )
    return ImageRef(repository, digest)


@dataclass(frozen=True)
class Pin:
    """What an overlay pins: the image and the model version it carries."""

    image: ImageRef
    model_version: str


_FIELDS = {
    "newName": re.compile(r"^(\s*-?\s*newName:[ \t]*)(\S.*)?$", re.M),
    "digest": re.compile(r"^(\s*-?\s*digest:[ \t]*)(\S.*)?$", re.M),
    "version": re.compile(rf"^(\s*{re.escape(VERSION_ANNOTATION)}:[ \t]*)(\S.*)?$", re.M),
}


def read_pin(text: str, where: str) -> Pin:
    """Read the one image and the model-version annotation from an overlay kustomization."""
    try:
        doc = yaml.safe_load(text)
        (image,) = doc["images"]
        version = doc["commonAnnotations"][VERSION_ANNOTATION]
        return Pin(ImageRef(str(image["newName"]), str(image["digest"])), str(version))
    except (yaml.YAMLError, KeyError, TypeError, ValueError):
        raise DeployError(
            f"{where}: expected exactly one entry under 'images:' with newName and digest, and "
            f"commonAnnotations.{VERSION_ANNOTATION}"
        ) from None


def _replacer(value: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match.group(1) + value


def write_pin(text: str, pin: Pin, where: str) -> str:
    """Return the kustomization with the pin replaced, keeping every comment and other line."""
    values = {
        "newName": pin.image.repository,
        "digest": pin.image.digest,
        "version": json.dumps(pin.model_version),
    }
    for key, pattern in _FIELDS.items():
        text, count = pattern.subn(_replacer(values[key]), text)
        if count != 1:
            raise DeployError(f"{where}: expected one '{key}' line, found {count}")
    if read_pin(text, where) != pin:
        raise DeployError(f"{where}: the edit did not produce the intended pin")
    return text


def _git(repo: Path) -> Git:
    """Git in the caller's repository; its failures exit like any refused deploy step."""
    return Git(repo, exit_code=DeployError.exit_code).with_fallback_identity()


@contextmanager
def worktree(repo: Git, commit: str) -> Iterator[Git]:
    """A throwaway checkout of `commit`, so the caller's working tree is never modified."""
    folder = Path(tempfile.mkdtemp(prefix="gitops-"))
    path = folder / "tree"
    repo.run("worktree", "add", "--quiet", "--detach", str(path), commit)
    try:
        yield repo.at(path)
    finally:
        repo.run("worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(folder, ignore_errors=True)
        repo.run("worktree", "prune", check=False)


def overlay_file(overlay: str) -> Path:
    """infra/k8s/overlays/<overlay>/kustomization.yaml, refusing names that leave that folder."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", overlay):
        raise DeployError(f"overlay {overlay!r} is not a folder name under {OVERLAYS_DIR}")
    return OVERLAYS_DIR / overlay / "kustomization.yaml"


def apply_pin(tree: Git, overlay: str, pin: Pin) -> bool:
    """Write the pin into the overlay in `tree`; False when it was already there."""
    path = tree.cwd / overlay_file(overlay)
    if not path.is_file():
        raise DeployError(f"overlay {overlay!r} not found: {overlay_file(overlay)} does not exist")
    text = path.read_text()
    updated = write_pin(text, pin, str(overlay_file(overlay)))
    if updated == text:
        return False
    path.write_text(updated)
    return True


def commit_message(overlay: str, pin: Pin) -> str:
    return (
        f"deploy({overlay}): model version {pin.model_version}, image {pin.image.short}\n\n"
        f"Image: {pin.image}\nModel version: {pin.model_version}\nOverlay: {overlay_file(overlay)}\n"
    )


def set_image(
    repo: Path,
    overlay: str,
    pin: Pin,
    remote: str = "origin",
    branch: str = "main",
    retries: int = 3,
) -> str | None:
    """Commit the pin to `overlay` on the remote branch; return the pushed commit, or None if unchanged."""
    git = _git(repo)
    base = git.fetch(remote, branch)
    with worktree(git, base) as tree:
        attempt = 0
        while True:
            if not apply_pin(tree, overlay, pin):
                return None
            tree.run("commit", "--quiet", "-am", commit_message(overlay, pin))
            while True:
                if tree.push(remote, branch):
                    return tree.run("rev-parse", "HEAD").stdout.strip()
                attempt += 1
                if attempt > retries:
                    raise DeployError(
                        f"push to {remote}/{branch} was rejected {attempt} times (others kept "
                        "pushing first); nothing was forced, run the deploy again"
                    )
                latest = tree.fetch(remote, branch)
                if tree.run("rebase", "--quiet", latest, check=False).returncode == 0:
                    if tree.run("rev-parse", "HEAD").stdout.strip() == latest:
                        return None  # our change became empty: the same pin was pushed meanwhile
                    continue
                # Someone changed the same lines: start again from their commit and re-apply ours.
                tree.run("rebase", "--abort", check=False)
                tree.run("reset", "--quiet", "--hard", latest)
                break


def promote(repo: Path, source: str = "staging", target: str = "production") -> Pin | None:
    """Pin `source`'s image in `target` in the working tree; None when `target` already runs it.

    The change is left uncommitted in the checkout, for the workflow's pull-request step to open
    (or update) as one pull request: this command pushes nothing and needs no credentials.
    """
    git = _git(repo)
    path = git.cwd / overlay_file(source)
    if not path.is_file():
        raise DeployError(f"overlay {source!r} not found: {overlay_file(source)} does not exist")
    pin = read_pin(path.read_text(), str(overlay_file(source)))
    parse_image(str(pin.image))  # the source overlay must pin a real digest, not the placeholder
    return pin if apply_pin(git, target, pin) else None


def promote_body(
    repo: Path,
    pin: Pin,
    source: str = "staging",
    target: str = "production",
    evidence: object = None,
) -> str:
    """Render the promotion pull request's body (templates/promote_pr.md.j2).

    `evidence` (orchestration/promote.py's, from the registry) adds the model card and the gate
    history of the version; without it the body has the pin alone.
    """
    source_file = overlay_file(source).as_posix()
    commit = _git(repo).run("log", "-1", "--format=%h %s", "--", source_file, check=False)
    return render(
        "promote_pr.md.j2",
        pin=pin,
        source=source,
        target=target,
        target_file=overlay_file(target).as_posix(),
        source_commit=commit.stdout.strip() or "(not committed)",
        evidence=evidence,
    )


@dataclass(frozen=True)
class Rollback:
    """A rollback written into the checkout: the pin it restores, the one it replaces, the commit."""

    pin: Pin
    current: Pin
    reverted: str


def rollback(repo: Path, overlay: str) -> Rollback:
    """Restore the overlay's pin from before its last change, in the working tree (uncommitted).

    Only the overlay file is reverted (the same change `git revert` of the GitOps commit makes to
    it), so the workflow opens it as a pull request; refuse when there is nothing to go back to.
    """
    git = _git(repo)
    path = overlay_file(overlay)
    if not (git.cwd / path).is_file():
        raise DeployError(f"overlay {overlay!r} not found: {path} does not exist")
    current = read_pin((git.cwd / path).read_text(), str(path))
    last = git.run("log", "-1", "--format=%H", "--", path.as_posix()).stdout.strip()
    previous = git.run("show", f"{last}^:{path.as_posix()}", check=False)
    if not last or previous.returncode != 0:
        raise DeployError(f"{path} has no earlier version to roll back to")
    pin = read_pin(previous.stdout, f"{last[:12]}^:{path}")
    if pin.image.digest == PLACEHOLDER:
        raise DeployError(
            f"{path} pinned the template's placeholder before {last[:12]}: no earlier image to "
            "roll back to"
        )
    apply_pin(git, overlay, pin)
    subject = git.run("log", "-1", "--format=%h %s", last).stdout.strip()
    return Rollback(pin, current, subject)


def rollback_body(overlay: str, change: Rollback) -> str:
    """Render the rollback pull request's body (templates/rollback_pr.md.j2)."""
    return render(
        "rollback_pr.md.j2",
        overlay=overlay,
        overlay_file=overlay_file(overlay).as_posix(),
        pin=change.pin,
        current=change.current,
        reverted=change.reverted,
    )


def bundle_version() -> str:
    """The model version of the bundle at MODEL_BUNDLE, for the commit message."""
    path = get_settings().model_bundle / METADATA_FILE
    try:
        return str(json.loads(path.read_text())["model_version"])
    except (OSError, ValueError, KeyError):
        raise DeployError(
            f"no model version: give --model-version, or set MODEL_BUNDLE to the bundle the image "
            f"was built from ({path} is missing or has no model_version)"
        ) from None


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repo", type=Path, default=Path("."))
    common.add_argument("--remote", default="origin")
    common.add_argument("--branch", default="main")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("set-image", parents=[common], help="pin an image digest in an overlay")
    s.add_argument("overlay")
    s.add_argument("image")
    s.add_argument("--model-version")
    s.add_argument("--retries", type=int, default=3)
    r = sub.add_parser("rollback", parents=[common], help="revert an overlay's last image change")
    r.add_argument("overlay")
    args = parser.parse_args(argv)
    if args.command == "rollback":
        return _rollback(args.repo, args.overlay)
    image = parse_image(args.image)
    pin = Pin(image, args.model_version or bundle_version())
    pushed = set_image(args.repo, args.overlay, pin, args.remote, args.branch, args.retries)
    if pushed is None:
        print(f"✓ {args.overlay} already pins {image}; nothing to commit")
    else:
        print(
            f"✓ {args.overlay} → {image} (model version {pin.model_version}), "
            f"pushed {pushed[:12]} to {args.remote}/{args.branch}"
        )
    return 0


def _rollback(repo: Path, overlay: str) -> int:
    change = rollback(repo, overlay)
    body = atomic_write_text(
        get_settings().reports_dir / "rollback" / "pr.md", rollback_body(overlay, change)
    )
    print(
        f"✓ {overlay_file(overlay)} now pins model version {change.pin.model_version} again "
        f"(was {change.current.model_version}), uncommitted; pull-request body → {body}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
