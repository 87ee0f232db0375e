"""Drift statistics: pure functions comparing a current window of traffic with the training reference.

Choice of test, from the contract's type:
- numeric: two-sample Kolmogorov-Smirnov on the non-null values (`scipy.stats.ks_2samp`);
- categorical: chi-squared on the reference/current contingency table (`chi2_contingency`), with
  nulls as their own level and categories the reference never saw kept as their own columns;
- boolean: chi-squared too, on the 2 x 2 table (plus a null level), without Yates' correction. A
  boolean is one Bernoulli proportion: the chi-squared test is the two-proportion z-test, well
  calibrated at our minimum sample sizes, while KS on a two-point distribution is far from its
  continuous null distribution (very conservative, so it would miss real changes).
- text: two tests, each its own member of the family: KS on the length in characters, and a
  chi-squared over the reference's most frequent tokens (the rest pooled), reported with the share
  of current tokens the reference never had.
PSI is computed for every feature and the score, on quantile bins of the reference (numeric) or on
levels (categorical, boolean); a missing level is always its own bin.

The p-values of all features, of the score and of the live-metric drop (when feedback exists) form
one family, corrected with Benjamini-Hochberg. A feature counts as drifted when its adjusted p-value
is below `fdr_alpha` AND its PSI exceeds `psi_noise` (the PSI two samples of these sizes show with
no change) by `psi_threshold`; the live metric when its drop is significant AND larger than
`max_metric_drop`: significance alone flags negligible shifts once windows are large, and a raw
PSI floor is mostly sampling noise on small windows (tuned by bench/bench_drift.py).
The metric estimated from the scores (validation/estimate.py) joins the family and the verdict
like the live one, so a drop shows before the labels arrive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from core.columns import REFERENCE_LABEL, REFERENCE_PREDICTED, REFERENCE_SCORE, SCORE
from core.config import METRICS, Contract, Drift, Feature, FeatureType, Target, TaskType
from core.metrics import (
    bootstrap_standard_error,
    drop_p_value,
    improvement,
    metric_value,
    vector_metric,
)
from core.text import token_counts, tokens
from validation.estimate import (
    PerformanceEstimate,
    decide_estimate,
    estimate_performance,
    not_estimated,
)

MISSING = "(missing)"
# The drift command exits with this when the verdict is drift; 0 means no drift (or not enough
# data). Not 1 (an uncaught Python exception) nor 2 (argparse, make): a crash never reads as drift.
# Errors use their own codes (core/errors.py), all different from this one.
DRIFT_EXIT_CODE = 10

Status = Literal["drift", "ok", "not enough data"]
Verdict = Literal["drift", "no drift", "not enough data"]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's (or the score's) comparison."""

    name: str
    type: str
    test: str
    statistic: float | None
    p_value: float | None
    psi: float | None
    n_reference: int
    n_current: int
    null_share_reference: float
    null_share_current: float
    unseen: list[str] = field(default_factory=list)
    # Text vocabulary: the share of the current window's tokens that the reference never had.
    unseen_share: float | None = None
    q_value: float | None = None
    status: Status = "ok"
    # The PSI two samples of these sizes show with no change at all (psi_noise): the materiality
    # floor applies to what is above it.
    psi_noise: float | None = None

    @property
    def drifted(self) -> bool:
        return self.status == "drift"


@dataclass(frozen=True)
class PerformanceDrift:
    """Live metrics on the labelled rows of the window, against the training ones."""

    metric: str
    training: float | None
    live: float | None
    drop: float | None
    n_labelled: int
    live_metrics: dict[str, float]
    status: Status
    standard_error: float | None = None
    p_value: float | None = None
    q_value: float | None = None


@dataclass(frozen=True)
class DriftResult:
    """Everything the report shows, and the verdict."""

    verdict: Verdict
    reasons: list[str]
    n_reference: int
    n_current: int
    features: list[FeatureDrift]
    score: FeatureDrift | None
    performance: PerformanceDrift | None
    invalid_share: dict[str, float] | None
    invalid_columns: list[str]
    settings: dict[str, Any]
    estimate: PerformanceEstimate | None = None

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"

    def to_dict(self) -> dict[str, Any]:
        """Return every statistic as plain JSON-able values."""
        out = asdict(self)
        out["drifted"] = self.drifted
        return out


