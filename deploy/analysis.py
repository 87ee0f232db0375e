"""Run an overlay's AnalysisTemplate against a Prometheus: `make canary-analysis`.

Usage: python -m deploy.analysis --overlay staging --prometheus URL --arg canary-hash=H
       --arg stable-hash=H [--arg namespace=N] [--out reports/canary/analysis.json]

What the Argo Rollouts controller does for one measurement of each metric: put the arguments into
the query (`{{args.name}}`), ask Prometheus (`/api/v1/query`), turn the answer into `result` (a
vector is the list of its values, a scalar one number), and judge it by the metric's
`successCondition` / `failureCondition` with the rules of argo-rollouts' utils/evaluate (v1.9.1):
a condition that errs (an empty result indexed) is `Error`; with only a success condition, false is
`Failed`; with only a failure condition, false is `Successful`; both false is `Inconclusive`.

The conditions are expressions of expr-lang (Go), which has no Python implementation; this module
evaluates the subset such conditions use, by hand: numbers, `result`, indexing, `len`, `isNaN`,
`isInf`, arithmetic, comparisons, `&&` `||` `!` (and `and` `or` `not`). Anything else is refused,
never guessed. No cluster runs here: this is how the test judges a canary on a real Prometheus,
and how a person checks one against their own.
"""

from __future__ import annotations

import argparse
import ast
import math
import operator
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from core.cli import entry_point, table
from core.errors import ConfigError, TemplateError
from core.io import atomic_write_json
from core.settings import get_settings
from deploy.canary import OVERLAYS, load_template

ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")
SUCCESSFUL, FAILED, ERROR, INCONCLUSIVE = "Successful", "Failed", "Error", "Inconclusive"


class ConditionError(ValueError):
    """A condition cannot be evaluated (Argo's measurement phase `Error`)."""


def substitute(text: str, args: Mapping[str, str]) -> str:
    """Put the analysis arguments into a query, as the controller does; a missing one fails."""

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in args:
            raise ConfigError(f"analysis argument {name!r} has no value (pass --arg {name}=...)")
        return args[name]

    return ARG.sub(value, text)


