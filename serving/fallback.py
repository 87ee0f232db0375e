"""Scoring through the sklearn pipeline itself, for a model the compiler does not cover.

Imported only then: it brings scikit-learn and pandas (about 150 MB and seconds of start-up)
into the worker. The model comes from the bundle's skops file (`core.bundle.load_model`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.compiled import Columns
from core.config import Contract
from core.frames import feature_frame
from core.task import model_scores


class SklearnScorer:
    """The task's scores (core/task.py) from the fitted model, for records given by column."""

    def __init__(self, model: Any, contract: Contract) -> None:
        self.model = model
        self.contract = contract
        # One OpenMP thread per worker: the service parallelises by workers and concurrent requests,
        # and starting an OpenMP pool on every call is what makes a one-row tree-ensemble
        # prediction cost ~5 ms instead of ~0.6 ms (measured on HistGradientBoosting).
        threadpool_limits(limits=1, user_api="openmp")

    def __call__(self, columns: Columns, n: int) -> np.ndarray:
        frame = feature_frame(pd.DataFrame(dict(columns), index=range(n)), self.contract)
        return model_scores(self.model, frame, self.contract.target)