# --- PSI -------------------------------------------------------------------------------------


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = 1e-4) -> float:
    """Population stability index of two histograms over the same bins.

    PSI = sum((c - r) * ln(c / r)) over bins, with r and c the reference and current shares.
    A bin empty on one side would make the logarithm infinite, so shares are floored at `epsilon`
    (not renormalised): an empty reference bin holding a share c of the current data contributes
    about c * ln(c / epsilon), e.g. 0.2 * ln(2000) = 1.52 for c = 0.2 and epsilon = 1e-4.
    """
    ref = np.asarray(reference_counts, dtype="float64")
    cur = np.asarray(current_counts, dtype="float64")
    if ref.shape != cur.shape:
        raise ValueError(f"psi: bins differ ({ref.shape} vs {cur.shape})")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("psi: both histograms need at least one count")
    r = np.maximum(ref / ref.sum(), epsilon)
    c = np.maximum(cur / cur.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_noise(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Expected PSI of two samples of one distribution: (bins - 1) * (1/n_reference + 1/n_current).

    For small differences PSI is about the chi-squared statistic divided by the effective sample
    size, so with no change it averages (bins - 1)(1/n + 1/m) over the bins holding any value:
    0.021 for 10 bins, 500 current and 3,000 reference rows, 0.0006 for 50,000 and 20,000. Without
    this a floor of 0.03 is mostly noise on small windows and nothing but signal on large ones.
    """
    ref = np.asarray(reference_counts, dtype="float64")
    cur = np.asarray(current_counts, dtype="float64")
    bins = int(np.count_nonzero(ref + cur))
    if bins < 2 or ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    return float((bins - 1) * (1 / ref.sum() + 1 / cur.sum()))


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Return the inner bin edges at the reference's 1/bins ... (bins-1)/bins quantiles, deduplicated.

    Ties (integer features) merge bins rather than create empty ones.
    """
    if reference.size == 0:
        return np.array([], dtype="float64")
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def binned_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Count values per bin (value == edge goes up), plus a last bin for NaN."""
    present = ~np.isnan(values)
    index = np.searchsorted(inner_edges, values[present], side="right")
    counts = np.bincount(index, minlength=inner_edges.size + 1)
    return np.append(counts, int((~present).sum()))


# --- tests -------------------------------------------------------------------------------------


def level_counts(
    reference: pd.Series, current: pd.Series
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Count each level on both sides: the reference's levels first, then unseen ones, then nulls."""
    ref, cur = _counts(reference), _counts(current)
    levels = [lv for lv in ref.index if lv != MISSING]
    levels += sorted(lv for lv in cur.index if lv not in ref.index and lv != MISSING)
    if MISSING in ref.index or MISSING in cur.index:
        levels.append(MISSING)
    return (
        levels,
        ref.reindex(levels, fill_value=0).to_numpy(dtype="int64"),
        cur.reindex(levels, fill_value=0).to_numpy(dtype="int64"),
    )


def _counts(values: pd.Series) -> pd.Series:
    # Count first, then name the few distinct values: naming a million rows one by one is slow.
    counts = values.value_counts(dropna=False, sort=False)
    named: dict[str, int] = {}
    for value, n in zip(counts.index, counts.to_numpy(), strict=True):
        name = MISSING if pd.isna(value) else _level_name(value)
        named[name] = named.get(name, 0) + int(n)  # 1 and 1.0 are one level
    return pd.Series(named, dtype="int64")


def _level_name(value: object) -> str:
    # Boolean features arrive as 0.0 / 1.0 floats; show them as 0 / 1.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def chi2_test(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of homogeneity on a 2 x k table; levels empty on both sides are dropped."""
    table = np.vstack([reference_counts, current_counts]).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0  # one level on both sides: nothing can differ
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test on the non-null values."""
    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def compare_numeric(
    name: str, reference: pd.Series, current: pd.Series, cfg: Drift, kind: str = "numeric"
) -> FeatureDrift:
    """KS test and PSI on quantile bins for one numeric column (also used for the score)."""
    ref = reference.to_numpy(dtype="float64", na_value=np.nan)
    cur = current.to_numpy(dtype="float64", na_value=np.nan)
    ref_present, cur_present = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    base: dict[str, Any] = {
        "name": name,
        "type": kind,
        "test": "ks",
        "n_reference": int(ref_present.size),
        "n_current": int(cur_present.size),
        "null_share_reference": _share_null(ref),
        "null_share_current": _share_null(cur),
    }
    if min(ref_present.size, cur_present.size) < cfg.min_samples:
        return FeatureDrift(
            statistic=None, p_value=None, psi=None, status="not enough data", **base
        )
    statistic, p_value = ks_test(ref_present, cur_present)
    edges = quantile_edges(ref_present, cfg.psi_bins)
    ref_counts, cur_counts = binned_counts(ref, edges), binned_counts(cur, edges)
    return FeatureDrift(
        statistic=statistic,
        p_value=p_value,
        psi=psi(ref_counts, cur_counts, cfg.psi_epsilon),
        psi_noise=psi_noise(ref_counts, cur_counts),
        **base,
    )


def compare_levels(
    name: str, kind: FeatureType, reference: pd.Series, current: pd.Series, cfg: Drift
) -> FeatureDrift:
    """Chi-squared test and PSI on levels for one categorical or boolean column."""
    levels, ref_counts, cur_counts = level_counts(reference, current)
    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    unseen = [lv for lv, r in zip(levels, ref_counts, strict=True) if r == 0 and lv != MISSING]
    base: dict[str, Any] = {
        "name": name,
        "type": kind.value,
        "test": "chi2",
        "n_reference": n_ref,
        "n_current": n_cur,
        "null_share_reference": float(reference.isna().mean()) if len(reference) else 0.0,
        "null_share_current": float(current.isna().mean()) if len(current) else 0.0,
        "unseen": unseen,
    }
    if min(n_ref, n_cur) < cfg.min_samples:
        return FeatureDrift(
            statistic=None, p_value=None, psi=None, status="not enough data", **base
        )
    statistic, p_value = chi2_test(ref_counts, cur_counts)
    return FeatureDrift(
        statistic=statistic,
        p_value=p_value,
        psi=psi(ref_counts, cur_counts, cfg.psi_epsilon),
        psi_noise=psi_noise(ref_counts, cur_counts),
        **base,
    )


def compare_text(
    name: str, reference: pd.Series, current: pd.Series, cfg: Drift
) -> list[FeatureDrift]:
    """Two comparisons for one text column: its length in characters, and its vocabulary.

    The length is tested like a number (KS, PSI on quantile bins). The vocabulary test is a
    chi-squared on the token counts over the `text_top_terms` most frequent tokens (of both sides),
    with every other token pooled in one bin. Tokens of one document are not independent draws
    (a review that says "coffee" says it again), so the raw statistic runs high with no change;
    it is divided by its over-dispersion measured between random halves of the reference
    (a first-order Rao-Scott correction, `vocabulary_dispersion`), and so is the PSI's noise
    floor. Beside it, the share of current tokens the reference never had.
    """
    lengths = compare_numeric(
        f"{name}: length",
        reference.astype(str).str.len().where(reference.notna()),
        current.astype(str).str.len().where(current.notna()),
        cfg,
        "text length",
    )
    ref_tokens, cur_tokens = tokens(reference), tokens(current)
    ref_all = ref_tokens.value_counts()
    # Terms picked from both sides: picked from the reference alone, they are the ones the
    # reference happened to over-use, and the test would find that "drift" in any window.
    top = token_counts(pd.concat([reference, current])).index[: cfg.text_top_terms].tolist()
    ref_matrix = term_matrix(ref_tokens, top, len(reference))
    ref_counts, cur_counts = ref_matrix.sum(axis=0), term_matrix(cur_tokens, top, 0).sum(axis=0)
    unseen = cur_tokens[~cur_tokens.isin(ref_all.index)].value_counts()
    n_cur = int(cur_counts.sum())
    base: dict[str, Any] = {
        "name": f"{name}: vocabulary",
        "type": "text vocabulary",
        "test": "chi2",
        "n_reference": int(ref_counts.sum()),
        "n_current": n_cur,
        "null_share_reference": lengths.null_share_reference,
        "null_share_current": lengths.null_share_current,
        "unseen": [str(t) for t in unseen.index[:10]],
        "unseen_share": float(unseen.sum() / n_cur) if n_cur else None,
    }
    # The sample sizes that decide are the documents', not the tokens'.
    if min(lengths.n_reference, lengths.n_current) < cfg.min_samples or not n_cur:
        return [
            lengths,
            FeatureDrift(statistic=None, p_value=None, psi=None, status="not enough data", **base),
        ]
    dispersion = vocabulary_dispersion(ref_matrix)
    raw, _ = chi2_test(ref_counts, cur_counts)
    df = int(np.count_nonzero(ref_counts + cur_counts)) - 1
    statistic = raw / dispersion
    vocabulary = FeatureDrift(
        statistic=statistic,
        p_value=float(stats.chi2.sf(statistic, df)) if df > 0 else 1.0,
        psi=psi(ref_counts, cur_counts, cfg.psi_epsilon),
        psi_noise=psi_noise(ref_counts, cur_counts) * dispersion,
        **base,
    )
    return [lengths, vocabulary]


def term_matrix(found: pd.Series, top: list[str], n_documents: int) -> np.ndarray:
    """Per document, how often it has each of the `top` terms, and other tokens (last column)."""
    code = pd.Categorical(found.to_numpy(dtype=object), categories=top).codes.astype("int64")
    code[code < 0] = len(top)
    rows = found.index.to_numpy(dtype="int64")
    out = np.zeros((max(n_documents, int(rows.max()) + 1 if rows.size else 0), len(top) + 1))
    np.add.at(out, (rows, code), 1)
    return out.astype("int64")


def vocabulary_dispersion(matrix: np.ndarray, rounds: int = 20, seed: int = 0) -> float:
    """How far token counts spread beyond a multinomial's: chi-squared / df between halves.

    Splits the reference's documents into random halves `rounds` times (seeded) and averages
    the chi-squared statistic over its degrees of freedom, which is 1 for independent tokens;
    never below 1, so the correction only ever makes the test more cautious.
    """
    rng = np.random.default_rng(seed)
    n = matrix.shape[0]
    ratios = []
    for _ in range(rounds):
        half = rng.permutation(n) < n // 2
        first, second = matrix[half].sum(axis=0), matrix[~half].sum(axis=0)
        df = int(np.count_nonzero(first + second)) - 1
        if df > 0 and first.sum() and second.sum():
            ratios.append(chi2_test(first, second)[0] / df)
    return max(1.0, float(np.mean(ratios))) if ratios else 1.0


def _share_null(values: np.ndarray) -> float:
    return float(np.isnan(values).mean()) if values.size else 0.0


def benjamini_hochberg(p_values: list[float | None]) -> list[float | None]:
    """Adjust p-values with Benjamini-Hochberg; None (not tested) stays None and is not counted."""
    tested = [p for p in p_values if p is not None]
    if not tested:
        return [None] * len(p_values)
    adjusted = iter(stats.false_discovery_control(np.array(tested), method="bh").tolist())
    return [None if p is None else float(next(adjusted)) for p in p_values]


def _decide(result: FeatureDrift, q_value: float | None, cfg: Drift) -> FeatureDrift:
    if result.status == "not enough data" or q_value is None or result.psi is None:
        return result
    drifted = (
        q_value < cfg.fdr_alpha and result.psi - (result.psi_noise or 0.0) >= cfg.psi_threshold
    )
    return replace(result, q_value=q_value, status="drift" if drifted else "ok")


# --- performance -------------------------------------------------------------------------------


def live_metric(
    name: str, labels: np.ndarray, scores: np.ndarray, threshold: float
) -> float | None:
    """Compute one METRICS name on labelled rows; None where it is undefined (e.g. one class only)."""
    if name in {"roc_auc", "pr_auc", "log_loss"} and len(np.unique(labels)) < 2:
        return None
    return metric_value(name, labels, scores, threshold)


def live_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float | None,
    target: Target | None = None,
) -> dict[str, float]:
    """Compute every metric of the task that is defined on these labelled rows.

    Through the vector forms on one row (equal to the scalar ones, tests/core/test_metrics.py):
    sklearn's argument checks cost 0.2 s a window for the eight metrics. A multiclass window's
    `scores` are the one-hot predicted classes (the log keeps the label, not every probability), so
    its log loss is left out.
    """
    names = METRICS if target is None else target.metrics
    if target is not None and target.type is TaskType.multiclass:
        names = tuple(n for n in names if n != "log_loss")
    y, p = labels[None, :].astype("float64"), scores[None, ...].astype("float64")
    values = {name: float(vector_metric(name, y, p, threshold)[0]) for name in names}
    return {name: v for name, v in values.items() if not math.isnan(v)}


def _labelled_scores(
    labelled: pd.DataFrame, target: Target | None
) -> tuple[np.ndarray, np.ndarray]:
    """True labels and the scores to measure them with, per task (a multiclass: one-hot classes)."""
    if target is not None and target.type is TaskType.multiclass:
        index = {c: i for i, c in enumerate(target.classes)}
        predicted = np.array([index.get(str(v), -1) for v in labelled[REFERENCE_PREDICTED]])
        keep = predicted >= 0
        one_hot = np.eye(len(target.classes))[predicted[keep]]
        return labelled[REFERENCE_LABEL].to_numpy(dtype="int64")[keep], one_hot
    kind = "float64" if target is not None and target.type is TaskType.regression else "int64"
    return (
        labelled[REFERENCE_LABEL].to_numpy(dtype=kind),
        labelled[REFERENCE_SCORE].to_numpy(dtype="float64"),
    )


def auc_standard_error(labels: np.ndarray, scores: np.ndarray) -> float:
    """Standard error of the ROC AUC by DeLong's method (placement values from mid-ranks)."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = positives.size, negatives.size
    if m < 2 or n < 2:
        return math.inf
    ranks = stats.rankdata(np.concatenate([positives, negatives]))
    # For a positive: the share of negatives it outscores (ties count half); for a negative: the
    # share of positives that outscore it.
    v10 = (ranks[:m] - stats.rankdata(positives)) / n
    v01 = 1.0 - (ranks[m:] - stats.rankdata(negatives)) / m
    return float(math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))


def compare_performance(
    current: pd.DataFrame,
    threshold: float | None,
    training_metrics: dict[str, float],
    cfg: Drift,
    target: Target | None = None,
) -> PerformanceDrift | None:
    """Compare the configured live metric with training, when enough feedback exists.

    The p-value is one-sided (is the live metric worse than training?), from the standard error
    of the live metric (DeLong for roc_auc, a seeded bootstrap for the others); it joins the features' Benjamini-Hochberg family so the
    verdict's false-alarm rate stays at fdr_alpha when feedback exists too.
    """
    scored = (
        REFERENCE_PREDICTED
        if target is not None and target.type is TaskType.multiclass
        else REFERENCE_SCORE
    )
    if REFERENCE_LABEL not in current.columns or scored not in current.columns:
        return None
    labelled = current[current[REFERENCE_LABEL].notna() & current[scored].notna()]
    n = len(labelled)
    if n == 0:
        return None
    metric = cfg.performance_metric
    training = training_metrics.get(metric)
    if n < cfg.min_feedback:
        return PerformanceDrift(metric, training, None, None, n, {}, "not enough data")
    labels, scores = _labelled_scores(labelled, target)
    values = live_metrics(labels, scores, threshold, target)
    live = values.get(metric)
    if live is None or training is None:
        return PerformanceDrift(metric, training, live, None, n, values, "not enough data")
    # Drop is positive when the live metric is worse, whichever direction is better.
    drop = improvement(metric, float(training), live)
    se = (
        auc_standard_error(labels, scores)
        if metric == "roc_auc"
        else bootstrap_standard_error(metric, labels, scores, threshold)
    )
    p_value = drop_p_value(drop, se)
    return PerformanceDrift(
        metric, float(training), live, float(drop), n, values, "ok", se, p_value
    )


def _decide_performance(
    result: PerformanceDrift | None, q_value: float | None, cfg: Drift
) -> PerformanceDrift | None:
    if result is None or result.drop is None or q_value is None:
        return result
    drifted = q_value < cfg.fdr_alpha and result.drop > cfg.max_metric_drop
    return replace(result, q_value=q_value, status="drift" if drifted else "ok")


# --- the whole comparison ----------------------------------------------------------------------


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    contract: Contract,
    cfg: Drift,
    *,
    threshold: float | None = 0.5,
    training_metrics: dict[str, float] | None = None,
    invalid_share: dict[str, float] | None = None,
) -> DriftResult:
    """Compare every contract feature, the score and live metrics, and give one verdict.

    `reference` and `current` hold the contract's features in pipeline dtypes (core.frames) and
    `__score__`; `current` may hold `__label__` (0/1, NaN when no feedback). `invalid_share` is the
    per-column share of rows failing validation, as `validate_features` returns it.
    """
    n_ref, n_cur = len(reference), len(current)
    invalid_columns = _invalid_columns(invalid_share, cfg)
    features: list[FeatureDrift] = []
    score: FeatureDrift | None = None
    performance: PerformanceDrift | None = None
    estimate: PerformanceEstimate | None = None
    if n_cur < cfg.min_samples or n_ref < cfg.min_samples:
        verdict: Verdict = "not enough data"
        reasons = [
            f"{n_cur} current and {n_ref} reference rows; at least {cfg.min_samples} "
            "of each are needed (drift.min_samples)"
        ]
    else:
        features, score, performance, estimate = _compare_all(
            reference, current, contract, cfg, threshold, training_metrics or {}
        )
        reasons = _reasons(features, score, performance, invalid_columns, cfg)
        reasons += _estimate_reasons(estimate, cfg)
        verdict, reasons = _verdict(reasons, [*features, *([score] if score else [])], cfg)
    return DriftResult(
        verdict=verdict,
        reasons=reasons,
        n_reference=n_ref,
        n_current=n_cur,
        features=features,
        score=score,
        performance=performance,
        invalid_share=invalid_share,
        invalid_columns=invalid_columns,
        settings=cfg.model_dump(mode="json"),
        estimate=estimate,
    )


