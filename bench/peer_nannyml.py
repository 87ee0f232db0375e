"""Run NannyML's CBPE on the windows bench_drift.py wrote (its own venv), beside our estimate.

Usage: <nannyml venv>/bin/python bench/peer_nannyml.py MANIFEST.json OUT.json
For each reference of the manifest it fits `nannyml.CBPE` (binary, its default calibration) on
the reference's scores, predictions and labels as one chunk, then estimates ROC AUC on each of
that reference's windows as one chunk (the labels are not given to it). Imports nothing of ours.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import nannyml as nml
import pandas as pd

SCORE, PREDICTION, LABEL = "score", "prediction", "label"


def main(manifest_path: str, out_path: str) -> int:
    warnings.filterwarnings("ignore")  # "too few chunks": one chunk per window is the point
    manifest = json.loads(Path(manifest_path).read_text())
    threshold = float(manifest["threshold"])
    fitted: dict[str, Any] = {}
    out: dict[str, Any] = {"pairs": {}}
    for pair in manifest["pairs"]:
        if pair["reference"] not in fitted:
            reference = pd.read_parquet(pair["reference"], columns=[SCORE, LABEL])
            reference[LABEL] = reference[LABEL].astype(int)  # a string column for Evidently
            reference[PREDICTION] = (reference[SCORE] >= threshold).astype(int)
            estimator = nml.CBPE(
                y_pred_proba=SCORE,
                y_pred=PREDICTION,
                y_true=LABEL,
                problem_type="classification_binary",
                metrics=["roc_auc"],
                chunk_number=1,
            )
            fitted[pair["reference"]] = estimator.fit(reference)
        current = pd.read_parquet(pair["current"], columns=[SCORE])
        current[PREDICTION] = (current[SCORE] >= threshold).astype(int)
        started = time.perf_counter()
        result = fitted[pair["reference"]].estimate(current).filter(period="analysis").to_df()
        out["pairs"][pair["id"]] = {
            "roc_auc": float(result[("roc_auc", "value")].iloc[0]),
            "seconds": time.perf_counter() - started,
        }
    Path(out_path).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
