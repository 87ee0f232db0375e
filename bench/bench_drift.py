"""Drift check quality beside Evidently at three window sizes, the estimate before labels, speed.

Setup: the config's data is shuffled (seed 0); 40 % fits the configured model
(training/model.build_pipeline). The other 60 %, scored by that model (out of sample), is the
population every reference and window is drawn from, with replacement, so under "none" both are
independent draws from one distribution and the false-alarm rate is what the tests promise.
References have the sizes a team keeps (3,000 rows beside windows of 500; 10,000 beside 5,000;
20,000, the most a bundle keeps, beside 50,000); one fresh reference per trial, shared by the
trial's scenarios. Every window carries its rows' labels as feedback.

Scenarios (columns chosen from the contract by type, with the trial's seed; never named):
- none: rows as drawn;
- small shift: one numeric feature tilted by 0.08 standard deviations, below the materiality floor
  (its population PSI is printed): should not alarm;
- covariate, one: one numeric feature tilted by 0.5 standard deviations;
- covariate, several: half the numeric features by 0.3 and one categorical level's share x1.5;
- prior: resampled to a positive share of one half (tools/scenarios.prior_shift);
- concept: features as drawn, 30 % of the labels flipped (only feedback can show it);
- gradual: one numeric feature tilted from 0 to 1.0 standard deviation across the window;
- covariate, mid scores: rows whose score is near the middle, weights exp(-2 z^2) of the
  standardised score: a selection on the features that hurts roc_auc (the others hardly move it),
  so the estimate's drop verdict is tested on real drops.
A tilt resamples real rows with weights exp(beta * z), beta solved so the feature's mean moves by
the given standard deviations: the rows keep their own labels, so P(label | features) holds and
the window is a true covariate shift (what the performance estimate assumes).

Our check: validation.drift.detect_drift with the config's drift settings. Evidently: its default
`DataDriftPreset` on the same windows (features, the score and the label as columns), run by
bench/peer_evidently.py in its own venv, build/bench-envs/evidently (evidently 0.7 pins pandas
below 3; the venv is created with `uv venv` + `uv pip install` from PyPI once, then reused), on
the first trials of each size (it takes seconds per window). Rates come with Wilson 95 % intervals
from the trial counts. The estimate before labels is measured on the covariate and gradual
windows: its error against the realised roc_auc, and how often its drop verdict (drop larger than
drift.max_metric_drop) agrees with the realised one; NannyML's CBPE beside it
(bench/peer_nannyml.py, build/bench-envs/nannyml). Deterministic by seed.

Speed: 1,000,000 current rows against a reference, all features and the score, under 10 s, beside
pandas reading the same rows from Parquet.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.cli import table
from core.columns import REFERENCE_LABEL, REFERENCE_SCORE
from core.config import Config, FeatureType, load_config
from core.data import read_table
from core.frames import feature_frame, target_vector
from core.metrics import CALIBRATION_ERROR, all_metrics, calibration_error, metric_value
from tools.scenarios import prior_shift
from validation.drift import binned_counts, detect_drift, psi, quantile_edges
from validation.profile import build_reference, contract_features

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "build" / "bench-envs"
PEERS: dict[str, tuple[str, ...]] = {
    "evidently": ("evidently==0.7.23", "pandas<3", "pyarrow"),
    "nannyml": ("nannyml==0.13.1", "statsmodels", "pyarrow"),
}
THRESHOLD = 0.5
BIG = 1_000_000
MAX_FALSE_ALARMS = 0.05
MIN_DETECTION = 0.95
MAX_SECONDS = 10.0
SMALL, ONE, SEVERAL, GRADUAL = 0.08, 0.5, 0.3, 1.0  # tilts, in standard deviations
LEVEL_FACTOR = 1.5
CONCEPT_FLIP = 0.3


@dataclass(frozen=True)
class Plan:
    """One window size: its reference size, our trials and the peers' (the first of ours)."""

    window: int
    reference: int
    trials: int
    peer_trials: int


# Trial counts keep this bench near ten minutes on 2 cores (549 s measured); the Wilson
# intervals in the table say what they can resolve.
PLANS = (Plan(500, 3_000, 200, 20), Plan(5_000, 10_000, 60, 8), Plan(50_000, 20_000, 20, 5))


