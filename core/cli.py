"""Helpers for command-line entry points: one line per error, timing lines for people."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import ParamSpec

from core.errors import TemplateError

P = ParamSpec("P")


def entry_point(main: Callable[P, int | None]) -> Callable[P, int]:
    """Wrap a command's `main` so our errors become one line on stderr and their exit code."""

    @wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except TemplateError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper


def _color(code: str, text: str) -> str:
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[{code}m{text}\033[0m"
    return text


@contextmanager
def step(name: str, output: str | None = None) -> Iterator[None]:
    """Print one line saying what a step did, how long it took and where its output is."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        print(_color("31", f"✗ {name}") + f" failed after {time.perf_counter() - started:.1f} s")
        raise
    where = f" → {output}" if output else ""
    print(
        _color("32", f"✓ {name}") + f" in {time.perf_counter() - started:.1f} s{where}", flush=True
    )


def table(rows: list[dict[str, object]], columns: list[str] | None = None) -> str:
    """Render rows as a plain-text table, for terminals."""
    if not rows:
        return "(no rows)"
    cols = columns or list(rows[0])
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, sep, *body])


def markdown_table(rows: list[dict[str, object]], columns: list[str] | None = None) -> str:
    """Render rows as a GitHub-flavoured markdown table, for reports and PR bodies."""
    if not rows:
        return "_(no rows)_"
    cols = columns or list(rows[0])
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def github_output(path: Path | None, **values: str) -> None:
    """Append step outputs to $GITHUB_OUTPUT (`settings.github_output`); a no-op outside Actions.

    A multi-line value is written in GitHub's heredoc form (`key<<DELIMITER`), with a random
    delimiter so no line of the value can end it early.
    """
    if path is None:
        return
    lines = []
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
            lines.append(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            lines.append(f"{key}={value}\n")
    with path.open("a") as fh:
        fh.writelines(lines)