def _compare_all(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    contract: Contract,
    cfg: Drift,
    threshold: float | None,
    training_metrics: dict[str, float],
) -> tuple[
    list[FeatureDrift], FeatureDrift | None, PerformanceDrift | None, PerformanceEstimate | None
]:
    """Test the features, the predictions, the live and the estimated metric; decide on one BH family.

    Prediction drift per task: the KS test on the scores (a binary probability, a regression's
    value), or for a multiclass model the chi-squared test of its predicted class shares.
    """
    target = contract.target
    raw = [r for f in contract.features for r in _compare_feature(f, reference, current, cfg)]
    n_features = len(raw)
    by_class = target.type is TaskType.multiclass
    column = REFERENCE_PREDICTED if by_class else REFERENCE_SCORE
    has_score = column in reference.columns and column in current.columns
    if has_score and by_class:
        raw.append(
            compare_levels(
                "predicted class",
                FeatureType.categorical,
                reference[column].astype(object),
                current[column].astype(object),
                cfg,
            )
        )
    elif has_score:
        raw.append(
            compare_numeric("prediction score", reference[column], current[column], cfg, SCORE)
        )
    measured = compare_performance(current, threshold, training_metrics, cfg, target)
    # The estimate before labels needs calibrated binary probabilities (CBPE); other tasks say so.
    estimated: PerformanceEstimate | None = None
    if has_score and target.type is not TaskType.binary:
        estimated = not_estimated(cfg.performance_metric, target.type)
    elif has_score and threshold is not None:
        estimated = _with_realised(
            estimate_performance(
                reference[REFERENCE_SCORE].to_numpy(dtype="float64"),
                current[REFERENCE_SCORE].to_numpy(dtype="float64"),
                threshold,
                training_metrics,
                cfg,
            ),
            measured,
        )
    q_values = benjamini_hochberg(
        [r.p_value for r in raw]
        + [measured.p_value if measured is not None else None]
        + [estimated.p_value if estimated is not None else None]
    )
    decided = [_decide(r, q, cfg) for r, q in zip(raw, q_values, strict=False)]
    performance = _decide_performance(measured, q_values[-2], cfg)
    estimate = decide_estimate(estimated, q_values[-1], cfg) if estimated is not None else None
    features = decided[:n_features]
    return features, decided[len(raw) - 1] if has_score else None, performance, estimate