@dataclass(frozen=True)
class Scenario:
    name: str
    material: bool  # should the check alarm?
    estimate: bool = False  # is the estimate measured on it?


SCENARIOS = (
    Scenario("none", False),
    Scenario("small shift", False, estimate=True),
    Scenario("covariate, one", True, estimate=True),
    Scenario("covariate, several", True, estimate=True),
    Scenario("prior", True),
    Scenario("concept", True),
    Scenario("gradual", True, estimate=True),
    Scenario("covariate, mid scores", True, estimate=True),
)


@dataclass(frozen=True)
class Population:
    """The held-out rows in pipeline dtypes with their scores, and their labels."""

    config: Config
    frame: pd.DataFrame
    labels: np.ndarray
    fitted_on: int
    z: dict[str, np.ndarray] = field(default_factory=dict)  # standardised numeric features


def prepare(config: Config, seed: int = 0) -> Population:
    """Shuffle the data, fit the configured model on 40 % and score the rest."""
    from training.model import build_pipeline

    data = read_table(config.data_path).sample(frac=1, random_state=seed).reset_index(drop=True)
    cut = int(len(data) * 0.4)
    fit, rest = data.iloc[:cut], data.iloc[cut:].reset_index(drop=True)
    model = build_pipeline(config).fit(
        feature_frame(fit, config.contract), target_vector(fit, config.contract)
    )
    frame = feature_frame(rest, config.contract)
    frame[REFERENCE_SCORE] = model.predict_proba(frame)[:, 1]
    z = {}
    for f in config.contract.of_type(FeatureType.numeric):
        values = frame[f.name].to_numpy(dtype="float64")
        spread = float(np.nanstd(values))
        z[f.name] = np.nan_to_num((values - np.nanmean(values)) / (spread or 1.0))
    labels = target_vector(rest, config.contract).astype("int64")
    return Population(config, frame, labels, cut, z)


# --- scenarios: weights over the population's rows ---------------------------------------------


def tilt(z: np.ndarray, shift: float) -> np.ndarray:
    """Weights exp(beta * z), beta solved (bisection) so the weighted mean of z moves by `shift`."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        beta = (lo + hi) / 2
        w = np.exp(beta * (z - z.max()))
        if float((w * z).sum() / w.sum()) - float(z.mean()) < shift:
            lo = beta
        else:
            hi = beta
    return np.exp(beta * (z - z.max()))


def level_tilt(column: pd.Series, factor: float) -> np.ndarray:
    """Weights that multiply the share of the column's rarest level by about `factor`."""
    counts = column.dropna().value_counts()
    share = counts.iloc[-1] / len(column)
    target = min(share * factor, 0.95)
    # With weight w on the level: w s / (w s + 1 - s) = target.
    w = target * (1 - share) / (share * (1 - target))
    return np.where(column.to_numpy(dtype=object) == counts.index[-1], w, 1.0)


def weights(pop: Population, scenario: str, rng: np.random.Generator) -> np.ndarray | None:
    """The sampling weights of a static scenario (None: uniform)."""
    numeric = sorted(pop.z)
    if scenario in {"small shift", "covariate, one"}:
        name = numeric[int(rng.integers(len(numeric)))]
        return tilt(pop.z[name], SMALL if scenario == "small shift" else ONE)
    if scenario == "covariate, several":
        k = max(1, math.ceil(len(numeric) / 2))
        w = np.ones(len(pop.frame))
        for i in rng.choice(len(numeric), size=k, replace=False):
            w *= tilt(pop.z[numeric[int(i)]], SEVERAL)
        levelled = pop.config.contract.of_type(FeatureType.categorical)
        if levelled:
            f = levelled[int(rng.integers(len(levelled)))]
            w *= level_tilt(pop.frame[f.name], LEVEL_FACTOR)
        return w
    return None


