"""Read a GX validation result back through the rules: what failed, where, with which values.

Everything here is a pure function of the result dict and the rules, so the terminal table,
the markdown and HTML summaries and the one-line error all say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from core.cli import table
from core.rules import Check, Rule, Scope
from core.templates import render

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Outcome:
    """How one rule fared on the data."""

    rule: Rule
    status: str  # passed | failed | error
    observed: str
    examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    @property
    def column(self) -> str:
        return self.rule.column or "(table)"

    def row(self) -> dict[str, object]:
        return {
            "expectation": self.rule.expectation,
            "column": self.column,
            "rule": self.rule.label,
            "observed": self.observed
            + (f" e.g. {', '.join(self.examples)}" if self.examples else ""),
            "status": self.status,
        }


def outcomes(
    result: dict[str, Any], rules: list[Rule], columns: Collection[str] | None = None
) -> list[Outcome]:
    """Pair each rule with its GX result (through `meta.rule`), in rule order.

    `columns` (those of the data) turns GX's various errors on an absent column into one
    plain "column missing".
    """
    by_rule: dict[int, dict[str, Any]] = {}
    for r in result.get("results", []):
        index = (r.get("expectation_config", {}).get("meta") or {}).get("rule")
        if isinstance(index, int):
            by_rule[index] = r
    present = None if columns is None else set(columns)
    return [
        Outcome(rule, "error", "column missing")
        if present is not None and "column" in rule.kwargs and rule.kwargs["column"] not in present
        else _outcome(rule, by_rule.get(i))
        for i, rule in enumerate(rules)
    ]


def _outcome(rule: Rule, r: dict[str, Any] | None) -> Outcome:
    if r is None:
        return Outcome(rule, "error", "not evaluated")
    messages = _exception_messages(r.get("exception_info") or {})
    if messages:
        return Outcome(rule, "error", _error_observed(messages))
    res = r.get("result") or {}
    status = "passed" if r.get("success") else "failed"
    return Outcome(rule, status, _observed(rule, res), _examples(rule, res, status))


def _exception_messages(exception: dict[str, Any]) -> list[str]:
    """Return the messages of the exceptions GX caught while running one expectation.

    GX gives either one exception (with `raised_exception`) or one per metric it computed.
    """
    raised = [exception] if "raised_exception" in exception else exception.values()
    return [
        str(v.get("exception_message"))
        for v in raised
        if isinstance(v, dict) and v.get("exception_message")
    ]


def _error_observed(messages: list[str]) -> str:
    """Say "column missing" for GX's several wordings of it, else the first line of the first."""
    if any("does not exist" in m for m in messages):
        return "column missing"
    return messages[0].splitlines()[0]


def _observed(rule: Rule, res: dict[str, Any]) -> str:
    """Say what GX saw for one rule, in the words of the summary table."""
    describe = _DESCRIBE.get(rule.check)
    return describe(rule, res) if describe is not None else _observed_value(res)


def _observed_columns(rule: Rule, res: dict[str, Any]) -> str:
    mismatch = (res.get("details") or {}).get("mismatched") or {}
    parts = [f"{k}: {', '.join(map(str, v))}" for k, v in mismatch.items() if v]
    if mismatch.get("unexpected") and rule.kwargs.get("exact_match"):
        parts.append("contract.unknown_columns is 'fail'")
    return "; ".join(parts) if parts else f"{len(res.get('observed_value') or [])} columns"


def _observed_share(rule: Rule, res: dict[str, Any]) -> str:
    # The rule counts rows outside a one-value set; turn that into the positive share.
    outside = float(res.get("unexpected_percent") or 0.0)
    share = 100.0 - outside if rule.kwargs["value_set"][0] == rule.positive else outside
    return f"{rule.positive!r} {share:.1f} %"


def _observed_classes(rule: Rule, res: dict[str, Any]) -> str:
    parts = [
        f"{kind}: {', '.join(map(str, res.get(f'partial_{kind}_list') or []))}"
        for kind in ("missing", "unexpected")
        if res.get(f"{kind}_count")
    ]
    return "; ".join(parts) or (
        "both present" if len(rule.kwargs["value_set"]) == 2 else "all present"
    )