def _with_realised(
    estimate: PerformanceEstimate, measured: PerformanceDrift | None
) -> PerformanceEstimate:
    """Put the live metric from feedback beside the estimate, when there is one."""
    if measured is None or measured.live is None:
        return estimate
    return replace(estimate, realised=measured.live)


def _compare_feature(
    feature: Feature, reference: pd.DataFrame, current: pd.DataFrame, cfg: Drift
) -> list[FeatureDrift]:
    """The comparisons of one feature: one test, or two for a text (length and vocabulary)."""
    name = feature.name
    if feature.type is FeatureType.numeric:
        return [compare_numeric(name, reference[name], current[name], cfg)]
    if feature.type is FeatureType.text:
        return compare_text(name, reference[name], current[name], cfg)
    return [compare_levels(name, feature.type, reference[name], current[name], cfg)]


def _reasons(
    features: list[FeatureDrift],
    score: FeatureDrift | None,
    performance: PerformanceDrift | None,
    invalid_columns: list[str],
    cfg: Drift,
) -> list[str]:
    """Say why the window counts as drift: each reason one line, none when nothing drifted."""
    reasons: list[str] = []
    drifted = [r.name for r in features if r.drifted]
    if len(drifted) >= cfg.min_drifted_features:
        reasons.append(f"{len(drifted)} feature(s) drifted: {', '.join(drifted)}")
    if score is not None and score.drifted:
        reasons.append(f"prediction scores drifted (PSI {score.psi:.3f})")
    if performance is not None and performance.status == "drift":
        reasons.append(
            f"live {performance.metric} {performance.live:.3f} vs training "
            f"{performance.training:.3f} (drop {performance.drop:.3f} > {cfg.max_metric_drop})"
        )
    if invalid_columns:
        reasons.append(
            f"rows failing validation above {cfg.max_invalid_share:.0%} in: {', '.join(invalid_columns)}"
        )
    return reasons


def _estimate_reasons(estimate: PerformanceEstimate | None, cfg: Drift) -> list[str]:
    """Say when the estimated metric (no labels needed) dropped: it counts as a realised drop does."""
    if estimate is None or estimate.status != "drift":
        return []
    return [
        f"estimated {estimate.metric} {estimate.estimated:.3f} vs {estimate.reference:.3f} on "
        f"the reference (estimated drop {estimate.drop:.3f} > {cfg.max_metric_drop}; "
        "from calibrated scores, before labels)"
    ]


def _verdict(
    reasons: list[str], compared: list[FeatureDrift], cfg: Drift
) -> tuple[Verdict, list[str]]:
    """Drift if there is a reason; else not enough data if nothing could be tested."""
    if reasons:
        return "drift", reasons
    if all(r.status == "not enough data" for r in compared):
        return "not enough data", [
            f"no feature has {cfg.min_samples} non-null values on both sides"
        ]
    return "no drift", reasons


def _invalid_columns(invalid_share: dict[str, float] | None, cfg: Drift) -> list[str]:
    if not invalid_share:
        return []
    return [
        c
        for c, share in invalid_share.items()
        if not math.isnan(share) and share > cfg.max_invalid_share
    ]
