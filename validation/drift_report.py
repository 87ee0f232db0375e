"""Render a drift result three ways: markdown (a PR body), HTML with plots, JSON with every number."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.columns import REFERENCE_SCORE, SCORE
from core.config import Contract
from core.io import atomic_write_json, atomic_write_text
from core.templates import number, render
from validation.drift import DriftResult, FeatureDrift, level_counts

JSON_FILE = "report.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"


def feature_rows(result: DriftResult) -> list[dict[str, object]]:
    """One table row per feature and the score, drifted ones first."""
    items = [*result.features, *([result.score] if result.score else [])]
    order = {"drift": 0, "ok": 1, "not enough data": 2}
    rows: list[dict[str, object]] = []
    for r in sorted(items, key=lambda r: (order[r.status], -(r.psi or 0))):
        rows.append(
            {
                "feature": r.name,
                "type": r.type,
                "test": r.test,
                "statistic": number(r.statistic),
                "p-value": number(r.p_value),
                "q-value (BH)": number(r.q_value),
                "PSI": number(r.psi),
                "PSI with no change": number(r.psi_noise),
                "n ref / cur": f"{r.n_reference} / {r.n_current}",
                "null % ref / cur": f"{r.null_share_reference:.1%} / {r.null_share_current:.1%}",
                "status": {"drift": "**drift**", "ok": "ok"}.get(r.status, r.status),
                "unseen": ", ".join(r.unseen)[:60],
            }
        )
    return rows


def render_markdown(result: DriftResult, context: dict[str, Any]) -> str:
    """Render the report as GitHub markdown (templates/drift_report.md.j2)."""
    return render("drift_report.md.j2", **_values(result, context))


def _figure_png(
    name: str, kind: str, reference: pd.Series, current: pd.Series, bins: int = 30
) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 2.6), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if kind in {"numeric", SCORE}:
        ref = reference.dropna().to_numpy(dtype="float64")
        cur = current.dropna().to_numpy(dtype="float64")
        both = np.concatenate([ref, cur]) if ref.size + cur.size else np.array([0.0])
        lo, hi = np.quantile(both, [0.005, 0.995]) if both.size else (0.0, 1.0)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        ax.hist(
            ref,
            bins=edges.tolist(),
            density=True,
            histtype="stepfilled",
            alpha=0.45,
            label="reference",
        )
        ax.hist(
            cur, bins=edges.tolist(), density=True, histtype="step", linewidth=1.6, label="current"
        )
    else:
        levels, ref_counts, cur_counts = level_counts(reference, current)
        x = np.arange(len(levels))
        ax.bar(x - 0.2, ref_counts / max(ref_counts.sum(), 1), 0.4, label="reference")
        ax.bar(x + 0.2, cur_counts / max(cur_counts.sum(), 1), 0.4, label="current")
        ax.set_xticks(x, [lv[:14] for lv in levels], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("share")
    ax.set_title(name, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def plots(
    result: DriftResult, reference: pd.DataFrame, current: pd.DataFrame, contract: Contract
) -> dict[str, bytes]:
    """Draw reference vs current for every compared feature and the score, drifted ones first."""
    kinds = {f.name: f.type.value for f in contract.features}
    out: dict[str, bytes] = {}
    for r in _ordered(result):
        column = REFERENCE_SCORE if r.type == SCORE else r.name
        if column not in reference.columns or column not in current.columns:
            continue
        kind = SCORE if r.type == SCORE else kinds[r.name]
        out[r.name] = _figure_png(r.name, kind, reference[column], current[column])
    return out


def _ordered(result: DriftResult) -> list[FeatureDrift]:
    items = [*([result.score] if result.score else []), *result.features]
    return sorted(items, key=lambda r: (not r.drifted, -(r.psi or 0)))


def render_html(result: DriftResult, context: dict[str, Any], images: dict[str, bytes]) -> str:
    """Render a self-contained HTML page (templates/drift_report.html.j2), plots inlined."""
    figures = {name: base64.b64encode(png).decode() for name, png in images.items()}
    return render("drift_report.html.j2", figures=figures, **_values(result, context))


def _values(result: DriftResult, context: dict[str, Any]) -> dict[str, Any]:
    """Return what both renderings show: summary lines, table rows, columns failing validation."""
    failing = None
    if result.invalid_share is not None:
        failing = sorted(
            ((c, v) for c, v in result.invalid_share.items() if v > 0), key=lambda cv: -cv[1]
        )
    return {
        "result": result,
        "context": context,
        "summary": render("drift_summary.md.j2", result=result, context=context).rstrip("\n"),
        "feature_rows": feature_rows(result),
        "performance": result.performance,
        "estimate": result.estimate,
        "failing_validation": failing,
    }


def write_report(
    out_dir: Path,
    result: DriftResult,
    context: dict[str, Any],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    contract: Contract,
) -> dict[str, Path]:
    """Write report.json, report.md and report.html atomically into `out_dir`."""
    images = plots(result, reference, current, contract)
    markdown = render_markdown(result, context)
    page = render_html(result, context, images)
    payload = {"context": context, **result.to_dict()}
    return {
        "json": atomic_write_json(out_dir / JSON_FILE, payload),
        "markdown": atomic_write_text(out_dir / MARKDOWN_FILE, markdown + "\n"),
        "html": atomic_write_text(out_dir / HTML_FILE, page),
    }
