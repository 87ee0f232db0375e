"""A fork's GitHub remote as the tests and benchmarks play it: a local bare repository seeded with
the template's real infra/ folder, and a clone of it with a commit identity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = {"user.name": "Test", "user.email": "test@example.invalid"}


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its stripped output; a failing command raises."""
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def clone(remote: Path, where: Path) -> Path:
    """A clone of `remote` at `where` that can commit."""
    git(remote.parent, "clone", "--quiet", str(remote), str(where))
    for key, value in IDENTITY.items():
        git(where, "config", key, value)
    return where


def seeded_remote(folder: Path) -> tuple[Path, Path]:
    """A bare remote in `folder` whose main holds the template's infra/, and a clone of it."""
    folder.mkdir(parents=True, exist_ok=True)
    bare = folder / "remote.git"
    git(folder, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = clone(bare, folder / "work")
    shutil.copytree(ROOT / "infra", work / "infra")
    (work / "README.md").write_text("fork\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "seed")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    return bare, work
