"""Tokens of free text, as the drift check and the reference profile count them (no sklearn)."""

from __future__ import annotations

import pandas as pd

# scikit-learn's default token pattern (the TF-IDF vectoriser's): two or more word characters,
# in any script.
TOKEN = r"(?u)\b\w\w+\b"


def tokens(texts: pd.Series) -> pd.Series:
    """The lower-cased tokens of a column of documents, one per row, indexed by document position."""
    found = texts.reset_index(drop=True).dropna().astype(str).str.lower().str.findall(TOKEN)
    return found.explode().dropna()


def token_counts(texts: pd.Series) -> pd.Series:
    """Count the tokens of a column of documents, most frequent first.

    Ties are ordered by token, so the most frequent terms are the same on every run.
    """
    counts = tokens(texts).value_counts()
    return counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
