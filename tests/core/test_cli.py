"""core/cli.py: the one $GITHUB_OUTPUT writer."""

from __future__ import annotations

from pathlib import Path

from core.cli import github_output


def test_github_output_appends_one_line_per_value(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    out.write_text("earlier=1\n")
    github_output(out, drift="true", verdict="drift")
    assert out.read_text() == "earlier=1\ndrift=true\nverdict=drift\n"


def test_github_output_quotes_a_multiline_value_with_a_heredoc(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    github_output(out, body="line one\nline two")
    first, *value, last = out.read_text().splitlines()
    key, delimiter = first.split("<<")
    assert (key, value, last) == ("body", ["line one", "line two"], delimiter)


def test_github_output_outside_actions_writes_nothing(tmp_path: Path) -> None:
    github_output(None, drift="true")
    assert list(tmp_path.iterdir()) == []
