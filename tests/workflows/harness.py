"""Run this repository's real workflow files with `act` in host mode against a bare git "origin".

Every third-party action is swapped (by its pinned SHA) for the stand-in of the same name under
`stand-ins/`; their shared state (artifacts, the image registry, pull-request records, comments)
lives in one folder per test. The project's `.venv` is reused through the cache stand-in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAND_INS = Path(__file__).resolve().parent / "stand-ins"
ACT = ROOT / ".venv" / "bin" / "act"
USES = re.compile(r"uses:\s*([\w.-]+)/([\w.-]+)(/[\w./-]+)?@([0-9a-f]{40})\b")
OWNER_REPO = "owner/repo"


def pinned_actions() -> dict[str, str]:
    """Map every `owner/repo@sha` the workflows and local actions use to its stand-in folder."""
    sources = [*(ROOT / ".github" / "workflows").glob("*.yml")]
    sources += (ROOT / ".github" / "actions").glob("*/action.yml")
    found: dict[str, str] = {}
    for source in sources:
        for owner, repo, _, sha in USES.findall(source.read_text()):
            # act performs actions/checkout itself: it copies the repository into the job's folder.
            if f"{owner}/{repo}" != "actions/checkout":
                found[f"{owner}/{repo}@{sha}"] = str(STAND_INS / repo)
    return found


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` with a fixed identity and return its stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclass
class ActRun:
    """What one `act` run returned, and where its stand-ins left their state."""

    returncode: int
    output: str
    state: Path

    def succeeded(self, job_name: str) -> bool:
        """Whether the job with this display name ran to success."""
        # act pads job names to a common width inside the brackets.
        pattern = rf"\[[^\]/]+/{re.escape(job_name)}\s*\]\s+🏁  Job succeeded"
        return bool(re.search(pattern, self.output))

    def ran(self, job_name: str) -> bool:
        """Whether the job with this display name started at all."""
        pattern = rf"\[[^\]/]+/{re.escape(job_name)}\s*\]\s+⭐ Run Set up job"
        return bool(re.search(pattern, self.output))


@dataclass
class Repo:
    """A copy of this repository committed to a fresh git repo whose `origin` is a bare repo."""

    work: Path
    origin: Path
    state: Path
    vars: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, tmp_path: Path) -> Repo:
        work, origin, state = tmp_path / "repo", tmp_path / "origin.git", tmp_path / "state"
        files = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        for name in filter(None, (f.decode() for f in files)):
            source = ROOT / name
            if source.is_file():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, work / name)
        state.mkdir()
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
        git(work, "init", "-q", "-b", "main")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "template")
        git(work, "remote", "add", "origin", str(origin))
        # act names the repository (github.repository) after this remote's URL; pushes go to origin.
        git(work, "remote", "add", "github", f"https://github.com/{OWNER_REPO}.git")
        git(work, "push", "-q", "origin", "main")
        return cls(work, origin, state)

    def commit(self, message: str) -> str:
        """Commit every change in the work tree and push it to origin; return the new sha."""
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def pull(self) -> str:
        """Bring main up to date with origin (a workflow pushed to it); return the new sha."""
        git(self.work, "checkout", "-q", "main")
        git(self.work, "pull", "-q", "--ff-only", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def merge(self, branch: str) -> str:
        """Merge the pull request of `branch` on origin as GitHub's merge button does; return main.

        The merge commit lands on origin's main, the branch is deleted (delete-branch), and the
        stand-in's pull-request record, when there is one, is marked merged.
        """
        self.pull()
        git(self.work, "fetch", "-q", "origin", branch)
        git(
            self.work,
            "merge",
            "-q",
            "--no-ff",
            "-m",
            f"Merge pull request from {branch}",
            "FETCH_HEAD",
        )
        git(self.work, "push", "-q", "origin", "main")
        git(self.work, "push", "-q", "origin", "--delete", branch)
        record = self.state / "prs" / (branch.replace("/", "__") + ".json")
        if record.exists():
            pr = json.loads(record.read_text())
            record.write_text(json.dumps({**pr, "state": "merged"}, indent=1))
        return git(self.work, "rev-parse", "HEAD")

    def origin_log(self, ref: str = "main") -> list[str]:
        return git(self.origin, "log", "--format=%H %s", ref).splitlines()

    def origin_branches(self) -> list[str]:
        out = git(self.origin, "for-each-ref", "--format=%(refname:short)", "refs/heads")
        return out.splitlines()

    def act(
        self,
        event: str,
        workflow: str,
        *,
        job: str | None = None,
        timeout: int = 600,
        inputs: dict[str, str] | None = None,
        number: int = 1,
    ) -> ActRun:
        """Run `act EVENT` on one workflow file in host mode with the stand-ins; never raise.

        A pull_request event is for pull request `number` from the branch checked out in the
        work tree; `inputs` are a workflow_dispatch's inputs.
        """
        sha = git(self.work, "rev-parse", "HEAD")
        head = git(self.work, "rev-parse", "--abbrev-ref", "HEAD")
        payload = {
            "ref": "refs/heads/main",
            "after": sha,
            "repository": {
                "name": "repo",
                "full_name": OWNER_REPO,
                "owner": {"login": "owner"},
                "default_branch": "main",
            },
        }
        if event == "pull_request":
            head = "feature" if head == "main" else head
            payload = {
                **payload,
                "number": number,
                "pull_request": {
                    "number": number,
                    "head": {"ref": head, "sha": sha, "repo": {"full_name": OWNER_REPO}},
                    "base": {"ref": "main", "repo": {"full_name": OWNER_REPO}},
                },
            }
        if inputs:
            # With --eventpath act reads a dispatch's inputs from the event, not from --input.
            payload = {**payload, "inputs": inputs}
        # Artifacts live as long as one workflow run, as on GitHub.
        shutil.rmtree(self.state / "artifacts", ignore_errors=True)
        event_file = self.state / f"event-{event}.json"
        event_file.write_text(json.dumps(payload))
        cmd = [
            str(ACT),
            event,
            "--workflows",
            f".github/workflows/{workflow}",
            "--eventpath",
            str(event_file),
            "-P",
            "ubuntu-latest=-self-hosted",
            "--no-cache-server",
            "--remote-name",
            "github",
            "--env",
            f"STANDIN_STATE={self.state}",
            "--env",
            f"STANDIN_VENV={ROOT / '.venv'}",
            "--secret",
            "GITHUB_TOKEN=stand-in-token",
        ]
        for spec, folder in sorted(pinned_actions().items()):
            cmd += ["--local-repository", f"{spec}={folder}"]
        for name, value in self.vars.items():
            cmd += ["--var", f"{name}={value}"]
        for name, value in self.secrets.items():
            cmd += ["--secret", f"{name}={value}"]
        for name, value in self.env.items():
            cmd += ["--env", f"{name}={value}"]
        for name, value in (inputs or {}).items():
            cmd += ["--input", f"{name}={value}"]
        if job:
            cmd += ["--job", job]
        path = [str(STAND_INS / "bin"), os.environ["PATH"]]
        if (ROOT / ".tools" / "bin" / "uv").exists():
            # `make install` bootstrapped uv into .tools: the jobs reuse it instead of pip-installing it.
            path.insert(1, str(ROOT / ".tools" / "bin"))
        env = {
            **os.environ,
            # act's per-job copies of the repository go under the test's folder.
            "XDG_CACHE_HOME": str(self.state / "cache"),
            # The docker stand-in (no Docker engine here) comes first on the jobs' PATH.
            "PATH": os.pathsep.join(path),
        }
        done = subprocess.run(
            cmd, cwd=self.work, env=env, capture_output=True, text=True, timeout=timeout
        )
        # The whole log stays on disk: an assertion message shows only its tail.
        runs = len(list(self.state.glob("act-*.log")))
        (self.state / f"act-{runs + 1:02d}-{workflow}.log").write_text(done.stdout + done.stderr)
        return ActRun(done.returncode, done.stdout + done.stderr, self.state)
