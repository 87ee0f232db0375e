"""Evaluate a fitted model's scores per task: metrics, the decision threshold, slices, plots, a summary.

Scores are what `core.task.model_scores` gives: a binary model's positive-class probabilities
(the threshold is chosen on the validation part: binary only), a multiclass model's probability
matrix, a regression's predicted values.

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

from core.config import Config, Target, TaskType
from core.metrics import (
    all_metrics,
    calibration_error,
    class_recall_key,
    comparison_rows,
    metric_value,
)
from core.task import model_scores
from core.templates import render
from training.data import Dataset

ThresholdObjective = Literal["f1", "youden", "fixed"]
_EPS = 1e-15


@dataclass(frozen=True)
class Evaluation:
    """What evaluating a fitted model on the validation and test parts produced."""

    threshold: float | None  # binary only; None for the other tasks
    p_validation: np.ndarray
    p_test: np.ndarray
    metrics: dict[str, float]
    slices: list[dict[str, Any]]
    importance: pd.DataFrame
    plots: dict[str, bytes]


def evaluate_model(model: Any, ds: Dataset, config: Config) -> Evaluation:
    """Choose the threshold on the validation part (binary), then measure the model on the test part."""
    target = config.contract.target
    p_validation = model_scores(model, ds.validation.X, target)
    threshold = None
    if target.type is TaskType.binary:
        spec = config.model.threshold
        threshold = choose_threshold(ds.validation.y, p_validation, spec.objective, spec.fixed)
    p_test = model_scores(model, ds.test.X, target)
    importance = permutation_importance(
        model, ds.test.X, ds.test.y, seed=config.model.seed, target=target
    )
    slices = slice_metrics(ds.test.X, ds.test.y, p_test, threshold, config.model.slices, target)
    return Evaluation(
        threshold=threshold,
        p_validation=p_validation,
        p_test=p_test,
        metrics=all_metrics(ds.test.y, p_test, threshold, target),
        slices=slices,
        importance=importance,
        plots=task_plots(ds.test.y, p_test, threshold, importance, target),
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


# The metrics reported per slice, per task.
SLICE_METRICS: dict[TaskType, tuple[str, ...]] = {
    TaskType.binary: ("roc_auc", "recall", "precision"),
    TaskType.multiclass: ("accuracy", "macro_f1"),
    TaskType.regression: ("rmse", "mae"),
}


def slice_metrics(
    X: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    threshold: float | None,
    columns: list[str],
    target: Target | None = None,
) -> list[dict[str, Any]]:
    """Compute metrics per value of each slice column (missing values form their own slice)."""
    task = TaskType.binary if target is None else target.type
    rows: list[dict[str, Any]] = []
    for column in columns:
        values = X[column].astype(object).where(X[column].notna(), "(missing)").astype(str)
        for value in sorted(values.unique()):
            mask = (values == value).to_numpy()
            ys, ps = y[mask], p[mask]
            row: dict[str, Any] = {"slice": column, "value": value, "n_rows": int(mask.sum())}
            if task is TaskType.binary:
                row["positive_share"] = round(float(ys.mean()), 4)
            for name in SLICE_METRICS[task]:
                row[name] = round(metric_value(name, ys, ps, threshold), 4)
            rows.append(row)
    return rows


# What permutation importance scores by, per task (sklearn scorer names, higher is better).
IMPORTANCE_SCORING: dict[TaskType, tuple[str, str]] = {
    TaskType.binary: ("roc_auc", "drop in ROC AUC when shuffled"),
    TaskType.multiclass: ("neg_log_loss", "rise in log loss when shuffled"),
    TaskType.regression: ("r2", "drop in R² when shuffled"),
}


def permutation_importance(
    pipeline: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    repeats: int = 5,
    target: Target | None = None,
) -> pd.DataFrame:
    """Return the drop in the task's score (ROC AUC, -log loss, R²) when each feature is shuffled."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    scoring = IMPORTANCE_SCORING[TaskType.binary if target is None else target.type][0]
    result = sk_permutation_importance(
        pipeline, X, y, scoring=scoring, n_repeats=repeats, random_state=seed, n_jobs=1
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


def task_plots(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float | None,
    importance: pd.DataFrame | None,
    target: Target,
) -> dict[str, bytes]:
    """Draw the task's plots: binary curves; a confusion matrix; predicted vs actual and residuals."""
    if target.type is TaskType.binary:
        assert threshold is not None
        return plots(y, p, threshold, importance)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    if target.type is TaskType.multiclass:
        k = len(target.classes)
        cm = skm.confusion_matrix(y, np.argmax(p, axis=1), labels=list(range(k)))
        fig, ax = plt.subplots(figsize=(1.0 * k + 2.5, 1.0 * k + 2))
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="black")
        ax.set(
            xticks=range(k),
            yticks=range(k),
            xticklabels=target.classes,
            yticklabels=target.classes,
            xlabel="predicted",
            ylabel="actual",
            title="Confusion matrix (test)",
        )
        out["confusion_matrix.png"] = _png(fig)
    else:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.scatter(y, p, s=4, alpha=0.4)
        low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        ax.plot([low, high], [low, high], "--", color="grey", linewidth=0.8)
        ax.set(
            xlabel=f"actual {target.name}",
            ylabel="predicted",
            title=f"Predicted vs actual (R² {metric_value('r2', y, p, None):.3f})",
        )
        out["predicted_vs_actual.png"] = _png(fig)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.scatter(p, y - p, s=4, alpha=0.4)
        ax.axhline(0.0, linestyle="--", color="grey", linewidth=0.8)
        ax.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals (test)")
        out["residuals.png"] = _png(fig)
    if importance is not None and len(importance):
        top = importance.head(15).iloc[::-1]
        fig, ax = plt.subplots(figsize=(5.5, 0.3 * len(top) + 1.2))
        ax.barh(top["feature"], top["importance"], xerr=top["std"], color="tab:blue")
        ax.set(xlabel=IMPORTANCE_SCORING[target.type][1], title="Permutation importance (test)")
        out["permutation_importance.png"] = _png(fig)
    return out


def summary_markdown(
    metrics: dict[str, float],
    slices: list[dict[str, Any]],
    champion_metrics: dict[str, float] | None = None,
    title: str = "Challenger evaluation",
    baseline_metrics: dict[str, float] | None = None,
    target: Target | None = None,
) -> str:
    """Render metrics (beside the baseline's and champion's when given) and slices (templates/training_summary.md.j2)."""
    class_recall = []
    if target is not None and target.type is TaskType.multiclass:
        class_recall = [
            {"class": c, "recall": f"{metrics.get(class_recall_key(c), float('nan')):.4f}"}
            for c in target.classes
        ]
    return render(
        "training_summary.md.j2",
        title=title,
        metrics=metrics,
        task=None if target is None else target.type.value,
        rows=comparison_rows(metrics, champion_metrics, baseline_metrics),
        class_recall=class_recall,
        slices=slices,
    )
