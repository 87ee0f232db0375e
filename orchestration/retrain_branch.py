"""Push the retraining packet as a branch `retrain/<model>-<window-date>`, at most one open per model.

A branch counts as open while it exists on the remote: the pull-request workflow deletes it when
the PR is merged or closed (GitHub's "automatically delete head branches"). The commit is built
with git plumbing in a throw-away index, so the caller's working tree and index are never touched.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError
from core.git import Git, bot_author

PREFIX = "retrain"


@dataclass(frozen=True)
class BranchResult:
    """What happened: the branch name, and whether this call created it."""

    name: str
    created: bool
    commit: str | None
    reason: str


def branch_name(model: str, window_date: str) -> str:
    """Return the stable branch name for a model and a drift window (date YYYY-MM-DD)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", window_date):
        raise DataError(f"window date {window_date!r} is not YYYY-MM-DD")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.") or "model"
    return f"{PREFIX}/{slug}-{window_date}"


def open_branches(repo: Path, remote: str, model: str) -> list[str]:
    """List the remote's retrain branches for this model (any window)."""
    prefix = branch_name(model, "0000-00-00").removesuffix("0000-00-00")
    out = Git(repo).output("ls-remote", "--heads", remote, f"refs/heads/{prefix}*")
    names = [
        line.split("\t", 1)[1].removeprefix("refs/heads/")
        for line in out.splitlines()
        if "\t" in line
    ]
    pattern = re.compile(re.escape(prefix) + r"\d{4}-\d{2}-\d{2}$")
    return sorted(n for n in names if pattern.fullmatch(n))


def push_retrain_branch(
    repo: Path,
    remote: str,
    base: str,
    model: str,
    window_date: str,
    files: dict[str, bytes],
    message: str,
) -> BranchResult:
    """Commit `files` (paths relative to the repo root) on top of `remote/base` and push the branch.

    Returns without pushing when a retrain branch for the same model is already open.
    """
    name = branch_name(model, window_date)
    existing = open_branches(repo, remote, model)
    if existing:
        return BranchResult(existing[0], False, None, f"{existing[0]} is already open for {model}")
    for path in files:
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise DataError(f"branch file {path!r} must be a relative path inside the repository")
    git = Git(repo, bot_author())
    parent = git.fetch(remote, base)
    with tempfile.TemporaryDirectory() as tmp:
        index = git.with_env({"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        index.run("read-tree", parent)
        for path, content in sorted(files.items()):
            blob = git.output("hash-object", "-w", "--stdin", stdin=content)
            index.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
        tree = index.output("write-tree")
    commit = git.output("commit-tree", tree, "-p", parent, stdin=message.encode())
    git.run("push", "--quiet", remote, f"{commit}:refs/heads/{name}")
    return BranchResult(name, True, commit, f"pushed {name} to {remote}")
