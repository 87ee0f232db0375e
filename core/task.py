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
from core.config import Target, TaskType


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
