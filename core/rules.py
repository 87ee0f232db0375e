"""Turn the data contract into rules: the one list both the GX suite and the fast row check read.

A rule is a Great Expectations 1.x expectation (class name and arguments) plus what it means to
a person. `validation.suite` builds the GX suite from these rules; `core.checks` applies the
feature rules to request batches with vectorised pandas, interpreting the same arguments. No
column name is written here: every one comes from the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.config import Config, Feature, FeatureType, Target, TaskType

# dtype names GX's type check accepts for a numeric feature. A whole-number column without
# nulls reads as int64; one null turns it into float64, so `integer` is only enforced by dtype
# on features that may not be null.
INTEGER_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "Int64"]
NUMERIC_TYPES = [*INTEGER_TYPES, "float32", "float64", "Float64"]
BOOLEAN_VALUES = [0, 1]
# A text value that is not blank has a character other than white space somewhere.
NOT_BLANK = r"\S"


class Check(StrEnum):
    """What a rule checks, in words a person reads in the summary table."""

    columns = "columns"
    row_count = "row count"
    not_null = "not null"
    unique = "unique"
    numeric_type = "numeric type"
    in_set = "allowed values"
    between = "range"
    not_blank = "not blank"
    length = "length"
    classes = "target classes"
    share = "class share"
    extra = "extra"


class Scope(StrEnum):
    table = "table"
    id = "id"
    feature = "feature"
    target = "target"
    extra = "extra"


@dataclass(frozen=True)
class Rule:
    """One expectation generated from the contract (or added by the user in the config)."""

    check: Check
    scope: Scope
    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    column: str | None = None
    positive: str | None = None  # class-share rules: the positive class they bound

    @property
    def label(self) -> str:
        """Say what the rule demands, for tables and messages."""
        k = self.kwargs
        if self.check is Check.share:
            if k["value_set"][0] == self.positive:
                return f"{self.positive!r} share ≥ {k['mostly']:.0%}"
            return f"{self.positive!r} share ≤ {1 - k['mostly']:.0%}"
        if self.check is Check.in_set:
            values = [str(v) for v in k["value_set"]]
            shown = ", ".join(values[:4]) + (", …" if len(values) > 4 else "")
            return f"in {{{shown}}}"
        if self.check is Check.between:
            return f"in [{_num(k.get('min_value'))}, {_num(k.get('max_value'))}]"
        if self.check is Check.length:
            return f"{_num(k.get('min_value'))} to {_num(k.get('max_value'))} characters"
        if self.check is Check.not_blank:
            mostly = k.get("mostly")
            return "not blank" if mostly is None else f"blank in at most {1 - mostly:.0%}"
        if self.check is Check.numeric_type:
            return "whole numbers" if k["type_list"] == INTEGER_TYPES else "numbers"
        if self.check is Check.row_count:
            return f"rows in [{_num(k.get('min_value'))}, {_num(k.get('max_value'))}]"
        if self.check is Check.columns:
            how = "exactly" if k["exact_match"] else "at least"
            return f"{how} the {len(k['column_set'])} contract columns"
        if self.check is Check.classes:
            values = list(map(str, k["value_set"]))
            return ("both classes " if len(values) == 2 else "every class ") + ", ".join(values)
        if self.check is Check.extra:
            return self.expectation
        return str(self.check)


def _num(value: Any) -> str:
    if value is None:
        return "…"
    return f"{value:g}" if isinstance(value, float) else str(value)


def feature_rules(feature: Feature) -> list[Rule]:
    """The rules one feature's values must follow; also what `validate_features` checks."""
    rules: list[Rule] = []
    name = feature.name

    def add(check: Check, expectation: str, **kwargs: Any) -> None:
        rules.append(Rule(check, Scope.feature, expectation, {"column": name, **kwargs}, name))

    if not feature.nullable:
        add(Check.not_null, "ExpectColumnValuesToNotBeNull")
    if feature.type is FeatureType.numeric:
        whole = feature.integer and not feature.nullable
        add(
            Check.numeric_type,
            "ExpectColumnValuesToBeInTypeList",
            type_list=INTEGER_TYPES if whole else NUMERIC_TYPES,
        )
        if feature.min is not None or feature.max is not None:
            add(
                Check.between,
                "ExpectColumnValuesToBeBetween",
                min_value=feature.min,
                max_value=feature.max,
            )
    elif feature.type is FeatureType.boolean:
        add(Check.in_set, "ExpectColumnValuesToBeInSet", value_set=list(BOOLEAN_VALUES))
    elif feature.type is FeatureType.text:
        share = feature.max_empty_share
        # A blank value (empty or only white space) is a row error unless the contract allows
        # a share of them; then the rule bounds that share over the table.
        extra = {"mostly": round(1 - share, 6)} if share else {}
        add(Check.not_blank, "ExpectColumnValuesToMatchRegex", regex=NOT_BLANK, **extra)
        low, high = feature.length_bounds
        add(Check.length, "ExpectColumnValueLengthsToBeBetween", min_value=low, max_value=high)
    else:
        add(Check.in_set, "ExpectColumnValuesToBeInSet", value_set=list(feature.categories or []))
    return rules


