"""Request and response models generated from the data contract.

One request field per contract feature: numbers are strict (a string is a 422, not a silent cast),
ranges come from min/max, categories become a Literal, booleans take true/false or 0/1, and a
nullable feature accepts null (it must still be sent, so a misspelt name is never read as null).
Unknown fields follow `contract.unknown_columns` (fail → 422 naming the field, ignore → dropped).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, create_model

from core.config import Contract, Feature, FeatureType


def _whole(value: float) -> float:
    if not float(value).is_integer():
        raise ValueError("should be a whole number")
    return value


def _field_type(feature: Feature) -> Any:
    """The annotated type one feature accepts."""
    description = feature.description or None
    if feature.type is FeatureType.categorical:
        kind: Any = Literal[tuple(feature.categories or ())]
        field = Field(description=description)
    elif feature.type is FeatureType.boolean:
        kind = StrictBool | Literal[0, 1]
        field = Field(description=description)
    else:
        field = Field(
            strict=True,
            ge=feature.min,
            le=feature.max,
            allow_inf_nan=False,
            description=description,
        )
        kind = Annotated[float, field, AfterValidator(_whole)] if feature.integer else float
    annotated = Annotated[kind, field]
    return annotated | None if feature.nullable else annotated


def record_model(contract: Contract, name: str = "Record") -> type[BaseModel]:
    """Build the pydantic model of one record from the contract's features."""
    extra: Literal["forbid", "ignore"] = (
        "forbid" if contract.unknown_columns == "fail" else "ignore"
    )
    fields: dict[str, Any] = {f.name: (_field_type(f), ...) for f in contract.features}
    return create_model(
        name,
        __config__=ConfigDict(extra=extra, frozen=True),
        __doc__="One record to score: every feature of the data contract.",
        **fields,
    )


def batch_model(record: type[BaseModel], max_batch: int) -> type[BaseModel]:
    """Build the model of a batch request: `records`, one to `max_batch` of them."""
    return create_model(
        "BatchRequest",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Up to {max_batch} records scored in one call.",
        records=(list[record], Field(min_length=1, max_length=max_batch)),  # type: ignore[valid-type]
    )


def feedback_model(contract: Contract) -> type[BaseModel]:
    """Build the model of ground truth sent back for a logged prediction."""
    classes = tuple(contract.target.classes)
    return create_model(
        "Feedback",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"The true `{contract.target.name}` of a prediction, by its request id.",
        request_id=(str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")),
        label=(Literal[classes], Field(description="one of the target's classes")),  # type: ignore[arg-type]
    )


class Prediction(BaseModel):
    """The answer for one record."""

    request_id: str
    probability: float = Field(description="predicted probability of the positive class")
    label: str = Field(description="class at the model's decision threshold")
    model_version: str


class BatchPrediction(BaseModel):
    """The answers for a batch, in request order."""

    model_version: str
    predictions: list[Prediction]


class FeedbackAccepted(BaseModel):
    """Ground truth was stored against the logged prediction."""

    request_id: str
    label: str
