"""Request and response models generated from the data contract.

One request field per contract feature: numbers are strict (a string is a 422, not a silent cast),
ranges come from min/max, integer features are `multipleOf: 1` (pydantic allows the last bits of
float rounding: 3.0000000001 passes), categories become a Literal, text is a strict string within
the contract's length bounds (a number or a list is a 422, so is a text past `max_length`), booleans take true/false or
0/1, and a nullable feature accepts null (it must still be sent, so a misspelt name is never read
as null). Unknown fields follow `contract.unknown_columns` (fail → 422 naming the field, ignore →
dropped). Every check runs inside pydantic-core, none in Python, so a batch of 10,000 records
costs no Python call per value.

A batch comes as `records` (a list of objects) or as `columns` (one list per feature, all the
same length): the same checks, but a third of the bytes and a fraction of the parsing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, create_model
from typing_extensions import TypedDict

from core.columns import (
    LABEL,
    LABELS,
    MODEL_VERSION,
    PROBABILITIES,
    PROBABILITY,
    REQUEST_ID,
    REQUEST_IDS,
    VALUE,
    VALUES,
)
from core.config import Contract, Feature, FeatureType, Target, TaskType


def _field_type(feature: Feature) -> Any:
    """The annotated type one feature accepts."""
    description = feature.description or None
    if feature.type is FeatureType.categorical:
        kind: Any = Literal[tuple(feature.categories or ())]
        field = Field(description=description)
    elif feature.type is FeatureType.boolean:
        kind = StrictBool | Literal[0, 1]
        field = Field(description=description)
    elif feature.type is FeatureType.text:
        low, high = feature.length_bounds
        kind = str
        field = Field(strict=True, min_length=low, max_length=high, description=description)
    else:
        field = Field(
            strict=True,
            ge=feature.min,
            le=feature.max,
            multiple_of=1 if feature.integer else None,
            allow_inf_nan=False,
            description=description,
        )
        kind = float
    annotated = Annotated[kind, field]
    return annotated | None if feature.nullable else annotated


def _typed_dict(
    name: str, doc: str, fields: dict[str, Any], extra: Literal["forbid", "ignore"] = "forbid"
) -> Any:
    factory: Any = TypedDict  # built at run time from the contract, so not a literal mypy can read
    cls = factory(name, fields)
    cls.__doc__ = doc
    cls.__pydantic_config__ = ConfigDict(extra=extra)
    return cls


def record_type(contract: Contract) -> Any:
    """Build the TypedDict of one record from the contract's features.

    A TypedDict rather than a BaseModel: validation yields plain dicts, about a third faster on a
    large batch, with nothing to copy out afterwards.
    """
    extra: Literal["forbid", "ignore"] = (
        "forbid" if contract.unknown_columns == "fail" else "ignore"
    )
    fields = {f.name: _field_type(f) for f in contract.features}
    return _typed_dict(
        "Record", "One record to score: every feature of the data contract.", fields, extra
    )


def record_schema(contract: Contract) -> TypeAdapter[Any]:
    """Validator (and JSON schema) of the body of POST /predict."""
    return TypeAdapter(record_type(contract))


def batch_schema(contract: Contract, max_batch: int) -> TypeAdapter[Any]:
    """Validator of a batch request: `records`, one to `max_batch` of them."""
    item = record_type(contract)
    records: Any = Annotated[list[item], Field(min_length=1, max_length=max_batch)]  # type: ignore[valid-type]
    return TypeAdapter(
        _typed_dict(
            "BatchRequest", f"Up to {max_batch} records scored in one call.", {"records": records}
        )
    )


def columns_schema(contract: Contract, max_batch: int) -> TypeAdapter[Any]:
    """Validator of a batch sent by column: `columns`, one list of 1 to `max_batch` per feature.

    That the lists have the same length is checked after validation (`column_lengths`).
    """
    extra: Literal["forbid", "ignore"] = (
        "forbid" if contract.unknown_columns == "fail" else "ignore"
    )
    fields = {
        f.name: Annotated[
            list[_field_type(f)],  # type: ignore[misc]
            Field(min_length=1, max_length=max_batch, description=f.description or None),
        ]
        for f in contract.features
    }
    columns = _typed_dict(
        "Columns",
        "One list of values per feature of the contract, all the same length.",
        fields,
        extra,
    )
    return TypeAdapter(
        _typed_dict(
            "BatchColumns",
            f"Up to {max_batch} records scored in one call, sent by column.",
            {"columns": columns},
        )
    )


def column_lengths(columns: dict[str, list[Any]]) -> tuple[int, list[dict[str, Any]]]:
    """The batch size, and a validation error per column whose length differs from the first."""
    names = list(columns)
    n = len(columns[names[0]]) if names else 0
    errors = [
        {
            "type": "column_length",
            "loc": ("columns", name),
            "msg": f"has {len(values)} values but {names[0]!r} has {n}: every column must have "
            "one value per record",
        }
        for name, values in columns.items()
        if len(values) != n
    ]
    return n, errors


def feedback_schema(contract: Contract) -> TypeAdapter[Any]:
    """Validator of ground truth sent back for a logged prediction: the true class, or value.

    The field is `label` for every task: one of the classes, or for a regression a number (a
    string or a class name is a 422 naming the field; the contract's range bounds it).
    """
    target = contract.target
    truth: Any
    if target.type is TaskType.regression:
        truth = Annotated[
            float,
            Field(
                strict=True,
                ge=target.min,
                le=target.max,
                allow_inf_nan=False,
                description=f"the true value of {target.name}",
            ),
        ]
    else:
        truth = Annotated[
            Literal[tuple(target.classes)], Field(description="one of the target's classes")
        ]
    fields = {
        REQUEST_ID: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
        LABEL: truth,
    }
    return TypeAdapter(
        _typed_dict(
            "Feedback",
            f"The true `{contract.target.name}` of a prediction, by its request id.",
            fields,
        )
    )


def _model(name: str, doc: str, fields: dict[str, Any]) -> type[BaseModel]:
    """A response model built at run time from the contract (what mypy cannot read as a literal)."""
    factory: Any = create_model
    model: type[BaseModel] = factory(name, __doc__=doc, **fields)
    return model


def _answer_fields(target: Target) -> dict[str, Any]:
    """The fields of one record's answer besides its request id and model version, per task."""
    if target.type is TaskType.regression:
        return {VALUE: (float, Field(description=f"predicted {target.name}"))}
    if target.type is TaskType.multiclass:
        classes = {c: (float, Field(ge=0, le=1)) for c in target.classes}
        probabilities = _model("ClassProbabilities", "The probability of each class.", classes)
        return {
            PROBABILITIES: (
                probabilities,
                Field(description="predicted probability of each class"),
            ),
            LABEL: (str, Field(description="the most probable class")),
        }
    return {
        PROBABILITY: (float, Field(description="predicted probability of the positive class")),
        LABEL: (str, Field(description="class at the model's decision threshold")),
    }


def prediction_model(target: Target) -> type[BaseModel]:
    """The answer for one record, for the contract's task (the OpenAPI schema of /predict)."""
    fields = {REQUEST_ID: (str, ...), **_answer_fields(target), MODEL_VERSION: (str, ...)}
    return _model("Prediction", "The answer for one record.", fields)


def batch_prediction_model(target: Target) -> type[BaseModel]:
    """The answers for a batch of records, in request order."""
    item: Any = prediction_model(target)
    fields = {MODEL_VERSION: (str, ...), "predictions": (list[item], ...)}
    return _model("BatchPrediction", "The answers for a batch, in request order.", fields)


def columns_prediction_model(target: Target) -> type[BaseModel]:
    """The answers for a batch sent by column, by column, in request order, per task."""
    fields: dict[str, Any] = {MODEL_VERSION: (str, ...), REQUEST_IDS: (list[str], ...)}
    if target.type is TaskType.regression:
        fields[VALUES] = (list[float], Field(description=f"predicted {target.name}"))
    else:
        if target.type is TaskType.multiclass:
            by_class = {c: (list[float], ...) for c in target.classes}
            fields[PROBABILITIES] = (
                _model(
                    "ClassProbabilityColumns", "Per class, its probability per record.", by_class
                ),
                Field(description="per class, the probability of each record"),
            )
        else:
            fields[PROBABILITIES] = (
                list[float],
                Field(description="predicted probability of the positive class"),
            )
        fields[LABELS] = (list[str], Field(description="the class each record is given"))
    return _model(
        "BatchColumnsPrediction",
        "The answers for a batch sent by column, by column, in request order.",
        fields,
    )


class FeedbackAccepted(BaseModel):
    """Ground truth was stored against the logged prediction."""

    request_id: str
    label: str | float
