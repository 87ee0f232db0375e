"""Forks of this working tree in a temporary folder: what the template's fork tests start from.

A fork is a copy of the files git would commit (tracked and untracked, not ignored: uncommitted
changes under test included) in a fresh git repository, with this checkout's `.venv` linked in
so that no test installs anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "fork",
    "GIT_AUTHOR_EMAIL": "fork@example.invalid",
    "GIT_COMMITTER_NAME": "fork",
    "GIT_COMMITTER_EMAIL": "fork@example.invalid",
}
# What core/settings.py reads: a fork runs on its own defaults, not this session's.
SETTINGS = (
    "CONFIG_PATH",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_ARTIFACT_ROOT",
    "MODEL_BUNDLE",
    "MODEL_URI",
    "PREDICTION_LOG_URL",
    "REPORTS_DIR",
    "GITHUB_OUTPUT",
)


def fork_env() -> dict[str, str]:
    """The environment a fork's commands run in: no settings of ours, a git identity.

    `make install` would re-sync the linked `.venv` from the fork's `uv.lock` (its files are
    newer than the venv's stamp): `UV=true` makes that step a no-op, as the venv is the one these
    tests already run in.
    """
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return {**env, **GIT_IDENTITY, "MAKEFLAGS": "UV=true"}


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with the fork's identity; return its stdout."""
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        env=fork_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def link_venv(folder: Path) -> None:
    """Link this checkout's `.venv` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".venv").symlink_to((ROOT / ".venv").resolve(), target_is_directory=True)


def copy_tree(target: Path, *, venv: bool = True) -> Path:
    """Copy the working tree into `target` as a new repository with one commit on `main`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "template")
    if venv:
        link_venv(target)
    return target


def make(fork: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run `make ARGS` in the fork; the result carries stdout and stderr."""
    return subprocess.run(
        ["make", *args],
        cwd=fork,
        env=fork_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tail(proc: subprocess.CompletedProcess[str], chars: int = 4000) -> str:
    """The end of a process's output, for an assertion message."""
    return (proc.stdout + proc.stderr)[-chars:]
