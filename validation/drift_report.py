"""Render a drift result three ways: markdown (a PR body), HTML with plots, JSON with every number."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.cli import markdown_table
from core.columns import REFERENCE_SCORE
from core.config import Contract
from core.io import atomic_write_json, atomic_write_text
from validation.drift import DriftResult, FeatureDrift, level_counts

JSON_FILE = "report.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


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
                "statistic": _num(r.statistic),
                "p-value": _num(r.p_value),
                "q-value (BH)": _num(r.q_value),
                "PSI": _num(r.psi),
                "n ref / cur": f"{r.n_reference} / {r.n_current}",
                "null % ref / cur": f"{r.null_share_reference:.1%} / {r.null_share_current:.1%}",
                "status": {"drift": "**drift**", "ok": "ok"}.get(r.status, r.status),
                "unseen": ", ".join(r.unseen)[:60],
            }
        )
    return rows


def summary_lines(result: DriftResult, context: dict[str, Any]) -> list[str]:
    """The lines a reader needs first: verdict, why, and what was compared."""
    head = {"drift": "Drift detected", "no drift": "No drift", "not enough data": "Not enough data"}
    lines = [
        f"**{head[result.verdict]}**"
        + (": " + "; ".join(result.reasons) if result.reasons else ".")
    ]
    s = result.settings
    lines.append(
        f"Compared {result.n_current} current rows ({context.get('window', 'window')}) with "
        f"{result.n_reference} reference rows of model {context.get('model', '?')} "
        f"version {context.get('model_version', '?')}. A feature drifts when its Benjamini-Hochberg "
        f"q-value < {s['fdr_alpha']} and PSI ≥ {s['psi_threshold']}; fewer than "
        f"{s['min_samples']} values means not enough data."
    )
    return lines


def render_markdown(result: DriftResult, context: dict[str, Any]) -> str:
    """Render the report as GitHub markdown."""
    parts = ["## Drift report", "", *summary_lines(result, context), ""]
    if result.features:
        parts += ["### Features and prediction score", "", markdown_table(feature_rows(result)), ""]
    perf = result.performance
    if perf is not None:
        parts += [
            "### Live performance (rows with feedback)",
            "",
            markdown_table(
                [
                    {
                        "metric": perf.metric,
                        "training": _num(perf.training),
                        "live": _num(perf.live),
                        "drop": _num(perf.drop),
                        "labelled rows": perf.n_labelled,
                        "status": perf.status,
                    }
                ]
            ),
            "",
        ]
    else:
        parts += ["_No feedback labels in the window: live metrics not computed._", ""]
    if result.invalid_share is None:
        parts += ["_Validation of the window's rows was not run._", ""]
    else:
        failing = {c: v for c, v in result.invalid_share.items() if v > 0}
        parts += ["### Rows failing validation", ""]
        parts += (
            [
                markdown_table(
                    [
                        {
                            "column": c,
                            "share": f"{v:.2%}",
                            "over limit": c in result.invalid_columns,
                        }
                        for c, v in sorted(failing.items(), key=lambda kv: -kv[1])
                    ]
                ),
                "",
            ]
            if failing
            else ["None.", ""]
        )
    return "\n".join(parts)


def _figure_png(
    name: str, kind: str, reference: pd.Series, current: pd.Series, bins: int = 30
) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 2.6), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if kind in {"numeric", "score"}:
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
        column = REFERENCE_SCORE if r.type == "score" else r.name
        if column not in reference.columns or column not in current.columns:
            continue
        kind = "score" if r.type == "score" else kinds[r.name]
        out[r.name] = _figure_png(r.name, kind, reference[column], current[column])
    return out


def _ordered(result: DriftResult) -> list[FeatureDrift]:
    items = [*([result.score] if result.score else []), *result.features]
    return sorted(items, key=lambda r: (not r.drifted, -(r.psi or 0)))


def render_html(result: DriftResult, context: dict[str, Any], images: dict[str, bytes]) -> str:
    """Render a self-contained HTML page: summary, tables, and the plots inlined as base64 PNG."""
    esc = html.escape
    rows = feature_rows(result)
    table = ""
    if rows:
        head = "".join(f"<th>{esc(c)}</th>" for c in rows[0])
        body = "".join(
            "<tr class='{}'>".format("drift" if "drift**" in str(r["status"]) else "")
            + "".join(f"<td>{esc(str(v).replace('**', ''))}</td>" for v in r.values())
            + "</tr>"
            for r in rows
        )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    summary = "".join(
        f"<p>{esc(line.replace('**', ''))}</p>" for line in summary_lines(result, context)
    )
    perf = result.performance
    perf_html = (
        f"<h2>Live performance</h2><p>{esc(perf.metric)}: training {_num(perf.training)}, live "
        f"{_num(perf.live)} on {perf.n_labelled} labelled rows ({esc(perf.status)}).</p>"
        if perf
        else "<p>No feedback labels in the window: live metrics not computed.</p>"
    )
    figures = "".join(
        f"<figure><img alt='{esc(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode()}'/></figure>"
        for name, png in images.items()
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}"
        "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.2em .5em}"
        "tr.drift{background:#fde2e1}figure{display:inline-block;margin:.3em}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title>"
        f"<style>{style}</style></head><body><h1>Drift report</h1>{summary}{table}{perf_html}"
        f"<h2>Reference vs current</h2>{figures}</body></html>\n"
    )


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