def draw(pop: Population, scenario: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a window of the scenario."""
    size = len(pop.frame)
    if scenario == "prior":
        return prior_shift(pd.DataFrame({"i": np.arange(size)}), pop.labels, n, rng)["i"].to_numpy()
    if scenario == "gradual":
        name = sorted(pop.z)[int(rng.integers(len(pop.z)))]
        parts = np.array_split(np.arange(n), 10)
        return np.concatenate(
            [
                _sample(rng, size, len(part), tilt(pop.z[name], GRADUAL * (k + 0.5) / 10))
                for k, part in enumerate(parts)
            ]
        )
    if scenario == "covariate, mid scores":
        score = pop.frame[REFERENCE_SCORE].to_numpy()
        z = (score - score.mean()) / score.std()
        return _sample(rng, size, n, np.exp(-2.0 * z * z))
    return _sample(rng, size, n, weights(pop, scenario, rng))


def _sample(rng: np.random.Generator, size: int, n: int, w: np.ndarray | None) -> np.ndarray:
    return rng.choice(size, size=n, replace=True, p=None if w is None else w / w.sum())


def scenario_psi(pop: Population, scenario: str, draws: int = 20) -> float:
    """Mean population PSI of the most shifted feature under a one-feature tilt scenario."""
    shift = {"small shift": SMALL, "covariate, one": ONE}[scenario]
    bins = pop.config.drift.psi_bins
    values = []
    for name in sorted(pop.z)[:draws]:
        x = pop.frame[name].to_numpy(dtype="float64")
        w = tilt(pop.z[name], shift)
        edges = quantile_edges(x[~np.isnan(x)], bins)
        index = np.searchsorted(edges, np.nan_to_num(x, nan=np.inf), side="right")
        base = binned_counts(x, edges)
        shifted = np.bincount(index, weights=w, minlength=edges.size + 2)[: edges.size + 2]
        values.append(psi(base, shifted, pop.config.drift.psi_epsilon))
    return float(np.mean(values))


# --- one trial -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    reference: pd.DataFrame
    reference_labels: np.ndarray
    training: dict[str, float]
    windows: dict[str, pd.DataFrame]


def make_trial(pop: Population, plan: Plan, index: int) -> Trial:
    """A fresh reference and one window per scenario, seeded by (window size, trial)."""
    rng = np.random.default_rng([plan.window, index])
    ref_rows = rng.choice(len(pop.frame), size=plan.reference, replace=True)
    reference = pop.frame.iloc[ref_rows].reset_index(drop=True)
    ref_labels, ref_scores = pop.labels[ref_rows], reference[REFERENCE_SCORE].to_numpy()
    # The bundle's test metrics and calibration error, as training records them.
    training = all_metrics(ref_labels, ref_scores, THRESHOLD)
    windows = {}
    for k, s in enumerate(SCENARIOS):
        rows = draw(pop, s.name, plan.window, np.random.default_rng([plan.window, index, k]))
        window = pop.frame.iloc[rows].reset_index(drop=True)
        labels = pop.labels[rows]
        if s.name == "concept":
            flip = np.random.default_rng([plan.window, index, k, 1]).random(labels.size)
            labels = np.where(flip < CONCEPT_FLIP, 1 - labels, labels)
        window[REFERENCE_LABEL] = labels.astype("float64")
        windows[s.name] = window
    return Trial(reference, ref_labels, training, windows)


@dataclass(frozen=True)
class Outcome:
    drifted: bool
    seconds: float
    estimated: float | None
    realised: float | None
    estimated_drop: bool | None
    realised_drop: bool


def ours(pop: Population, trial: Trial, scenario: str) -> Outcome:
    """Run our check on one window; keep the verdict, its time and the estimate."""
    window = trial.windows[scenario]
    cfg = pop.config.drift
    started = time.perf_counter()
    result = detect_drift(
        trial.reference,
        window,
        pop.config.contract,
        cfg,
        threshold=THRESHOLD,
        training_metrics=trial.training,
    )
    seconds = time.perf_counter() - started
    labels = window[REFERENCE_LABEL].to_numpy(dtype="int64")
    realised = metric_value(cfg.performance_metric, labels, window[REFERENCE_SCORE], THRESHOLD)
    e = result.estimate
    usable = e is not None and e.available and e.drop is not None
    return Outcome(
        drifted=result.drifted,
        seconds=seconds,
        estimated=e.estimated if usable and e is not None else None,
        realised=realised,
        estimated_drop=bool(e.drop > cfg.max_metric_drop)
        if usable and e and e.drop is not None
        else None,
        realised_drop=trial.training[cfg.performance_metric] - realised > cfg.max_metric_drop,
    )


def alarm_rate(pop: Population, scenario: str, trials: int, plan: Plan = PLANS[0]) -> float:
    """Share of trials whose verdict is drift (our check only): the fast test's handle."""
    return (
        sum(ours(pop, make_trial(pop, plan, i), scenario).drifted for i in range(trials)) / trials
    )


# --- peers in their own environments ---------------------------------------------------------


def uv() -> str | None:
    """The uv binary: on PATH, or the one the Makefile bootstraps into .tools/."""
    found = shutil.which("uv") or (ROOT / ".tools" / "bin" / "uv")
    return str(found) if Path(found).is_file() else None


def peer_python(name: str) -> tuple[Path | None, str]:
    """Create (once) and return the peer's venv interpreter, or None and why not."""
    env = ENVS / name
    python = env / "bin" / "python"
    wanted = " ".join(PEERS[name])
    marker = env / ".bench-requirements"
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python, "cached"
    tool = uv()
    if tool is None:
        return None, "uv not found (make .tools/bin/uv installs it)"
    started = time.perf_counter()
    steps = [
        [tool, "venv", "-q", "--python", "3.11", str(env)],
        [tool, "pip", "install", "-q", "--python", str(python), *PEERS[name]],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return None, f"{' '.join(cmd[:3])} failed: {done.stderr.strip().splitlines()[-1:]}"
    marker.write_text(wanted)
    return python, f"created in {time.perf_counter() - started:.0f} s"


def run_peer(name: str, manifest: dict[str, Any], folder: Path) -> tuple[dict[str, Any], str]:
    """Run bench/peer_<name>.py on the manifest in the peer's venv; return its output and a note."""
    python, how = peer_python(name)
    if python is None:
        return {}, f"{name} not run: {how}"
    (folder / f"{name}.json").write_text(json.dumps(manifest))
    out = folder / f"{name}-out.json"
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(python),
            str(ROOT / "bench" / f"peer_{name}.py"),
            str(folder / f"{name}.json"),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {}, f"{name} failed: {tail[0][:200]}"
    versions = PEERS[name][0]
    return json.loads(out.read_text()), (
        f"{versions} ({how} venv {ENVS / name}; {time.perf_counter() - started:.0f} s)"
    )


def peer_files(
    pop: Population, plan: Plan, trials: list[Trial], folder: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the peers' windows as Parquet; return the Evidently and NannyML manifests."""
    contract = pop.config.contract
    numerical = [f.name for f in contract.of_type(FeatureType.numeric)] + ["score"]
    categorical = [f.name for f in contract.features if f.type is not FeatureType.numeric] + [
        "label"
    ]
    evidently: dict[str, Any] = {"numerical": numerical, "categorical": categorical, "pairs": []}
    nannyml: dict[str, Any] = {"threshold": THRESHOLD, "pairs": []}
    for i, trial in enumerate(trials[: plan.peer_trials]):
        ref_path = folder / f"ref-{plan.window}-{i}.parquet"
        _peer_frame(trial.reference, trial.reference_labels).to_parquet(ref_path, index=False)
        for s in SCENARIOS:
            window = trial.windows[s.name]
            path = folder / f"win-{plan.window}-{i}-{s.name.replace(' ', '_')}.parquet"
            _peer_frame(window, window[REFERENCE_LABEL].to_numpy()).to_parquet(path, index=False)
            pair = {"id": f"{i}/{s.name}", "reference": str(ref_path), "current": str(path)}
            evidently["pairs"].append(pair)
            if s.estimate:
                nannyml["pairs"].append(pair)
    evidently["render"] = [f"0/{s.name}" for s in SCENARIOS[:2]]
    return evidently, nannyml


def _peer_frame(frame: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    out = frame.drop(columns=[REFERENCE_LABEL], errors="ignore").rename(
        columns={REFERENCE_SCORE: "score"}
    )
    out["label"] = np.asarray(labels).astype("int64").astype(str)
    return out


# --- tables -----------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95 % by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(flags: list[bool]) -> str:
    """A rate with its Wilson interval, e.g. '2.0 % [0.6, 7.0]'."""
    if not flags:
        return "-"
    k, n = sum(flags), len(flags)
    lo, hi = wilson(k, n)
    return f"{k / n:.1%} [{lo:.1%}, {hi:.1%}]"


def quality_rows(
    plan: Plan, outcomes: dict[str, list[Outcome]], peer: dict[str, Any]
) -> tuple[list[dict[str, object]], bool]:
    """One row per scenario: our rate and Evidently's, the criterion, pass or fail."""
    rows: list[dict[str, object]] = []
    ok = True
    for s in SCENARIOS:
        flags = [o.drifted for o in outcomes[s.name]]
        share = sum(flags) / len(flags)
        passed = share >= MIN_DETECTION if s.material else share <= MAX_FALSE_ALARMS
        ok &= passed
        theirs = [peer[f"{i}/{s.name}"] for i in range(plan.peer_trials) if f"{i}/{s.name}" in peer]
        rows.append(
            {
                "window / ref": f"{plan.window:,} / {plan.reference:,}",
                "scenario": s.name,
                "trials": f"{len(flags)} / {len(theirs)}",
                "ours: drift": rate(flags),
                "Evidently: dataset drift": rate([t["dataset_drift"] for t in theirs]),
                "Evidently: any column": rate([t["any_column"] for t in theirs]),
                "criterion (ours)": f"{'≥' if s.material else '≤'} {MIN_DETECTION if s.material else MAX_FALSE_ALARMS:.0%}",
                "result": "pass" if passed else "FAIL",
            }
        )
    return rows, ok


def estimate_row(
    plan: Plan, outcomes: dict[str, list[Outcome]], peer: dict[str, Any]
) -> dict[str, object]:
    """The estimate's error and drop-verdict agreement on the covariate and gradual windows."""
    ours_err: list[float] = []
    paired: list[tuple[float, float]] = []  # (our error, NannyML's) on the windows both ran
    agree: list[bool] = []
    drops = total = 0
    for s in SCENARIOS:
        if not s.estimate:
            continue
        for i, o in enumerate(outcomes[s.name]):
            total += 1
            if o.estimated is None or o.realised is None:
                continue
            ours_err.append(abs(o.estimated - o.realised))
            agree.append(o.estimated_drop == o.realised_drop)
            drops += o.realised_drop
            theirs = peer.get(f"{i}/{s.name}")
            if theirs is not None:
                paired.append((ours_err[-1], abs(float(theirs["roc_auc"]) - o.realised)))
    return {
        "window": f"{plan.window:,}",
        "windows estimated / all": f"{len(ours_err)} / {total}",
        "ours: MAE roc_auc": f"{np.mean(ours_err):.4f}" if ours_err else "-",
        "ours, NannyML's windows": f"{np.mean([a for a, _ in paired]):.4f}" if paired else "-",
        "NannyML CBPE: MAE": f"{np.mean([b for _, b in paired]):.4f}" if paired else "-",
        "drop verdict agrees": rate(agree),
        "realised drops": str(drops),
    }


def speed_rows(
    plan: Plan, outcomes: dict[str, list[Outcome]], peer: dict[str, Any], rendered: dict[str, float]
) -> dict[str, object]:
    mine = [o.seconds for runs in outcomes.values() for o in runs]
    theirs = [p["seconds"] for p in peer.values()]
    median = float(np.median(mine))
    row: dict[str, object] = {
        "window / ref": f"{plan.window:,} / {plan.reference:,}",
        "ours s/check (median)": f"{median:.3f}",
        "Evidently s/check (no widgets)": f"{np.median(theirs):.3f}" if theirs else "-",
        "Evidently s/check (default preset)": f"{np.median(list(rendered.values())):.3f}"
        if rendered
        else "-",
    }
    if theirs:
        row["ratio Evidently / ours"] = f"{np.median(theirs) / median:.1f}"
    return row


# --- speed on 1,000,000 rows -----------------------------------------------------------------


def speed(pop: Population, n: int) -> dict[str, float]:
    """Time pandas reading n rows from Parquet, and the drift check on them (dtypes + statistics)."""
    contract = pop.config.contract
    reference, _ = build_reference(
        pop.frame.iloc[:3000], pop.frame[REFERENCE_SCORE].iloc[:3000], contract
    )
    rng = np.random.default_rng(1)
    window = pop.frame.iloc[rng.integers(len(pop.frame), size=n)].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "window.parquet"
        window.to_parquet(path, index=False)
        started = time.perf_counter()
        back = pd.read_parquet(path)
        read = time.perf_counter() - started
    started = time.perf_counter()
    current = contract_features(back, contract, "the benchmark window")
    current[REFERENCE_SCORE] = back[REFERENCE_SCORE]
    calibration = calibration_error(pop.labels, pop.frame[REFERENCE_SCORE].to_numpy())
    result = detect_drift(
        reference,
        current,
        contract,
        pop.config.drift,
        training_metrics={CALIBRATION_ERROR: calibration},
    )
    check = time.perf_counter() - started
    if result.n_current != n:
        raise RuntimeError(f"compared {result.n_current} rows instead of {n}")
    return {"read": read, "check": check}


# --- the command ------------------------------------------------------------------------------


def run_plan(
    pop: Population, plan: Plan, folder: Path, notes: list[str]
) -> tuple[list[dict[str, object]], dict[str, object], dict[str, object], bool]:
    """All trials of one window size: ours on every one, the peers on the first few."""
    outcomes: dict[str, list[Outcome]] = {s.name: [] for s in SCENARIOS}
    peers: list[Trial] = []
    for i in range(plan.trials):
        trial = make_trial(pop, plan, i)
        for s in SCENARIOS:
            outcomes[s.name].append(ours(pop, trial, s.name))
        if i < plan.peer_trials:
            peers.append(trial)
    evidently_manifest, nannyml_manifest = peer_files(pop, plan, peers, folder)
    evidently, note = run_peer("evidently", evidently_manifest, folder)
    notes.append(f"{plan.window:,} rows: Evidently {note}")
    nannyml, note = run_peer("nannyml", nannyml_manifest, folder)
    notes.append(f"{plan.window:,} rows: NannyML {note}")
    rows, ok = quality_rows(plan, outcomes, evidently.get("pairs", {}))
    return (
        rows,
        speed_rows(
            plan, outcomes, evidently.get("pairs", {}), evidently.get("rendered_seconds", {})
        ),
        estimate_row(plan, outcomes, nannyml.get("pairs", {})),
        ok,
    )


def main() -> int:
    config = load_config(ROOT / "config.yaml")
    started = time.perf_counter()
    pop = prepare(config)
    cfg = config.drift
    print(
        f"{config.project}: model fitted on {pop.fitted_on} rows; population of {len(pop.frame)} "
        f"held-out rows (out-of-sample scores); drift settings fdr_alpha={cfg.fdr_alpha}, "
        f"psi_threshold={cfg.psi_threshold}, max_metric_drop={cfg.max_metric_drop}, "
        f"max_calibration_error={cfg.max_calibration_error}; calibration error of the scores "
        f"{calibration_error(pop.labels, pop.frame[REFERENCE_SCORE].to_numpy()):.3f} "
        f"(setup {time.perf_counter() - started:.1f} s)"
    )
    print(
        f"population PSI of the tilted feature (mean over numeric features): small shift "
        f"{scenario_psi(pop, 'small shift'):.4f}, covariate one {scenario_psi(pop, 'covariate, one'):.4f} "
        f"(floor drift.psi_threshold {cfg.psi_threshold})"
    )
    quality: list[dict[str, object]] = []
    speeds: list[dict[str, object]] = []
    estimates: list[dict[str, object]] = []
    notes: list[str] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        for plan in PLANS:
            t = time.perf_counter()
            rows, speed_row, estimate, passed = run_plan(pop, plan, Path(tmp), notes)
            quality += rows
            speeds.append(speed_row)
            estimates.append(estimate)
            ok &= passed
            print(
                f"  {plan.window:,}-row windows done in {time.perf_counter() - t:.0f} s", flush=True
            )
    print(table(quality))
    print(table(speeds))
    print(table(estimates))
    for note in notes:
        print(f"  {note}")
    timing = speed(pop, BIG)
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
                    "step": "drift check: dtypes + all features + score + estimate",
                    "rows": f"{BIG:,}",
                    "seconds": f"{timing['check']:.2f}",
                    "ratio": f"{timing['check'] / timing['read']:.2f}",
                },
            ]
        )
    )
    print(
        f"drift check on {BIG:,} rows: {timing['check']:.2f} s "
        f"({'pass' if fast else 'FAIL'}: < {MAX_SECONDS:.0f} s); load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
