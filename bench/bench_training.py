"""Time each training step on the default data, `make train` end to end, and two baselines.

Steps: load, fit, evaluate, gate (champion load + paired bootstrap), log, register, package.
Baselines run in the same command: `log_model` with requirements inferred by MLflow (what our
pinned requirements avoid) and the bootstrap as a loop over sklearn's roc_auc_score (what the
vectorised rank formula avoids). Target: `make train` under 20 s, imports included.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from core.cli import table
from core.config import load_config
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 20.0


def _settings(folder: Path) -> Settings:
    return Settings(
        MLFLOW_TRACKING_URI=f"sqlite:///{folder}/mlflow.db",
        MLFLOW_ARTIFACT_ROOT=folder / "artifacts",
        MODEL_BUNDLE=folder / "bundle",
        REPORTS_DIR=folder / "reports",
    )


def _make_train(folder: Path) -> tuple[float, float]:
    """Run `make train` in a fresh process; return wall seconds and CPU seconds (user + sys)."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(folder / "artifacts"),
        "REPORTS_DIR": str(folder / "reports"),
        "MODEL_BUNDLE": str(folder / "bundle"),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        ["make", "-s", "train"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"make train failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed, cpu


def _bootstrap_baseline(n_resamples: int) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    from core.config import Champion
    from training.gate import compare_with_champion

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1409)
    a, b = rng.random(1409) + 0.3 * y, rng.random(1409) + 0.25 * y
    started = time.perf_counter()
    compare_with_champion(
        y,
        a,
        b,
        threshold_challenger=0.5,
        threshold_champion=0.5,
        settings=Champion(bootstrap=n_resamples),
        seed=0,
    )
    ours = time.perf_counter() - started
    started = time.perf_counter()
    idx = rng.integers(0, len(y), size=(n_resamples, len(y)))
    [roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]) for i in idx]
    return ours, time.perf_counter() - started


def _log_model_baseline(folder: Path) -> tuple[float, float]:
    import mlflow
    import mlflow.sklearn

    from training import registry
    from training.data import load_dataset
    from training.model import fit

    config = load_config(ROOT / "config.yaml")
    registry.connect(_settings(folder))
    ds = load_dataset(config)
    pipeline = fit(config, ds)
    example = ds.test.X.head(5)
    exp = registry.ensure_experiment(mlflow.MlflowClient(), "bench-log-model", _settings(folder))
    with mlflow.start_run(experiment_id=exp), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        started = time.perf_counter()
        registry.log_model(pipeline, example)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        mlflow.sklearn.log_model(
            pipeline,
            name="inferred",
            serialization_format="skops",
            skops_trusted_types=registry.trusted_types(pipeline),
            input_example=example,
        )
        return ours, time.perf_counter() - started


def main() -> int:
    from mlflow import MlflowClient

    from orchestration.train import train_and_gate
    from training.package import package_candidate

    config = load_config(ROOT / "config.yaml")
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        folder = Path(tmp)
        cold = _make_train(folder / "e2e")
        warm = _make_train(folder / "e2e")
        result = json.loads((folder / "e2e" / "reports" / "training" / "result.json").read_text())
        in_make: dict[str, float] = result["timings"]

        settings = _settings(folder / "steps")
        first = train_and_gate(config, settings)
        uri = settings.mlflow_tracking_uri
        MlflowClient(uri, uri).set_registered_model_alias(
            config.mlflow.registered_model, "production", str(first.version)
        )
        second = train_and_gate(config, settings)  # gate now loads the champion and bootstraps
        started = time.perf_counter()
        package_candidate(config, settings)
        steps = {**second.timings, "package": time.perf_counter() - started}

        boot_ours, boot_loop = _bootstrap_baseline(config.gate.champion.bootstrap)
        log_ours, log_inferred = _log_model_baseline(folder / "baseline")

    rest = warm[0] - sum(in_make.values())
    in_make_rows: list[dict[str, object]] = [
        {"step": name, "seconds": f"{secs:.2f}", "share": f"{secs / warm[0]:.0%}"}
        for name, secs in {**in_make, "imports, process start": rest}.items()
    ]
    print("Steps inside `make train` (existing store, no champion yet), wall time:")
    print(table(in_make_rows))
    slowest_make = max(in_make, key=lambda k: in_make[k])
    print(
        f"slowest step: {slowest_make} ({in_make[slowest_make]:.2f} s); outside the steps: {rest:.2f} s"
    )
    print()
    rows: list[dict[str, object]] = [
        {"step": name, "seconds": f"{secs:.2f}", "share": f"{secs / sum(steps.values()):.0%}"}
        for name, secs in steps.items()
    ]
    print("Steps in process, warm imports, second run (champion loaded, paired bootstrap):")
    print(table(rows))
    slowest = max(steps, key=lambda k: steps[k])
    print(f"slowest step: {slowest} ({steps[slowest]:.2f} s)")
    print()
    # Wall time depends on what else runs on the cores; CPU time (user + sys) much less so.
    e2e: list[dict[str, object]] = [
        {
            "run": label,
            "wall s": f"{wall:.1f}",
            "cpu s": f"{cpu:.1f}",
            "target": f"< {TARGET_SECONDS:.0f} s",
            "wall ok": "yes" if wall < TARGET_SECONDS else "NO",
        }
        for label, (wall, cpu) in (
            ("make train, new SQLite store (migrations)", cold),
            ("make train, existing store", warm),
        )
    ]
    print(table(e2e))
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print()
    baselines: list[dict[str, object]] = [
        {
            "what": f"paired bootstrap, {config.gate.champion.bootstrap} resamples",
            "ours s": f"{boot_ours:.2f}",
            "baseline s": f"{boot_loop:.2f}",
            "baseline": "loop of sklearn roc_auc_score",
            "speed-up": f"{boot_loop / boot_ours:.1f}x",
        },
        {
            "what": "log_model",
            "ours s": f"{log_ours:.2f}",
            "baseline s": f"{log_inferred:.2f}",
            "baseline": "requirements inferred by MLflow",
            "speed-up": f"{log_inferred / log_ours:.1f}x",
        },
    ]
    print(table(baselines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
