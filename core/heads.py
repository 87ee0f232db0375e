"""Read a fitted linear estimator into `core.compiled`'s heads (numpy operations, no sklearn).

Packaging compiles a tabular pipeline's estimator with these (training/compile.py), and serving
the TF-IDF fast path (serving/fallback.py) runs the same head on the vectorisers' sparse output.
Anything else gives None: the caller falls back to sklearn's own method.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from core.bundle import POSITIVE_LABEL
from core.compiled import Head, Linear, Logistic, Softmax
from core.config import Contract, TaskType


def _logistic(estimator: Any, positive: int) -> Logistic | None:
    """A binary logistic regression as coefficients and intercept for the positive class."""
    if type(estimator) is not LogisticRegression or estimator.coef_.shape[0] != 1:
        return None
    coef = np.asarray(estimator.coef_[0], dtype=np.float64)
    intercept = float(estimator.intercept_[0])
    # coef_ scores classes_[1]: turn it round when the positive class comes first.
    return Logistic(coef, intercept) if positive == 1 else Logistic(-coef, -intercept)


def _softmax(estimator: Any, k: int) -> Softmax | None:
    """A multinomial logistic regression over the contract's k classes (its classes_ are 0..k-1)."""
    if type(estimator) is not LogisticRegression or estimator.coef_.shape[0] != k:
        return None
    if [int(c) for c in estimator.classes_] != list(range(k)):
        return None
    coef = np.ascontiguousarray(estimator.coef_, dtype=np.float64)
    return Softmax(coef, np.asarray(estimator.intercept_, dtype=np.float64))


def _linear(estimator: Any) -> Linear | None:
    """A single-output linear regressor (LinearRegression, Ridge) as coefficients and intercept."""
    if type(estimator) not in (LinearRegression, Ridge) or np.ndim(estimator.coef_) != 1:
        return None
    return Linear(np.asarray(estimator.coef_, dtype=np.float64), float(estimator.intercept_))


def linear_head(estimator: Any, contract: Contract) -> Head | None:
    """The estimator as numpy operations for the contract's task; None when it has none here."""
    target = contract.target
    if target.type is TaskType.regression:
        return _linear(estimator)
    if target.type is TaskType.multiclass:
        return _softmax(estimator, len(target.classes))
    classes = list(getattr(estimator, "classes_", []))
    if len(classes) != 2 or POSITIVE_LABEL not in classes:
        return None
    return _logistic(estimator, classes.index(POSITIVE_LABEL))
