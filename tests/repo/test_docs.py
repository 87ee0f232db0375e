"""The README is a short map, and every relative link in it and in docs/*.md leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.repo.test_template import MAKE_CALL, make_targets

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 220
# [text](target): the target ends at the first space or closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(page: Path) -> str:
    """The page without its fenced code blocks, where brackets are code, not links."""
    return FENCE.sub("", page.read_text())


def anchor(heading: str) -> str:
    """Turn a heading into the anchor GitHub gives it."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {anchor(h) for h in HEADING.findall(prose(page))}


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page)) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_readme_stays_a_short_map() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move the depth into docs/"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_something_that_exists(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT)}")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_call_only_existing_make_targets(page: Path) -> None:
    missing = set(MAKE_CALL.findall(page.read_text())) - make_targets()
    assert not missing, f"{page.relative_to(ROOT)} calls missing make targets: {sorted(missing)}"


def test_the_anchor_rule_matches_github() -> None:
    assert anchor("Batch scoring (`make score`)") == "batch-scoring-make-score"
    assert anchor("The workflow tests (act)") == "the-workflow-tests-act"
    assert anchor("`GITHUB_TOKEN` or a GitHub App token") == "github_token-or-a-github-app-token"
