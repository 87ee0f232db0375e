"""The live metric in PromQL: the gate's floors applied to the feedback the service counts.

The service counts every `/feedback` in `prediction_feedback_total{predicted, actual}` (the label
the prediction answered, the true one). With two classes that is a confusion matrix, so the
metrics a confusion matrix gives (accuracy, precision, recall, f1) are PromQL over it; the
score-based ones (roc_auc, pr_auc, log_loss, brier) are not, and no rule is made for them
(`make drift` computes them on the logged scores). Both the alerting rules (by namespace) and
the canary analysis (one track's pods) use these queries, each only once `drift.min_feedback`
labels have arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Config

FEEDBACK = "prediction_feedback_total"
LIVE_METRICS = ("accuracy", "precision", "recall", "f1")


@dataclass(frozen=True)
class Floor:
    """A gate rule the live metric can be held to: metric name and its minimum."""

    metric: str
    minimum: float


def floors(config: Config) -> list[Floor]:
    """The gate's `min` rules on metrics a confusion matrix gives."""
    return [
        Floor(rule.metric, rule.min)
        for rule in config.gate.rules
        if rule.metric in LIVE_METRICS and rule.min is not None
    ]


def _count(matchers: list[str], by: str, window: str, **labels: str) -> str:
    """Feedback counted in `window`, zero (not absent) where there was feedback but none of these."""
    inner = ",".join([*matchers, *(f'{k}="{v}"' for k, v in labels.items())])
    every = ",".join(matchers)
    return (
        f"(sum{by} (increase({FEEDBACK}{{{inner}}}[{window}]))"
        f" or 0 * sum{by} (increase({FEEDBACK}{{{every}}}[{window}])))"
    )


def total(matchers: list[str], by: str, window: str) -> str:
    """All feedback counted in `window`."""
    return f"sum{by} (increase({FEEDBACK}{{{','.join(matchers)}}}[{window}]))"


def query(config: Config, metric: str, matchers: list[str], window: str, by: str = "") -> str:
    """The live `metric` of the series `matchers` select, over `window` (grouped `by`)."""
    target = config.contract.target
    pos, neg = target.positive, target.negative

    def count(**labels: str) -> str:
        return _count(matchers, by, window, **labels)

    true_pos = count(predicted=pos, actual=pos)
    if metric == "recall":
        return f"{true_pos} / {count(actual=pos)}"
    if metric == "precision":
        return f"{true_pos} / {count(predicted=pos)}"
    if metric == "f1":
        return f"2 * {true_pos} / ({count(predicted=pos)} + {count(actual=pos)})"
    if metric == "accuracy":
        right = f"{true_pos} + {count(predicted=neg, actual=neg)}"
        return f"({right}) / {total(matchers, by, window)}"
    raise ValueError(f"{metric!r} is not one of {LIVE_METRICS}")