def template_args(template: dict[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """The template's arguments: its defaults (`value`), overridden by those given."""
    defaults = {a["name"]: a["value"] for a in template["spec"].get("args", []) if "value" in a}
    return {**defaults, **given}


# expr-lang's boolean operators, spelt as Python's (`!=` stays).
_EXPR_WORDS = (
    (re.compile(r"&&"), " and "),
    (re.compile(r"\|\|"), " or "),
    (re.compile(r"!(?!=)"), " not "),
)
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "len": len,
    "isNaN": math.isnan,
    "isInf": math.isinf,
}


def evaluate_condition(condition: str, result: float | list[float]) -> bool:
    """Evaluate one successCondition/failureCondition on a measured `result`."""
    text = condition
    for pattern, word in _EXPR_WORDS:
        text = pattern.sub(word, text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"condition {condition!r}: not understood ({exc.msg})") from None
    value = _eval(tree.body, result, condition)
    if not isinstance(value, bool):
        raise ConditionError(f"condition {condition!r}: expected a bool, got {value!r}")
    return value


def _eval(node: ast.AST, result: Any, condition: str) -> Any:
    handler = _HANDLERS.get(type(node))
    if handler is None:
        raise ConditionError(
            f"condition {condition!r}: {ast.unparse(node)!r} is not supported here"
        )
    return handler(node, result, condition)


def _constant(node: Any, result: Any, condition: str) -> Any:
    if not isinstance(node.value, int | float | bool):
        raise ConditionError(f"condition {condition!r}: {node.value!r} is not a number")
    return node.value


def _name(node: Any, result: Any, condition: str) -> Any:
    names = {"result": result, "true": True, "false": False}
    if node.id not in names:
        raise ConditionError(f"condition {condition!r}: unknown name {node.id!r}")
    return names[node.id]


def _bool_op(node: Any, result: Any, condition: str) -> bool:
    values = (_eval(v, result, condition) for v in node.values)
    return all(values) if isinstance(node.op, ast.And) else any(values)


def _unary(node: Any, result: Any, condition: str) -> Any:
    operand = _eval(node.operand, result, condition)
    if isinstance(node.op, ast.Not):
        return not operand
    if isinstance(node.op, ast.USub):
        return -operand
    raise ConditionError(f"condition {condition!r}: {ast.unparse(node)!r} is not supported here")


def _binary(node: Any, result: Any, condition: str) -> Any:
    if type(node.op) not in _BINARY:
        raise ConditionError(
            f"condition {condition!r}: {ast.unparse(node)!r} is not supported here"
        )
    left, right = _eval(node.left, result, condition), _eval(node.right, result, condition)
    return _BINARY[type(node.op)](left, right)


def _subscript(node: Any, result: Any, condition: str) -> Any:
    seq, index = _eval(node.value, result, condition), _eval(node.slice, result, condition)
    try:
        return seq[index]
    except (IndexError, TypeError) as exc:
        raise ConditionError(f"condition {condition!r}: {exc} (result {result})") from None


def _call(node: Any, result: Any, condition: str) -> Any:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name not in _FUNCTIONS or len(node.args) != 1 or node.keywords:
        raise ConditionError(
            f"condition {condition!r}: {ast.unparse(node)!r} is not supported here"
        )
    return _FUNCTIONS[name](_eval(node.args[0], result, condition))


def _compare(node: Any, result: Any, condition: str) -> bool:
    left = _eval(node.left, result, condition)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        if type(op) not in _COMPARE:
            raise ConditionError(f"condition {condition!r}: operator {type(op).__name__} unknown")
        right = _eval(right_node, result, condition)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


_HANDLERS: dict[type, Callable[[Any, Any, str], Any]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.BoolOp: _bool_op,
    ast.UnaryOp: _unary,
    ast.BinOp: _binary,
    ast.Compare: _compare,
    ast.Subscript: _subscript,
    ast.Call: _call,
}


def phase(metric: dict[str, Any], result: float | list[float]) -> str:
    """The measurement's phase, by argo-rollouts' EvaluateResult rules."""
    success_expr, failure_expr = metric.get("successCondition"), metric.get("failureCondition")
    try:
        success = evaluate_condition(success_expr, result) if success_expr else False
        failure = evaluate_condition(failure_expr, result) if failure_expr else False
    except ConditionError:
        return ERROR
    if not success_expr and not failure_expr:
        return SUCCESSFUL
    if success_expr and not failure_expr:
        failure = not success
    elif failure_expr and not success_expr:
        success = not failure
    if failure:
        return FAILED
    return SUCCESSFUL if success else INCONCLUSIVE


def prometheus_query(url: str, query: str, timeout: float = 30) -> float | list[float]:
    """Ask Prometheus an instant query; a vector gives its values, a scalar one number."""
    response = httpx.get(
        f"{url.rstrip('/')}/api/v1/query", params={"query": query}, timeout=timeout
    )
    body = response.json()
    if body.get("status") != "success":
        raise ConfigError(f"Prometheus refused the query: {body.get('error', response.text)}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    if data["resultType"] == "vector":
        return [float(sample["value"][1]) for sample in data["result"]]
    raise ConfigError(f"Prometheus returned a {data['resultType']}: the analysis needs a vector")


@dataclass(frozen=True)
class Measurement:
    """One metric measured once: the query's answer and its phase."""

    metric: str
    value: str
    phase: str
    condition: str


def measure(template: dict[str, Any], url: str, args: Mapping[str, str]) -> list[Measurement]:
    """Measure every metric of an AnalysisTemplate once against the Prometheus at `url`."""
    values = template_args(template, args)
    found = []
    for metric in template["spec"]["metrics"]:
        query = substitute(metric["provider"]["prometheus"]["query"], values)
        result = prometheus_query(url, query)
        shown = f"{result:.4g}" if isinstance(result, float) else str([round(r, 4) for r in result])
        found.append(
            Measurement(
                metric["name"],
                shown,
                phase(metric, result),
                metric.get("successCondition") or f"not ({metric.get('failureCondition')})",
            )
        )
    return found


def verdict(measurements: list[Measurement]) -> str:
    """The analysis' phase after one round: the worst phase of its measurements."""
    order = (SUCCESSFUL, INCONCLUSIVE, ERROR, FAILED)
    return max((m.phase for m in measurements), key=order.index, default=SUCCESSFUL)


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", choices=OVERLAYS, required=True)
    parser.add_argument("--prometheus", required=True, help="base URL of the Prometheus")
    parser.add_argument("--arg", action="append", default=[], help="NAME=VALUE (repeatable)")
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    pairs = dict(a.split("=", 1) for a in args.arg if "=" in a)
    if len(pairs) != len(args.arg):
        raise ConfigError("--arg takes NAME=VALUE")
    try:
        measurements = measure(load_template(args.root, args.overlay), args.prometheus, pairs)
    except httpx.HTTPError as exc:
        raise TemplateError(f"Prometheus at {args.prometheus}: {exc}") from None
    print(table([asdict(m) for m in measurements]))
    result = verdict(measurements)
    out = args.out or get_settings().reports_dir / "canary" / "analysis.json"
    atomic_write_json(out, {"phase": result, "measurements": [asdict(m) for m in measurements]})
    print(f"{'✓' if result == SUCCESSFUL else '✗'} analysis {result}; written to {out}")
    return 0 if result == SUCCESSFUL else 1


if __name__ == "__main__":
    sys.exit(main())
