"""Render the reports and pull-request bodies from the Jinja2 templates in `templates/`.

A fork changes the wording of its model card, validation summary, drift report or retraining
pull request by editing those files; the Python side only computes the values they show. Filters
that format numbers and tables are defined here once, for every template.
"""

from __future__ import annotations

import traceback
from functools import cache
from pathlib import Path

import jinja2

from core.cli import markdown_table
from core.errors import TemplateRenderError

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def fixed(value: float, digits: int = 4) -> str:
    """Format a number with a fixed count of decimals: 0.8429."""
    return f"{value:.{digits}f}"


def number(value: float | None, digits: int = 3) -> str:
    """Format a statistic: fixed decimals, scientific when it would round to zero, "-" for none."""
    if value is None:
        return "-"
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def percent(value: float, digits: int = 1) -> str:
    """Format a share as a percentage: 0.0123 -> 1.2%."""
    return f"{value:.{digits}%}"


FILTERS = {"fixed": fixed, "number": number, "percent": percent, "markdown_table": markdown_table}


@cache
def environment(folder: Path) -> jinja2.Environment:
    """Build the Jinja2 environment over `folder`: strict about undefined values, HTML escaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # A block tag on a line of its own leaves no blank line behind, so templates can be
        # laid out readably and still give the markdown they show.
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
    )
    env.filters.update(FILTERS)
    return env


def render(template: str, /, **context: object) -> str:
    """Render `template` (a file name in TEMPLATES_DIR) with `context` as its variables."""
    folder = TEMPLATES_DIR
    try:
        return environment(folder).get_template(template).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateRenderError(
            f"{folder / str(exc.name)}: template not found (is it renamed, or {folder} missing?)"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or str(folder / (exc.name or template))
        raise TemplateRenderError(f"{where}, line {exc.lineno}: {exc.message}") from None
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        raise TemplateRenderError(f"{_where(exc, folder, template)}: {exc}") from None


def _where(exc: BaseException, folder: Path, template: str) -> str:
    """Name the template file and line the error was raised at (Jinja maps frames to them)."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if Path(f.filename).is_relative_to(folder) and f.lineno is not None
    ]
    if not frames:
        return str(folder / template)
    return f"{frames[-1].filename}, line {frames[-1].lineno}"
