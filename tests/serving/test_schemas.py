"""Request models generated from the contract: types, ranges, categories, nullability, unknowns."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from core.config import Config, Contract
from serving.schemas import batch_schema, feedback_schema, record_schema


def errors(model: TypeAdapter[Any], payload: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as info:
        model.validate_json(orjson.dumps(payload))
    return [e["loc"] for e in info.value.errors()]


@pytest.fixture(scope="module")
def record(config: Config) -> TypeAdapter[Any]:
    return record_schema(config.contract)


def test_a_real_record_passes_and_keeps_its_values(
    record: TypeAdapter[Any], records: list[dict[str, Any]]
) -> None:
    for rec in records[:50]:
        assert record.validate_json(orjson.dumps(rec)) == rec


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"contract": "Weekly"}, "contract"),  # category not in the contract
        ({"tenure": "12"}, "tenure"),  # a string in a number
        ({"tenure": 12.5}, "tenure"),  # integer feature
        ({"tenure": 121}, "tenure"),  # above max
        ({"monthly_charges": -0.01}, "monthly_charges"),  # below min
        ({"monthly_charges": None}, "monthly_charges"),  # not nullable
        ({"female": 2}, "female"),  # boolean takes true/false/0/1 only
        ({"female": "yes"}, "female"),
        ({"tenure": True}, "tenure"),  # a boolean is not a number
        ({"contract": 1}, "contract"),
        ({"surprise": 1}, "surprise"),  # unknown column, policy "fail"
    ],
)
def test_each_bad_value_names_its_field(
    record: TypeAdapter[Any], records: list[dict[str, Any]], change: dict[str, Any], field: str
) -> None:
    locs = errors(record, {**records[0], **change})
    assert locs and all(loc[0] == field for loc in locs)


def test_missing_field_is_named_and_nullable_field_takes_null(
    record: TypeAdapter[Any], records: list[dict[str, Any]]
) -> None:
    rec = dict(records[0])
    del rec["tenure"]
    assert errors(record, rec) == [("tenure",)]
    assert record.validate_json(orjson.dumps({**records[0], "total_charges": None}))
    assert record.validate_json(orjson.dumps({**records[0], "female": True, "tenure": 3.0}))
    assert record.validate_json(orjson.dumps({**records[0], "female": 1.0, "partner": 0}))


def test_unknown_columns_ignore_policy_drops_them(
    config: Config, records: list[dict[str, Any]]
) -> None:
    contract = Contract.model_validate(
        {**config.contract.model_dump(), "unknown_columns": "ignore"}
    )
    parsed = record_schema(contract).validate_json(orjson.dumps({**records[0], "surprise": 1}))
    assert parsed == records[0]


def test_batch_limits_and_feedback_classes(config: Config, records: list[dict[str, Any]]) -> None:
    batch = batch_schema(config.contract, 3)
    assert len(batch.validate_json(orjson.dumps({"records": records[:3]}))["records"]) == 3
    assert errors(batch, {"records": records[:4]}) == [("records",)]
    assert errors(batch, {"records": []}) == [("records",)]
    bad = [records[0], {**records[1], "contract": "Weekly"}]
    assert errors(batch, {"records": bad}) == [("records", 1, "contract")]
    feedback = feedback_schema(config.contract)
    assert feedback.validate_json(b'{"request_id": "ab-1", "label": "Yes"}')
    assert errors(feedback, {"request_id": "ab-1", "label": "Maybe"}) == [("label",)]
    assert errors(feedback, {"request_id": "a b", "label": "No"}) == [("request_id",)]
