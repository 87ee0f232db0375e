"""core/git.py: the one git wrapper, its error and its bot identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import GitError, ServiceUnavailable
from core.git import BOT_EMAIL, Git, bot_author, head_commit


def test_a_failing_command_is_one_git_error_with_the_callers_exit_code(tmp_path: Path) -> None:
    with pytest.raises(GitError, match=r"git rev-parse failed: .*not a git repository") as raised:
        Git(tmp_path).run("rev-parse", "HEAD")
    assert isinstance(raised.value, ServiceUnavailable) and raised.value.exit_code == 6
    with pytest.raises(GitError) as raised:
        Git(tmp_path, exit_code=7).run("rev-parse", "HEAD")
    assert raised.value.exit_code == 7


def test_head_commit_outside_git_is_unknown(tmp_path: Path) -> None:
    assert head_commit(tmp_path) == "unknown"


def test_the_bot_authors_and_commits_unless_a_committer_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GIT_COMMITTER_EMAIL", raising=False)
    assert bot_author()["GIT_COMMITTER_EMAIL"] == BOT_EMAIL
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ci@example.com")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ci@example.com")
    assert bot_author()["GIT_COMMITTER_EMAIL"] == "ci@example.com"
    assert bot_author()["GIT_AUTHOR_EMAIL"] == BOT_EMAIL
