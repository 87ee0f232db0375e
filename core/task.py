"""What differs per task at prediction time: a fitted model's scores, and the labels they give.

The scores of a model, by task (what training, the gate, packaging and serving all compute):
- binary: the positive class's probability, shape (n,); the label is the positive class at the
  model's threshold and above;
- multiclass: the probability of each contract class, shape (n, k) in contract order; the label is
  the most probable class;
- regression: the predicted value, shape (n,); there is no label.
`summary_scores` turns them into one number per row for what keeps one (the prediction log, the
score histogram, the drift reference): a multiclass row's probability of its label.

numpy only: serving imports this without scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.bundle import POSITIVE_LABEL
from core.columns import LABEL, PROBABILITY, SCORE
from core.config import Target, TaskType
from core.errors import ContractError

# How a binary label may also be written (a file of feedback, a 0/1 target column).
_BINARY_SPELLINGS = {"1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0, "True": 1.0, "False": 0.0}


def model_scores(model: Any, X: Any, target: Target) -> np.ndarray:
    """Score rows with a fitted sklearn model (pipeline, wrapper or dummy) as the task defines."""
    if target.type is TaskType.regression:
        return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    classes = [int(c) for c in model.classes_]
    if target.type is TaskType.binary:
        return np.ascontiguousarray(proba[:, classes.index(POSITIVE_LABEL)])
    k = len(target.classes)
    if sorted(classes) != list(range(k)):
        raise ValueError(
            f"the model knows classes {classes}, the contract {k} ({', '.join(target.classes)}): "
            "every class must appear in the training part"
        )
    return np.ascontiguousarray(proba[:, np.argsort(classes)])


def labels(scores: np.ndarray, target: Target, threshold: float | None) -> list[str] | None:
    """The class each row's scores give (None for a regression: its value is the answer)."""
    if target.type is TaskType.regression:
        return None
    if target.type is TaskType.multiclass:
        return np.asarray(target.classes, dtype=object)[np.argmax(scores, axis=1)].tolist()
    if threshold is None:
        raise ValueError("a binary classifier labels at its threshold, and none was given")
    return np.where(scores >= threshold, target.positive, target.negative).tolist()


def summary_scores(scores: np.ndarray, target: Target) -> np.ndarray:
    """One number per row: the score itself, or a multiclass row's probability of its label."""
    if scores.ndim == 2:
        return np.asarray(scores.max(axis=1), dtype=np.float64)
    return np.asarray(scores, dtype=np.float64)


def class_column(name: str) -> str:
    """The batch output's column of one class's probability (multiclass)."""
    return f"{PROBABILITY}_{name}"


def output_columns(target: Target) -> list[tuple[str, type]]:
    """The columns batch scoring (streamed and Spark) writes per row besides ids and version.

    Binary: the score and the label; multiclass: the label's probability, the label and one
    probability column per class; regression: the predicted value under SCORE, no label.
    """
    if target.type is TaskType.regression:
        return [(SCORE, float)]
    columns: list[tuple[str, type]] = [(SCORE, float), (LABEL, str)]
    if target.type is TaskType.multiclass:
        columns += [(class_column(c), float) for c in target.classes]
    return columns


def scored_columns(
    scores: np.ndarray, target: Target, threshold: float | None
) -> dict[str, np.ndarray | list[str]]:
    """The output_columns' values for scored rows."""
    out: dict[str, np.ndarray | list[str]] = {SCORE: summary_scores(scores, target)}
    given = labels(scores, target, threshold)
    if given is not None:
        out[LABEL] = given
    if target.type is TaskType.multiclass:
        for i, c in enumerate(target.classes):
            out[class_column(c)] = scores[:, i]
    return out


def truth_values(values: list[Any], target: Target, what: str) -> np.ndarray:
    """Turn true labels (class names, 0/1, or a regression's numbers) into the target's encoding.

    Binary 0/1, multiclass class index, regression float64 (core.frames.target_vector's), NaN
    where there is none. A value the task cannot have is a ContractError naming `what`.
    """
    out = np.full(len(values), np.nan)
    if target.type is TaskType.regression:
        for i, v in enumerate(values):
            if v is None:
                continue
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                raise ContractError(
                    f"{what} has value {v!r}; the regression target {target.name!r} needs a number"
                ) from None
        return out
    if target.type is TaskType.binary:
        mapping = {target.positive: 1.0, target.negative: 0.0, **_BINARY_SPELLINGS}
    else:
        mapping = {c: float(i) for i, c in enumerate(target.classes)}
    for i, v in enumerate(values):
        if v is None:
            continue
        code = mapping.get(str(v))
        if code is None:
            expected = (
                f"{target.negative!r} or {target.positive!r} (or 0/1)"
                if target.type is TaskType.binary
                else f"one of {', '.join(map(repr, target.classes))}"
            )
            raise ContractError(f"{what} has label {v!r}; expected {expected}")
        out[i] = code
    return out
