"""Evaluate predicted probabilities: metrics, the decision threshold, slices, plots, a summary.

Everything here is a function of in-memory arrays; nothing reads files or talks to MLflow. Plots
come back as PNG bytes so the caller decides where they go.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from core.config import Config
from core.metrics import (
    all_metrics,
    calibration_error,
    comparison_rows,
    metric_value,
)
from core.templates import render
from training.data import Dataset

ThresholdObjective = Literal["f1", "youden", "fixed"]
_EPS = 1e-15


@dataclass(frozen=True)
class Evaluation:
    """What evaluating a fitted model on the validation and test parts produced."""

    threshold: float
    p_validation: np.ndarray
    p_test: np.ndarray
    metrics: dict[str, float]
    slices: list[dict[str, Any]]
    importance: pd.DataFrame
    plots: dict[str, bytes]


def evaluate_model(model: Any, ds: Dataset, config: Config) -> Evaluation:
    """Choose the threshold on the validation part, then measure the model on the test part."""
    p_validation = model.predict_proba(ds.validation.X)[:, 1]
    spec = config.model.threshold
    threshold = choose_threshold(ds.validation.y, p_validation, spec.objective, spec.fixed)
    p_test = model.predict_proba(ds.test.X)[:, 1]
    importance = permutation_importance(model, ds.test.X, ds.test.y, seed=config.model.seed)
    return Evaluation(
        threshold=threshold,
        p_validation=p_validation,
        p_test=p_test,
        metrics=all_metrics(ds.test.y, p_test, threshold),
        slices=slice_metrics(ds.test.X, ds.test.y, p_test, threshold, config.model.slices),
        importance=importance,
        plots=plots(ds.test.y, p_test, threshold, importance),
    )


def choose_threshold(
    y: np.ndarray, p: np.ndarray, objective: ThresholdObjective, fixed: float | None = None
) -> float:
    """Pick the decision threshold on validation data: best F1, best Youden's J, or a fixed value."""
    if objective == "fixed":
        if fixed is None:
            raise ValueError("objective 'fixed' needs a value")
        return float(fixed)
    if objective == "youden":
        fpr, tpr, thresholds = skm.roc_curve(y, p)
        finite = np.isfinite(thresholds)
        best = int(np.argmax((tpr - fpr)[finite]))
        return float(np.clip(thresholds[finite][best], 0.0, 1.0))
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], _EPS)
    return float(thresholds[int(np.argmax(f1))])


def slice_metrics(
    X: pd.DataFrame, y: np.ndarray, p: np.ndarray, threshold: float, columns: list[str]
) -> list[dict[str, Any]]:
    """Compute metrics per value of each slice column (missing values form their own slice)."""
    rows: list[dict[str, Any]] = []
    for column in columns:
        values = X[column].astype(object).where(X[column].notna(), "(missing)").astype(str)
        for value in sorted(values.unique()):
            mask = (values == value).to_numpy()
            ys, ps = y[mask], p[mask]
            rows.append(
                {
                    "slice": column,
                    "value": value,
                    "n_rows": int(mask.sum()),
                    "positive_share": round(float(ys.mean()), 4),
                    "roc_auc": round(metric_value("roc_auc", ys, ps, threshold), 4),
                    "recall": round(metric_value("recall", ys, ps, threshold), 4),
                    "precision": round(metric_value("precision", ys, ps, threshold), 4),
                }
            )
    return rows


def permutation_importance(
    pipeline: Any, X: pd.DataFrame, y: np.ndarray, seed: int, repeats: int = 5
) -> pd.DataFrame:
    """Return the drop in ROC AUC when each contract feature is shuffled (mean and std)."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    result = sk_permutation_importance(
        pipeline, X, y, scoring="roc_auc", n_repeats=repeats, random_state=seed, n_jobs=1
    )
    table = pd.DataFrame(
        {
            "feature": X.columns,
            "importance": result["importances_mean"],
            "std": result["importances_std"],
        }
    )
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def plots(
    y: np.ndarray, p: np.ndarray, threshold: float, importance: pd.DataFrame | None = None
) -> dict[str, bytes]:
    """Draw ROC, PR, confusion matrix, calibration and permutation importance as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    out: dict[str, bytes] = {}
    fpr, tpr, _ = skm.roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"AUC {metric_value('roc_auc', y, p, threshold):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    out["roc.png"] = _png(fig)

    precision, recall, _ = skm.precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(recall, precision, label=f"AP {metric_value('pr_auc', y, p, threshold):.3f}")
    ax.axhline(float(y.mean()), linestyle="--", color="grey", linewidth=0.8, label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    ax.legend(loc="upper right")
    out["pr.png"] = _png(fig)

    cm = skm.confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["negative", "positive"],
        yticklabels=["negative", "positive"],
        xlabel="predicted",
        ylabel="actual",
        title=f"Confusion matrix @ {threshold:.3f}",
    )
    out["confusion_matrix.png"] = _png(fig)

    frac_pos, mean_pred = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(mean_pred, frac_pos, "o-", label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8, label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed positive share")
    ax.set_title(
        f"Calibration (Brier {metric_value('brier', y, p, threshold):.3f}, "
        f"error {calibration_error(y, p):.3f})"
    )
    ax.legend(loc="upper left")
    out["calibration.png"] = _png(fig)

    if importance is not None and len(importance):
        top = importance.head(15).iloc[::-1]
        fig, ax = plt.subplots(figsize=(5.5, 0.3 * len(top) + 1.2))
        ax.barh(top["feature"], top["importance"], xerr=top["std"], color="tab:blue")
        ax.set(xlabel="drop in ROC AUC when shuffled", title="Permutation importance (test)")
        out["permutation_importance.png"] = _png(fig)
    return out


def summary_markdown(
    metrics: dict[str, float],
    slices: list[dict[str, Any]],
    champion_metrics: dict[str, float] | None = None,
    title: str = "Challenger evaluation",
    baseline_metrics: dict[str, float] | None = None,
) -> str:
    """Render metrics (beside the baseline's and champion's when given) and slices (templates/training_summary.md.j2)."""
    return render(
        "training_summary.md.j2",
        title=title,
        metrics=metrics,
        rows=comparison_rows(metrics, champion_metrics, baseline_metrics),
        slices=slices,
    )
