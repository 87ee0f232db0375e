"""What the GitOps change costs: `set_image` against a bare remote vs a plain commit + push.

The baseline is the least a deploy commit can cost: edit the file in a clone, `git commit`,
`git push`. Our tool also fetches, works in a throwaway worktree and re-reads what it wrote; the
ratio says what that safety costs. A rejected-push round (fetch, rebase, push again) is timed too.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from core.cli import table
from deploy.gitops import OVERLAYS_DIR, ImageRef, Pin, set_image
from tests.gitrepo import clone, git, seeded_remote

REPEAT = 5


def _pin(i: int) -> Pin:
    return Pin(ImageRef("ghcr.io/acme/api", f"sha256:{i + 1:064x}"), str(i))


def _median(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        _, work = seeded_remote(Path(tmp))
        kustomization = work / OVERLAYS_DIR / "staging" / "kustomization.yaml"
        baseline: list[float] = []
        ours: list[float] = []
        for i in range(REPEAT):
            started = time.perf_counter()
            git(work, "pull", "-q", "--ff-only", "origin", "main")
            kustomization.write_text(kustomization.read_text() + f"# {i}\n")
            git(work, "commit", "-qam", f"baseline {i}")
            git(work, "push", "-q", "origin", "HEAD:main")
            baseline.append(time.perf_counter() - started)
            started = time.perf_counter()
            set_image(work, "staging", _pin(i))
            ours.append(time.perf_counter() - started)
        # A race: the clone's branch is behind, so a plain push would be rejected; ours rebases.
        behind = clone(Path(tmp) / "remote.git", Path(tmp) / "behind")
        hook = behind / ".git" / "hooks" / "pre-push"
        marker = behind / ".git" / "raced"
        hook.write_text(
            f'#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n[ -e "{marker}" ] && exit 0\n'
            f'touch "{marker}"\ncd "{work}" && echo x >> README && git add README && '
            "git commit -qm race && git push -q origin HEAD:main\n"
        )
        hook.chmod(0o755)
        started = time.perf_counter()
        set_image(behind, "staging", _pin(REPEAT + 1))
        raced = time.perf_counter() - started
    base = _median(baseline)
    rows: list[dict[str, object]] = [
        {
            "what": "plain edit + commit + push (baseline)",
            "median ms": f"{base:.0f}",
            "ratio": "1.0",
        },
        {
            "what": "set_image: fetch, worktree, pin, commit, push",
            "median ms": f"{_median(ours):.0f}",
            "ratio": f"{_median(ours) / base:.1f}",
        },
        {
            "what": "set_image, push rejected once (1 run, incl. the rival push)",
            "median ms": f"{raced * 1000:.0f}",
            "ratio": f"{raced * 1000 / base:.1f}",
        },
    ]
    print(f"GitOps change against a bare remote on disk, median of {REPEAT}")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
