"""Run Evidently's default data-drift preset on the windows bench_drift.py wrote (its own venv).

Usage: <evidently venv>/bin/python bench/peer_evidently.py MANIFEST.json OUT.json
Evidently pins pandas below 3, which our lock does not allow, so bench_drift.py runs this file in
build/bench-envs/evidently; it imports nothing of ours. For each pair of the manifest it runs
`Report([DataDriftPreset()])` and records the preset's dataset verdict (the share of drifted
columns reaches its drift_share, 0.5 by default), whether any column drifted, and the seconds.
The preset renders plotly widgets inside `run`; the verdicts are taken with that rendering
switched off (same numbers, checked on the timed pairs), and the pairs listed under "render" are
also timed with it on: the time a user of the default preset pays.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import column_statistics
from evidently.presets import DataDriftPreset
from evidently.presets import drift as preset_drift


def run(definition: DataDefinition, reference: pd.DataFrame, current: pd.DataFrame) -> Any:
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return snapshot.dict()["metrics"]


def verdict(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    count = next(m for m in metrics if m["metric_name"].startswith("DriftedColumnsCount"))
    drift_share = float(count["config"].get("drift_share", 0.5))
    drifted = []
    for m in metrics:
        config = m["config"]
        if not m["metric_name"].startswith("ValueDrift"):
            continue
        value, threshold = float(m["value"]), float(config["threshold"])
        # p-value methods drift below their threshold, distances at or above it.
        is_p_value = "p_value" in config["method"]
        if (value < threshold) if is_p_value else (value >= threshold):
            drifted.append(config["column"])
    share = float(count["value"]["share"])
    return {
        "dataset_drift": share >= drift_share,
        "any_column": bool(drifted),
        "drifted_share": share,
        "drifted": drifted,
    }


def main(manifest_path: str, out_path: str) -> int:
    manifest = json.loads(Path(manifest_path).read_text())
    definition = DataDefinition(
        numerical_columns=manifest["numerical"], categorical_columns=manifest["categorical"]
    )
    columns = manifest["numerical"] + manifest["categorical"]
    references: dict[str, pd.DataFrame] = {}
    out: dict[str, Any] = {"pairs": {}, "rendered_seconds": {}}
    plain_render = (
        column_statistics.ValueDriftCalculation._render,
        preset_drift.DataDriftPreset.render,
    )
    for pair in manifest["pairs"]:
        if pair["reference"] not in references:
            references[pair["reference"]] = pd.read_parquet(pair["reference"], columns=columns)
        reference = references[pair["reference"]]
        current = pd.read_parquet(pair["current"], columns=columns)
        if pair["id"] in manifest.get("render", []):
            started = time.perf_counter()
            rendered = run(definition, reference, current)
            out["rendered_seconds"][pair["id"]] = time.perf_counter() - started
        column_statistics.ValueDriftCalculation._render = lambda self, *a, **k: []
        preset_drift.DataDriftPreset.render = lambda self, *a, **k: []
        started = time.perf_counter()
        metrics = run(definition, reference, current)
        seconds = time.perf_counter() - started
        column_statistics.ValueDriftCalculation._render, preset_drift.DataDriftPreset.render = (
            plain_render
        )
        if pair["id"] in out["rendered_seconds"] and verdict(rendered) != verdict(metrics):
            raise RuntimeError(f"{pair['id']}: the verdict changed with rendering off")
        out["pairs"][pair["id"]] = {**verdict(metrics), "seconds": seconds}
    Path(out_path).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
