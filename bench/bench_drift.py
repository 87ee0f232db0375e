"""Drift check quality (false alarms, detection) and speed on 1,000,000 rows, on the default data.

Setup: the default data is shuffled (seed 0); 40 % fits the default model
(training/model.build_pipeline). Each trial then splits the other 60 % afresh into a reference of
REFERENCE rows (scored by the model, out of sample, as `build_reference` takes them) and a pool,
and draws a window of WINDOW rows from the pool:
- false alarms: the window as drawn (no drift): verdict "drift" in at most 5 % of the trials;
- detection: the window shifted by the `covariate`, `prior` or `concept` scenario
  (tools/scenarios.py, default strengths) and re-scored: verdict "drift" in at least 95 % of the
  trials. Every window carries its rows' labels as feedback (flipped in `concept`), so the live
  roc_auc test is part of every verdict, against the model's roc_auc on the reference rows.
A fresh split per trial makes the trials independent draws, so the rate estimates what the tests
promise (at most fdr_alpha under no drift); windows re-drawn from one fixed small pool would share
that pool's own sampling error and overstate the rate.
- speed: 1,000,000 current rows (pool rows resampled, with scores) against a reference, all
  features and the score, under 10 s, beside pandas reading the same rows from Parquet.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from core.cli import table
from core.columns import REFERENCE_LABEL, REFERENCE_SCORE
from core.config import Config, load_config
from core.data import read_table
from core.frames import feature_frame, target_vector
from tools.scenarios import generate
from validation.drift import DriftResult, detect_drift
from validation.profile import build_reference, contract_features

TRIALS = 200
WINDOW = 500
REFERENCE = 3000
BIG = 1_000_000
MAX_FALSE_ALARMS = 0.05
MIN_DETECTION = 0.95
MAX_SECONDS = 10.0


@dataclass(frozen=True)
class Setup:
    config: Config
    model: Any
    fitted_on: int
    rest: pd.DataFrame


def prepare(config: Config, seed: int = 0) -> Setup:
    """Shuffle the data and fit the default model on 40 % of it."""
    from training.model import build_pipeline

    frame = read_table(config.data_path).sample(frac=1, random_state=seed).reset_index(drop=True)
    cut = int(len(frame) * 0.4)
    fit = frame.iloc[:cut]
    model = build_pipeline(config).fit(
        feature_frame(fit, config.contract), target_vector(fit, config.contract)
    )
    return Setup(config, model, cut, frame.iloc[cut:].reset_index(drop=True))


def scored(setup: Setup, rows: pd.DataFrame) -> pd.DataFrame:
    """Features in pipeline dtypes plus the model's score, as the prediction log holds them."""
    features = feature_frame(rows, setup.config.contract)
    features[REFERENCE_SCORE] = setup.model.predict_proba(features)[:, 1]
    return features


def trial(setup: Setup, scenario: str, seed: int, size: int = WINDOW) -> DriftResult:
    """Split reference and pool afresh, draw a (maybe shifted) window with feedback, compare."""
    config = setup.config
    order = np.random.default_rng(seed).permutation(len(setup.rest))
    ref_rows = setup.rest.iloc[order[:REFERENCE]]
    pool = setup.rest.iloc[order[REFERENCE:]].reset_index(drop=True)
    ref_scores = scored(setup, ref_rows)[REFERENCE_SCORE].to_numpy()
    reference, _ = build_reference(ref_rows, ref_scores, config.contract, seed=seed)
    # The "training" metric: the model on the reference rows, as the bundle's test metric would be.
    labels = target_vector(ref_rows, config.contract)
    training = {"roc_auc": float(roc_auc_score(labels, ref_scores))}
    traffic = generate(pool, config.contract, scenario, size, seed)
    window = scored(setup, traffic.rows)
    if traffic.labels is not None:
        window[REFERENCE_LABEL] = traffic.labels.astype("float64")
    return detect_drift(reference, window, config.contract, config.drift, training_metrics=training)


def alarm_rate(setup: Setup, scenario: str, trials: int, size: int = WINDOW) -> float:
    """Share of trials whose verdict is drift."""
    return sum(trial(setup, scenario, i, size).drifted for i in range(trials)) / trials


def speed(setup: Setup, n: int) -> dict[str, float]:
    """Time pandas reading n rows from Parquet, and the drift check on them (dtypes + statistics)."""
    ref_rows = setup.rest.iloc[:REFERENCE]
    reference, _ = build_reference(
        ref_rows, scored(setup, ref_rows)[REFERENCE_SCORE], setup.config.contract
    )
    rng = np.random.default_rng(1)
    base = scored(setup, setup.rest).assign(
        **{c: setup.rest[c] for c in setup.config.contract.feature_names}
    )
    window = base.iloc[rng.integers(len(base), size=n)].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "window.parquet"
        window.to_parquet(path, index=False)
        started = time.perf_counter()
        back = pd.read_parquet(path)
        read = time.perf_counter() - started
    started = time.perf_counter()
    current = contract_features(back, setup.config.contract, "the benchmark window")
    current[REFERENCE_SCORE] = back[REFERENCE_SCORE]
    result = detect_drift(reference, current, setup.config.contract, setup.config.drift)
    check = time.perf_counter() - started
    if result.n_current != n:
        raise RuntimeError(f"compared {result.n_current} rows instead of {n}")
    return {"read": read, "check": check}


def main() -> int:
    config = load_config("config.yaml")
    started = time.perf_counter()
    setup = prepare(config)
    print(
        f"default data: model fitted on {setup.fitted_on} rows; per trial a fresh reference of "
        f"{REFERENCE} rows (out-of-sample scores) and a window of {WINDOW} rows from the other "
        f"{len(setup.rest) - REFERENCE}; {TRIALS} trials per scenario; drift settings "
        f"fdr_alpha={config.drift.fdr_alpha}, psi_threshold={config.drift.psi_threshold} "
        f"(setup {time.perf_counter() - started:.1f} s)"
    )
    rows: list[dict[str, object]] = []
    ok = True
    for scenario, limit in (
        ("none", MAX_FALSE_ALARMS),
        ("covariate", MIN_DETECTION),
        ("prior", MIN_DETECTION),
        ("concept", MIN_DETECTION),
    ):
        t = time.perf_counter()
        rate = alarm_rate(setup, scenario, TRIALS)
        passed = rate <= limit if scenario == "none" else rate >= limit
        ok &= passed
        rows.append(
            {
                "scenario": scenario,
                "trials": TRIALS,
                "rows ref / window": f"{REFERENCE} / {WINDOW}",
                "drift verdicts": f"{rate:.1%}",
                "criterion": f"{'≤' if scenario == 'none' else '≥'} {limit:.0%}",
                "result": "pass" if passed else "FAIL",
                "seconds": f"{time.perf_counter() - t:.1f}",
            }
        )
    print(table(rows))
    timing = speed(setup, BIG)
    fast = timing["check"] < MAX_SECONDS
    ok &= fast
    print(
        table(
            [
                {
                    "step": "pandas read_parquet (baseline)",
                    "rows": f"{BIG:,}",
                    "seconds": f"{timing['read']:.2f}",
                    "ratio": "1.00",
                },
                {
                    "step": "drift check: dtypes + all features + score",
                    "rows": f"{BIG:,}",
                    "seconds": f"{timing['check']:.2f}",
                    "ratio": f"{timing['check'] / timing['read']:.2f}",
                },
            ]
        )
    )
    print(
        f"drift check on {BIG:,} rows: {timing['check']:.2f} s "
        f"({'pass' if fast else 'FAIL'}: < {MAX_SECONDS:.0f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
