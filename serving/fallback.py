"""Scoring through the sklearn pipeline itself, for a model the compiler does not cover.

Imported only then: it brings scikit-learn and pandas (about 150 MB and seconds of start-up)
into the worker. The model comes from the bundle's skops file (`core.bundle.load_model`).

A pipeline whose every branch is TF-IDF of one text column and whose estimator is linear (the
text example) is scored by `TfidfScorer`: each fitted vectoriser's own counting (its analyser:
tokens and n-grams exactly as fitted), then the TF-IDF weighting and the estimator's head
(core/heads.py) in numpy on the sparse rows, without the DataFrame, the ColumnTransformer, the
FeatureUnion and sklearn's input checks around them (most of a one-review call). The probes
check it against sklearn's own scores before the service is ready, as every path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

from core.bundle import split_threshold
from core.compiled import Columns, Head
from core.config import Contract, FeatureType
from core.frames import feature_frame
from core.heads import linear_head
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


@dataclass(frozen=True)
class Tfidf:
    """One fitted TfidfVectorizer: its own counting (the analyser, exact), then the weighting."""

    vectoriser: TfidfVectorizer
    idf: np.ndarray | None
    sublinear: bool
    l2: bool

    def transform(self, documents: list[str]) -> sparse.csr_matrix:
        """TF-IDF rows as TfidfTransformer.transform computes them, without its input checks."""
        x = CountVectorizer.transform(self.vectoriser, documents).tocsr()
        data = x.data
        if self.sublinear:
            np.log(data, data)
            data += 1.0
        if self.idf is not None:
            data *= self.idf[x.indices]
        if self.l2:
            # sklearn's inplace_csr_row_normalize_l2: each row's squares summed in order.
            rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
            norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=x.shape[0]))
            norms[norms == 0.0] = 1.0
            data /= norms[rows]
        return x


class TfidfScorer:
    """The task's scores of a text-only pipeline: its vectorisers, then its linear head in numpy."""

    def __init__(self, branches: list[tuple[str, list[Tfidf]]], head: Head) -> None:
        self.branches = branches
        self.head = head

    def __call__(self, columns: Columns, n: int) -> np.ndarray:
        blocks: list[sparse.csr_matrix] = []
        for column, parts in self.branches:
            # As core.frames.feature_frame: a missing text is the empty document.
            documents = ["" if v is None else v for v in columns[column]]
            blocks.extend(p.transform(documents) for p in parts)
        x = blocks[0] if len(blocks) == 1 else sparse.hstack(blocks, format="csr")
        return self.head.predict(x)


def tfidf_scorer(model: Any, contract: Contract) -> TfidfScorer | None:
    """A TfidfScorer for TF-IDF branches and a linear estimator (core/heads.py); else None."""
    pipeline = split_threshold(model)[0]
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    pre = pipeline.steps[0][1]
    head = linear_head(pipeline.steps[1][1], contract)
    if not isinstance(pre, ColumnTransformer) or head is None:
        return None
    texts = {f.name for f in contract.features if f.type is FeatureType.text}
    branches: list[tuple[str, list[Tfidf]]] = []
    for _name, transformer, column in pre.transformers_:
        if transformer == "drop":
            continue
        parts = _vectorisers(transformer)
        if not isinstance(column, str) or column not in texts or parts is None:
            return None
        branches.append((column, parts))
    return TfidfScorer(branches, head) if branches else None


def _vectorisers(transformer: Any) -> list[Tfidf] | None:
    """The vectorisers of one branch in output order (one, or a FeatureUnion's unweighted parts)."""
    if isinstance(transformer, TfidfVectorizer):
        parts = [transformer]
    elif isinstance(transformer, FeatureUnion) and not transformer.transformer_weights:
        parts = [t for _, t in transformer.transformer_list if t != "drop"]
    else:
        return None
    out = []
    for v in parts:
        if not isinstance(v, TfidfVectorizer) or v.binary or v.norm not in ("l2", None):
            return None
        idf = np.asarray(v.idf_, dtype=np.float64) if v.use_idf else None
        out.append(Tfidf(v, idf, bool(v.sublinear_tf), v.norm == "l2"))
    return out or None