def _observed_type(rule: Rule, res: dict[str, Any]) -> str:
    observed = res.get("observed_value")
    return f"type {observed}" if observed is not None else _observed_value(res)


def _observed_value(res: dict[str, Any]) -> str:
    """GX's observed value, else the count (and share) of unexpected rows, else nothing."""
    observed = res.get("observed_value")
    if observed is not None:
        return str(observed)
    if "unexpected_count" not in res:
        return ""
    count = int(res["unexpected_count"])
    return f"{count} unexpected" + (
        f" ({float(res.get('unexpected_percent') or 0):.2g} %)" if count else ""
    )


# The checks whose GX result needs reading through the rule; the others show `_observed_value`.
_DESCRIBE: dict[Check, Callable[[Rule, dict[str, Any]], str]] = {
    Check.columns: _observed_columns,
    Check.share: _observed_share,
    Check.classes: _observed_classes,
    Check.numeric_type: _observed_type,
}


def _examples(rule: Rule, res: dict[str, Any], status: str) -> tuple[str, ...]:
    if status == "passed" or rule.check in (Check.not_null, Check.share, Check.numeric_type):
        # A type check on a text column lists every value; `numeric_type_examples` does better.
        return ()
    values = list(dict.fromkeys(map(_short_repr, res.get("partial_unexpected_list") or [])))
    return tuple(values[:MAX_EXAMPLES])


def _short_repr(value: Any, limit: int = 60) -> str:
    """Quote a value for the report, cut short: a failed length check's values are long texts."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def with_examples(outcome: Outcome, examples: list[str]) -> Outcome:
    """Return the outcome with examples found elsewhere (e.g. the non-numbers of a text column)."""
    return Outcome(outcome.rule, outcome.status, outcome.observed, tuple(examples[:MAX_EXAMPLES]))


def failed(items: list[Outcome]) -> list[Outcome]:
    """Outcomes that did not pass, without the errors that only follow from another failure.

    A check on a missing column, or a range check on a column that already failed its type
    check, cannot run; the failure that explains it is reported instead.
    """
    explained = {o.column for o in items if o.status == "failed"}
    causes = [o for o in items if o.status == "failed" or _unexplained_error(o, explained)]
    return causes or [o for o in items if not o.ok]


def _unexplained_error(outcome: Outcome, explained: set[str]) -> bool:
    """Tell whether an error is its own cause: not a missing column, not on a failed column."""
    return (
        outcome.status == "error"
        and outcome.observed != "column missing"
        and outcome.column not in explained
    )


def terminal_table(items: list[Outcome]) -> str:
    """Failures, then the table- and target-level figures; passing column checks as one line."""
    shown = [o for o in items if not o.ok or o.rule.scope in (Scope.table, Scope.target)]
    quiet = [o for o in items if o not in shown]
    lines = [table([o.row() for o in shown])]
    if quiet:
        columns = len({o.column for o in quiet})
        lines.append(f"… and {len(quiet)} column checks passed on {columns} columns")
    return "\n".join(lines)


def failure_message(source: str, items: list[Outcome]) -> str:
    """One line for stderr: how many checks failed, each with its column and example values."""
    bad = failed(items)
    parts = []
    for o in bad:
        example = f", e.g. {', '.join(o.examples)}" if o.examples else ""
        parts.append(f"{o.column}: {o.rule.label} ({o.observed}{example})")
    blocked = sum(not o.ok for o in items) - len(bad)
    more = f" ({blocked} more could not run)" if blocked > 0 else ""
    return f"{source} fails {len(bad)} of {len(items)} checks{more}: " + "; ".join(parts)


def markdown_summary(title: str, facts: dict[str, object], items: list[Outcome]) -> str:
    """Render the markdown summary (templates/validation_summary.md.j2): facts, failures first."""
    return render("validation_summary.md.j2", title=title, facts=facts, rows=_summary_rows(items))


def html_summary(title: str, facts: dict[str, object], items: list[Outcome]) -> str:
    """Render the same summary as one offline HTML file (templates/validation_summary.html.j2)."""
    return render("validation_summary.html.j2", title=title, facts=facts, rows=_summary_rows(items))


def _summary_rows(items: list[Outcome]) -> list[dict[str, object]]:
    """Return every check as a table row, failures first."""
    return [o.row() for o in sorted(items, key=lambda o: o.ok)]