def contract_rules(config: Config) -> list[Rule]:
    """Every rule for a training table: table shape, ids, features, target, then user extras."""
    contract = config.contract
    bounds = config.validation
    rules = [
        Rule(
            Check.columns,
            Scope.table,
            "ExpectTableColumnsToMatchSet",
            {"column_set": contract.columns, "exact_match": contract.unknown_columns == "fail"},
        ),
        Rule(
            Check.row_count,
            Scope.table,
            "ExpectTableRowCountToBeBetween",
            {"min_value": _int(bounds.row_count.min), "max_value": _int(bounds.row_count.max)},
        ),
    ]
    for col in contract.id_columns:
        rules.append(
            Rule(Check.not_null, Scope.id, "ExpectColumnValuesToNotBeNull", {"column": col}, col)
        )
    if len(contract.id_columns) == 1:
        col = contract.id_columns[0]
        rules.append(
            Rule(Check.unique, Scope.id, "ExpectColumnValuesToBeUnique", {"column": col}, col)
        )
    elif contract.id_columns:
        rules.append(
            Rule(
                Check.unique,
                Scope.id,
                "ExpectCompoundColumnsToBeUnique",
                {"column_list": list(contract.id_columns)},
                ", ".join(contract.id_columns),
            )
        )
    for feature in contract.features:
        rules.extend(feature_rules(feature))
    rules.extend(target_rules(contract.target, config))
    for extra in bounds.extra_expectations:
        column = extra.kwargs.get("column")
        rules.append(
            Rule(
                Check.extra,
                Scope.extra,
                extra.expectation,
                dict(extra.kwargs),
                column if isinstance(column, str) else None,
            )
        )
    return rules


def target_rules(target: Target, config: Config) -> list[Rule]:
    """The target's rules per task: classes (and a binary positive share), or numbers in range."""

    def rule(check: Check, expectation: str, **kwargs: Any) -> Rule:
        return Rule(
            check, Scope.target, expectation, {"column": target.name, **kwargs}, target.name
        )

    rules = [rule(Check.not_null, "ExpectColumnValuesToNotBeNull")]
    if target.type is TaskType.regression:
        rules.append(
            rule(Check.numeric_type, "ExpectColumnValuesToBeInTypeList", type_list=NUMERIC_TYPES)
        )
        if target.min is not None or target.max is not None:
            rules.append(
                rule(
                    Check.between,
                    "ExpectColumnValuesToBeBetween",
                    min_value=target.min,
                    max_value=target.max,
                )
            )
        return rules
    rules.append(
        rule(Check.classes, "ExpectColumnDistinctValuesToEqualSet", value_set=list(target.classes))
    )
    if target.type is not TaskType.binary:
        return rules  # validation.positive_share bounds a binary target's positive class only
    # GX has no "share of a value" expectation; `mostly` on a one-value set is exactly that:
    # at least `min` of the rows are positive, and at least 1 - `max` are negative.
    share = config.validation.positive_share
    for cls, mostly in (
        (target.positive, share.min),
        (target.negative, None if share.max is None else 1 - share.max),
    ):
        if mostly is not None and mostly > 0:
            rules.append(
                Rule(
                    Check.share,
                    Scope.target,
                    "ExpectColumnValuesToBeInSet",
                    {"column": target.name, "value_set": [cls], "mostly": round(mostly, 6)},
                    target.name,
                    positive=target.positive,
                )
            )
    return rules


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
