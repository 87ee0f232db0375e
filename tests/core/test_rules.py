"""The rules generated from the contract: every column covered, nothing written in code."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import FeatureType, TaskType, load_config
from core.rules import INTEGER_TYPES, NUMERIC_TYPES, Check, Scope, contract_rules
from tests.conftest import ROOT, SHIPPED


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_contract_column_gets_its_rules(name: str) -> None:
    config = load_config(SHIPPED[name])
    contract = config.contract
    rules = contract_rules(config)
    by_column: dict[str | None, set[Check]] = {}
    for rule in rules:
        by_column.setdefault(rule.column, set()).add(rule.check)
    table = {r.check for r in rules if r.scope is Scope.table}
    assert table == {Check.columns, Check.row_count}
    assert rules[0].kwargs == {"column_set": contract.columns, "exact_match": True}
    for col in contract.id_columns:
        assert Check.not_null in by_column[col]
    if contract.id_columns:  # a fork's table may have none (modeldata/mlc_churn)
        assert Check.unique in by_column[", ".join(contract.id_columns)]
    for f in contract.features:
        checks = by_column[f.name]
        assert (Check.not_null in checks) == (not f.nullable)
        if f.type is FeatureType.text:
            assert {Check.not_blank, Check.length} <= checks
            assert Check.in_set not in checks
        elif f.type is FeatureType.numeric:
            assert Check.numeric_type in checks
            assert (Check.between in checks) == (f.min is not None or f.max is not None)
        else:
            assert Check.in_set in checks
    target = by_column[contract.target.name]
    kind = contract.target.type
    if kind is TaskType.binary:
        assert {Check.not_null, Check.classes, Check.share} <= target
    elif kind is TaskType.multiclass:  # every class present; the share bounds are binary's
        assert {Check.not_null, Check.classes} <= target and Check.share not in target
    else:
        assert {Check.not_null, Check.numeric_type} <= target and Check.classes not in target
        bounded = contract.target.min is not None or contract.target.max is not None
        assert (Check.between in target) == bounded


def test_numeric_rules_carry_the_contract_bounds(config: Any) -> None:
    rules = {(r.column, r.check): r for r in contract_rules(config)}
    for f in config.contract.of_type(FeatureType.numeric):
        between = rules[(f.name, Check.between)]
        assert (between.kwargs["min_value"], between.kwargs["max_value"]) == (f.min, f.max)
        types = rules[(f.name, Check.numeric_type)].kwargs["type_list"]
        assert types == (INTEGER_TYPES if f.integer and not f.nullable else NUMERIC_TYPES)
    for f in config.contract.of_type(FeatureType.categorical):
        assert rules[(f.name, Check.in_set)].kwargs["value_set"] == f.categories


def test_share_bounds_become_mostly_on_each_class(write_config: Callable[..., Path]) -> None:
    def bounds(raw: dict[str, Any]) -> None:
        raw["validation"]["positive_share"] = {"min": 0.1, "max": 0.3}

    config = load_config(write_config(bounds))
    share = [r for r in contract_rules(config) if r.check is Check.share]
    t = config.contract.target
    assert [(r.kwargs["value_set"], r.kwargs["mostly"]) for r in share] == [
        ([t.positive], 0.1),
        ([t.negative], 0.7),
    ]
    assert [r.label for r in share] == [
        f"{t.positive!r} share ≥ 10%",
        f"{t.positive!r} share ≤ 30%",
    ]


def test_unknown_columns_ignore_relaxes_the_column_set(write_config: Callable[..., Path]) -> None:
    def ignore(raw: dict[str, Any]) -> None:
        raw["contract"]["unknown_columns"] = "ignore"

    rules = contract_rules(load_config(write_config(ignore)))
    assert rules[0].kwargs["exact_match"] is False


def test_extra_expectations_come_last_with_their_arguments(
    write_config: Callable[..., Path],
) -> None:
    def extra(raw: dict[str, Any]) -> None:
        raw["validation"]["extra_expectations"] = [
            {
                "expectation": "ExpectColumnMeanToBeBetween",
                "kwargs": {"column": "tenure", "min_value": 1},
            }
        ]

    last = contract_rules(load_config(write_config(extra)))[-1]
    assert (last.check, last.expectation, last.column) == (
        Check.extra,
        "ExpectColumnMeanToBeBetween",
        "tenure",
    )


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_no_column_name_is_written_in_the_validation_code(name: str) -> None:
    contract = load_config(SHIPPED[name]).contract
    source = "\n".join(p.read_text() for p in (ROOT / "validation").glob("*.py"))
    literals = set(re.findall(r"""["']([^"'\n]+)["']""", source))
    written = literals & set(contract.columns)
    assert not written, f"column names written in validation/: {sorted(written)}"
