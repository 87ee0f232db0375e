"""The GitOps change against real git: a bare repository on disk stands in for GitHub.

The push races are real: a `pre-push` hook in one clone makes a second clone push first, so the
first clone's push is rejected by the bare remote exactly as GitHub would reject it. The bare
remote accepts forced pushes, so a tool that forced would lose the other clone's commit, which the
ancestry assertions would catch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.errors import DeployError
from core.settings import get_settings
from deploy.gitops import (
    OVERLAYS_DIR,
    ImageRef,
    Pin,
    parse_image,
    promote,
    promote_body,
    read_pin,
    rollback,
    set_image,
)
from deploy.gitops import main as gitops_main
from tests.gitrepo import clone, git, seeded_remote

ROOT = Path(__file__).resolve().parents[2]
REPO = "ghcr.io/acme/churn-api"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository whose main holds the template's real infra/ folder."""
    return seeded_remote(tmp_path / "seed-folder")[0]


def remote_pin(remote: Path, overlay: str, ref: str = "main") -> Pin:
    path = (OVERLAYS_DIR / overlay / "kustomization.yaml").as_posix()
    return read_pin(git(remote, "show", f"{ref}:{path}"), path)


def count(remote: Path, ref: str = "main") -> int:
    return int(git(remote, "rev-list", "--count", ref))


def is_ancestor(remote: Path, commit: str, ref: str = "main") -> bool:
    return (
        subprocess.run(
            ["git", "merge-base", "--is-ancestor", commit, ref], cwd=remote, check=False
        ).returncode
        == 0
    )


def pin(digest: str, version: str = "7") -> Pin:
    return Pin(ImageRef(REPO, digest), version)


