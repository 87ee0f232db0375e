"""Run git: the one wrapper every command uses, with one error class and one bot identity.

`deploy/gitops.py` pins image digests and `orchestration/retrain_branch.py` pushes retraining
branches through `Git`; `training/registry.py` records the commit a model was trained from.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from core.errors import GitError

# Who the commits our commands make are by, when nobody else is named.
BOT_NAME = "mlops-bot"
BOT_EMAIL = "mlops-bot@users.noreply.github.com"
AUTHOR = {"GIT_AUTHOR_NAME": BOT_NAME, "GIT_AUTHOR_EMAIL": BOT_EMAIL}
COMMITTER = {"GIT_COMMITTER_NAME": BOT_NAME, "GIT_COMMITTER_EMAIL": BOT_EMAIL}
# Set by git for hooks and by some CI wrappers; they would point our commands at another repository.
LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_COMMON_DIR")
# What `git push` prints when the remote has commits we lack (someone pushed first).
REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "failed to update ref")


def bot_author() -> dict[str, str]:
    """Make the bot the author, and the committer unless the environment names one."""
    return {**{k: os.environ.get(k, v) for k, v in COMMITTER.items()}, **AUTHOR}


def bot_fallback() -> dict[str, str]:
    """Name the bot only where neither the environment nor the git config names anybody."""
    return {k: v for k, v in {**AUTHOR, **COMMITTER}.items() if k not in os.environ}


class Git:
    """Run git in one folder; a failing command raises GitError with git's last line.

    `env` is added to every command (an identity, an index file); `exit_code` is the one a
    failure of this caller's commands exits with (GitError's own, 6, unless given).
    """

    def __init__(
        self, cwd: Path, env: Mapping[str, str] | None = None, exit_code: int | None = None
    ) -> None:
        self.cwd = Path(cwd)
        self.env = dict(env or {})
        self.exit_code = exit_code

    def at(self, cwd: Path) -> Git:
        """The same identity and exit code in another folder (a worktree)."""
        return Git(cwd, self.env, self.exit_code)

    def with_env(self, env: Mapping[str, str]) -> Git:
        return Git(self.cwd, {**self.env, **env}, self.exit_code)

    def with_fallback_identity(self) -> Git:
        """A CI runner often has no git identity; commits then name the bot."""
        if self.run("config", "user.email", check=False).stdout.strip():
            return self
        return self.with_env(bot_fallback())

    def run(
        self,
        *args: str,
        check: bool = True,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `git ARGS` here; with `check`, a non-zero exit raises GitError."""
        inherited = {k: v for k, v in os.environ.items() if k not in LOCATION_VARS}
        done = subprocess.run(
            ["git", *args],
            cwd=self.cwd,
            env={**inherited, **self.env},
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        proc = subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )
        if check and proc.returncode != 0:
            raise self.error(f"git {args[0]} failed: {last_line(proc)}")
        return proc

    def output(self, *args: str, stdin: bytes | None = None) -> str:
        """Run a command that must succeed; return its output, stripped."""
        return self.run(*args, stdin=stdin).stdout.strip()

    def error(self, message: str) -> GitError:
        return GitError(message, self.exit_code)

    def fetch(self, remote: str, branch: str) -> str:
        """Fetch one branch of the remote; return its commit."""
        proc = self.run("fetch", "--quiet", remote, f"refs/heads/{branch}", check=False)
        if proc.returncode != 0:
            raise GitError(f"cannot fetch {branch!r} from remote {remote!r}: {last_line(proc)}")
        return self.output("rev-parse", "FETCH_HEAD^{commit}")

    def push(self, remote: str, branch: str, source: str = "HEAD") -> bool:
        """Push `source` to `branch` without force; False when the remote has commits we lack."""
        proc = self.run("push", "--porcelain", remote, f"{source}:refs/heads/{branch}", check=False)
        if proc.returncode == 0:
            return True
        if any(marker in proc.stdout + proc.stderr for marker in REJECTED):
            return False
        raise GitError(f"cannot push to remote {remote!r}: {last_line(proc)}")


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Git's last line of complaint (hints come before it), or the exit code when it said nothing."""
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return lines[-1][-300:] if lines else f"exit code {proc.returncode}"


def head_commit(cwd: Path) -> str:
    """Return the current commit of the repository holding `cwd`, or 'unknown' outside git."""
    try:
        proc = Git(cwd).run("rev-parse", "HEAD", check=False, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"
