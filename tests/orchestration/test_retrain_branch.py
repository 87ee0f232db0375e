"""The retrain branch against real git repositories: a bare remote and a clone in tmp_path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.errors import DataError, ServiceUnavailable
from orchestration.retrain_branch import (
    BranchResult,
    branch_name,
    open_branches,
    push_retrain_branch,
)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args],
        capture_output=True,
        text=True,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@x",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@x",
            "HOME": str(cwd),
            "PATH": "/usr/bin:/bin",
        },
    ).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "README.md").write_text("hello\n")
    git(work, "add", "README.md")
    git(work, "commit", "-qm", "first")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "origin", "main")
    return work


def push(clone: Path, model: str = "churn", date: str = "2026-11-20") -> BranchResult:
    return push_retrain_branch(
        clone,
        "origin",
        "main",
        model,
        date,
        {"reports/retrain/pr.md": b"# Retrain\n", "retrain/request.json": b"{}\n"},
        "Retrain churn",
    )


def test_pushes_one_branch_with_the_packet_on_top_of_main(clone: Path) -> None:
    status_before = git(clone, "status", "--porcelain")
    result = push(clone)
    assert result.created and result.name == "retrain/churn-2026-11-20"
    remote = clone.parent / "remote.git"
    assert git(remote, "show", f"{result.name}:reports/retrain/pr.md") == "# Retrain"
    assert git(remote, "show", f"{result.name}:README.md") == "hello"
    assert git(remote, "rev-parse", f"{result.name}^") == git(remote, "rev-parse", "main")
    assert git(clone, "status", "--porcelain") == status_before  # working tree untouched


def test_is_idempotent_per_model_while_the_branch_is_open(clone: Path) -> None:
    first = push(clone)
    again = push(clone, date="2026-11-27")
    assert not again.created and again.name == first.name
    assert open_branches(clone, "origin", "churn") == ["retrain/churn-2026-11-20"]
    other = push(clone, model="credit")
    assert other.created
    git(clone, "push", "-q", "origin", "--delete", "retrain/churn-2026-11-20")  # PR merged
    assert push(clone, date="2026-11-27").created


def test_bad_names_and_unreachable_remotes_are_clear_errors(clone: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="YYYY-MM-DD"):
        branch_name("churn", "20 Nov")
    assert branch_name("my model/v2", "2026-01-02") == "retrain/my-model-v2-2026-01-02"
    git(clone, "remote", "add", "gone", str(tmp_path / "nowhere.git"))
    with pytest.raises(ServiceUnavailable, match="git ls-remote failed"):
        push_retrain_branch(clone, "gone", "main", "churn", "2026-11-20", {}, "x")
    with pytest.raises(DataError, match="relative path"):
        push_retrain_branch(clone, "origin", "main", "churn", "2026-11-20", {"../x": b""}, "x")