def test_set_image_commits_the_digest_and_pushes_it(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    before_file = (work / OVERLAYS_DIR / "staging" / "kustomization.yaml").read_text()
    pushed = set_image(work, "staging", pin(DIGEST_A))
    assert pushed is not None and git(remote, "rev-parse", "main") == pushed
    assert remote_pin(remote, "staging") == pin(DIGEST_A)
    message = git(remote, "log", "-1", "--format=%B", "main")
    assert "model version 7" in message and f"{REPO}@{DIGEST_A}" in message
    # Production is untouched, and so is the caller's checkout (the tool works in a worktree).
    assert remote_pin(remote, "production").image.digest != DIGEST_A
    assert (work / OVERLAYS_DIR / "staging" / "kustomization.yaml").read_text() == before_file
    assert git(work, "worktree", "list").count("\n") == 0
    # Comments and every other line of the overlay survive the edit.
    text = git(remote, "show", f"main:{OVERLAYS_DIR.as_posix()}/staging/kustomization.yaml")
    assert text.startswith("# Staging:") and "patches:" in text
    assert yaml.safe_load(text)["images"][0]["digest"] == DIGEST_A


def test_set_image_is_idempotent(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    assert set_image(work, "staging", pin(DIGEST_A)) is not None
    commits = count(remote)
    assert set_image(work, "staging", pin(DIGEST_A)) is None
    assert count(remote) == commits


@pytest.mark.parametrize(
    "image",
    [
        f"{REPO}:latest",
        REPO,
        f"{REPO}@sha256:{'a' * 12}",
        f"{REPO}@sha256:{'A' * 64}",
        f"{REPO}@md5:{'a' * 32}",
        f"{REPO}:v1@{DIGEST_A}",
        f"GHCR.io/Acme/api@{DIGEST_A}",
        f"{REPO}@sha256:{'0' * 64}",
    ],
)
def test_anything_but_a_full_digest_is_refused(image: str) -> None:
    with pytest.raises(DeployError, match=r"digest|repository name|placeholder"):
        parse_image(image)


def test_a_digest_is_accepted() -> None:
    assert parse_image(f"{REPO}@{DIGEST_A}") == ImageRef(REPO, DIGEST_A)
    assert parse_image(f"localhost:5000/a/b@{DIGEST_B}").repository == "localhost:5000/a/b"


@pytest.mark.slow  # a real `python -m deploy.gitops` process
def test_cli_refuses_a_tag_with_one_line_and_changes_nothing(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    commits = count(remote)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.gitops",
            "set-image",
            "staging",
            f"{REPO}:latest",
            "--repo",
            str(work),
            "--model-version",
            "7",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == DeployError.exit_code
    assert proc.stderr.count("\n") == 1 and "not pinned by digest" in proc.stderr
    assert count(remote) == commits


def test_unknown_overlay_is_refused(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    with pytest.raises(DeployError, match="overlay 'qa' not found"):
        set_image(work, "qa", pin(DIGEST_A))
    with pytest.raises(DeployError, match="not a folder name"):
        set_image(work, "../base", pin(DIGEST_A))


def test_unreachable_remote_is_a_service_error(tmp_path: Path, remote: Path) -> None:
    from core.errors import ServiceUnavailable

    work = clone(remote, tmp_path / "work")
    git(work, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    with pytest.raises(ServiceUnavailable, match="cannot fetch"):
        set_image(work, "staging", pin(DIGEST_A))


def race_hook(clone_dir: Path, script: str, once: bool = True) -> None:
    """Install a pre-push hook that runs `script` in another clone before this clone's push lands."""
    marker = clone_dir / ".git" / "raced"
    guard = f'[ -e "{marker}" ] && exit 0\ntouch "{marker}"\n' if once else ""
    hook = clone_dir / ".git" / "hooks" / "pre-push"
    # Git runs hooks with GIT_DIR pointing at this clone; the other clone must not inherit it.
    unset = "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX\n"
    hook.write_text(f"#!/bin/sh\n{unset}{guard}( {script} ) >/dev/null 2>&1 || exit 1\nexit 0\n")
    hook.chmod(0o755)


def test_push_race_with_an_unrelated_commit_rebases_and_retries(
    remote: Path, tmp_path: Path
) -> None:
    a = clone(remote, tmp_path / "a")
    b = clone(remote, tmp_path / "b")
    race_hook(
        a,
        f'cd "{b}" && echo change >> README.md && git commit -qam "docs" && '
        "git push -q origin HEAD:main",
    )
    pushed = set_image(a, "staging", pin(DIGEST_A))
    b_commit = git(b, "rev-parse", "HEAD")
    assert pushed == git(remote, "rev-parse", "main")
    assert is_ancestor(remote, b_commit), "the other clone's commit was lost"
    assert git(remote, "rev-parse", "main^") == b_commit  # ours was rebased on top of theirs
    assert remote_pin(remote, "staging") == pin(DIGEST_A)


@pytest.mark.slow  # the racing deploy is a real `python -m deploy.gitops` process
def test_push_race_on_the_same_overlay_reapplies_on_top(remote: Path, tmp_path: Path) -> None:
    a = clone(remote, tmp_path / "a")
    b = clone(remote, tmp_path / "b")
    other = f'"{sys.executable}" -m deploy.gitops set-image staging {REPO}@{DIGEST_B}'
    race_hook(a, f'cd "{ROOT}" && {other} --repo "{b}" --model-version 6')
    pushed = set_image(a, "staging", pin(DIGEST_A))
    assert pushed == git(remote, "rev-parse", "main")
    first = git(remote, "rev-parse", "main^")
    assert "model version 6" in git(remote, "log", "-1", "--format=%s", first)
    assert remote_pin(remote, "staging") == pin(DIGEST_A)  # the later deploy wins, in history


def test_push_race_that_never_ends_gives_up_without_forcing(remote: Path, tmp_path: Path) -> None:
    a = clone(remote, tmp_path / "a")
    b = clone(remote, tmp_path / "b")
    race_hook(
        a,
        f'cd "{b}" && echo x >> README.md && git commit -qam more && git push -q origin HEAD:main',
        once=False,
    )
    with pytest.raises(DeployError, match="rejected 3 times"):
        set_image(a, "staging", pin(DIGEST_A), retries=2)
    assert git(remote, "rev-parse", "main") == git(b, "rev-parse", "HEAD")
    assert count(remote) == 1 + 3
    assert remote_pin(remote, "staging").image.digest != DIGEST_A


def test_promote_writes_the_pin_into_the_checkout_and_pushes_nothing(
    remote: Path, tmp_path: Path
) -> None:
    work = clone(remote, tmp_path / "work")
    set_image(work, "staging", pin(DIGEST_A))
    git(work, "pull", "--quiet", "origin", "main")  # the workflow's checkout of main
    before = git(remote, "for-each-ref")
    assert promote(work) == pin(DIGEST_A)
    production = OVERLAYS_DIR / "production" / "kustomization.yaml"
    assert read_pin((work / production).read_text(), "production") == pin(DIGEST_A)
    # Left uncommitted for create-pull-request to open; nothing pushed, no branch made.
    assert git(work, "status", "--porcelain") == f"M {production.as_posix()}"
    assert git(remote, "for-each-ref") == before
    body = promote_body(work, pin(DIGEST_A))
    assert body.startswith("# Promote model version 7 from staging to production")
    assert f"{REPO}@{DIGEST_A}" in body and "deploy(staging)" in body
    # Asking again finds the change already made.
    assert promote(work) is None


def test_promote_when_production_already_runs_it_does_nothing(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    set_image(work, "staging", pin(DIGEST_A))
    set_image(work, "production", pin(DIGEST_A))
    git(work, "pull", "--quiet", "origin", "main")
    branches = git(remote, "branch", "--list")
    assert promote(work) is None
    assert git(remote, "branch", "--list") == branches
    assert git(work, "status", "--porcelain") == ""


def test_rollback_restores_the_previous_pin_in_the_checkout_with_a_pr_body(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = clone(remote, tmp_path / "work")
    set_image(work, "staging", pin(DIGEST_A, "7"))
    set_image(work, "staging", pin(DIGEST_B, "8"))
    git(work, "pull", "--quiet", "origin", "main")
    before = git(remote, "for-each-ref")
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    try:
        assert gitops_main(["rollback", "staging", "--repo", str(work)]) == 0
    finally:
        get_settings.cache_clear()
    staging = OVERLAYS_DIR / "staging" / "kustomization.yaml"
    assert read_pin((work / staging).read_text(), "staging") == pin(DIGEST_A, "7")
    assert git(work, "status", "--porcelain") == f"M {staging.as_posix()}"
    assert git(remote, "for-each-ref") == before  # the pull request is the workflow's step
    body = (tmp_path / "reports" / "rollback" / "pr.md").read_text()
    assert body.startswith("# Roll staging back to model version 7")
    assert "| model version | 8 | 7 |" in body


def test_rollback_refuses_when_only_the_placeholder_came_before(
    remote: Path, tmp_path: Path
) -> None:
    work = clone(remote, tmp_path / "work")
    set_image(work, "staging", pin(DIGEST_A))
    git(work, "pull", "--quiet", "origin", "main")
    with pytest.raises(DeployError, match="placeholder"):
        rollback(work, "staging")
    assert git(work, "status", "--porcelain") == ""


def test_promote_refuses_a_staging_that_was_never_deployed(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    with pytest.raises(DeployError, match="placeholder"):
        promote(work)


def test_promote_refuses_a_staging_overlay_without_an_image(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    path = work / OVERLAYS_DIR / "staging" / "kustomization.yaml"
    doc = yaml.safe_load(path.read_text())
    del doc["images"]
    path.write_text(yaml.safe_dump(doc))
    git(work, "commit", "-qam", "break staging")
    git(work, "push", "-q", "origin", "HEAD:main")
    with pytest.raises(DeployError, match="exactly one entry under 'images:'"):
        promote(work)
