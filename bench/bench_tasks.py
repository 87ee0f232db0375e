"""The shipped examples by task: training time, and our service vs `mlflow models serve`, in one run.

For each example config (examples/hpc: multiclass, examples/deliveries: regression,
examples/reviews: text, binary), on a temporary MLflow store (sqlite) of its own:

1. **train**: `python -m orchestration.train --config <example>` as a subprocess, the command
   `make train` runs (the same train, evaluate, gate and register; make itself is not called, so
   its `install` prerequisite cannot touch the environment). The wall time includes the
   interpreter's start and MLflow logging, as `make train` has them.
2. **package**: `python -m training.package --alias candidate` (what `make package` runs) writes the
   bundle from the version training registered.
3. **serve**: ours (`python -m serving.serve` on that bundle) and `mlflow models serve
   --env-manager local` on `models:/<name>@candidate` (the same fitted pipeline, as training logged
   it), each with WORKERS uvicorn workers, one after the other; wrk POSTs one record of the
   example's data (`core.frames.request_records`; MLflow's body: the same record in its
   `dataframe_split` form) at c=64 for req/s and c=8 for p50. MLflow's pyfunc answers `predict`
   (labels or values), ours the probabilities as well: ours does more per request, not less.

One table per run, with ratios ours / mlflow and the load average at start and end. The text
model's p50 against the tabular model's is bench_text.py's. BENCH_SERVING_SECONDS sets the wrk
duration per point (default 5 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.bench_serving import (
    DURATION_S,
    WORKERS,
    bytecode_env,
    compile_bytecode,
    mlflow_body,
    mlflow_server,
    ours_server,
    run_wrk,
    start_server,
    tree_rss_mb,
    write_lua,
)
from core.config import load_config
from core.data import read_table
from core.frames import request_records

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "hpc (multiclass)": ROOT / "examples" / "hpc" / "config.yaml",
    "deliveries (regression)": ROOT / "examples" / "deliveries" / "config.yaml",
    "reviews (text, binary)": ROOT / "examples" / "reviews" / "config.yaml",
}


def _run(step: str, args: list[str], env: dict[str, str], log: Path) -> float:
    """Run one pipeline step as a subprocess; return its wall seconds. Raises on failure."""
    started = time.perf_counter()
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        raise RuntimeError(f"{step} exited {done.returncode}: {log.read_text()[-2000:]}")
    return time.perf_counter() - started


def _example(config_path: Path, tmp: Path) -> dict[str, Any]:
    """Train, package and serve one example both ways; return its figures."""
    config = load_config(config_path)
    store = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(tmp / "artifacts"),
        "MODEL_BUNDLE": str(tmp / "bundle"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    # No bytecode written: the repository's own modules compile in every stage, as on the first run
    # after a change, so the stage times do not depend on what an earlier run left.
    env = {**os.environ, **store, "PYTHONDONTWRITEBYTECODE": "1"}
    log = tmp / "pipeline.log"
    train_s = _run("train", ["orchestration.train", "--config", str(config_path)], env, log)
    package_args = ["training.package", "--config", str(config_path), "--alias", "candidate"]
    package_s = _run("package", package_args, env, log)

    record = request_records(read_table(config.data_path).iloc[:1], config.contract)[0]
    bodies = {"ours": orjson.dumps(record), "mlflow": mlflow_body(record)}
    ours = ours_server(
        tmp / "bundle", config_path, tmp / "log.db", write_lua(bodies["ours"], tmp / "ours.lua")
    )
    model_uri = f"models:/{config.mlflow.registered_model}@candidate"
    lua = write_lua(bodies["mlflow"], tmp / "mlflow.lua")
    peer = mlflow_server(model_uri, store["MLFLOW_TRACKING_URI"], lua)
    figures: dict[str, Any] = {"train_s": train_s, "package_s": package_s}
    for name, cmd, server_env, ready, path, lua in (ours, peer):
        server = start_server(name, cmd, {**server_env, "AUTH": "off"}, ready, tmp)
        try:
            answer = httpx.post(
                server.url + path,
                content=bodies[name],
                headers={"Content-Type": "application/json"},
            )
            answer.raise_for_status()
            figures[name] = {
                "ready_s": server.ready_s,
                "answer": answer.text[:120],
                64: run_wrk(server.url + path, lua, 64),
                8: run_wrk(server.url + path, lua, 8),
                "rss_mb": tree_rss_mb(server.proc.pid),
            }
        finally:
            server.stop()
        res = figures[name]
        print(
            f"  {name}: c=64 {res[64].rps:,.0f} req/s, c=8 p50 {res[8].p50_ms:.2f} ms, "
            f"errors {res[64].errors + res[8].errors}; answers {res['answer']}",
            flush=True,
        )
    return figures


def main() -> int:
    """Run every example and print the table; 1 when a step fails or a server errs."""
    from core.cli import table

    if shutil.which("wrk") is None:
        print("wrk is not installed: this benchmark needs Debian's wrk (apt-get install -y wrk)")
        return 2
    print(
        f"compiling bytecode for the servers (PYTHONPYCACHEPREFIX in {bytecode_env()['PYTHONPYCACHEPREFIX']}) …",
        flush=True,
    )
    compile_bytecode()
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tasks-"))
    results: dict[str, dict[str, Any]] = {}
    failed = False
    try:
        for label, config_path in EXAMPLES.items():
            print(f"{label}: train, package, serve ({config_path.relative_to(ROOT)}) …", flush=True)
            folder = tmp / config_path.parent.name
            folder.mkdir()
            try:
                results[label] = _example(config_path, folder)
            except RuntimeError as exc:
                print(f"  {label} failed: {exc}", flush=True)
                failed = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_end = os.getloadavg()
    rows: list[dict[str, object]] = []
    for label, r in results.items():
        ours, ml = r["ours"], r["mlflow"]
        errors = sum(r[s][c].errors for s in ("ours", "mlflow") for c in (8, 64))
        failed |= errors > 0
        rows.append(
            {
                "example": label,
                "train s": f"{r['train_s']:.1f}",
                "package s": f"{r['package_s']:.1f}",
                "c=64 req/s ours": f"{ours[64].rps:,.0f}",
                "c=64 req/s mlflow": f"{ml[64].rps:,.0f}",
                "c=64 ours/mlflow": f"{ours[64].rps / max(ml[64].rps, 1e-9):.1f}x",
                "c=8 p50 ms ours": f"{ours[8].p50_ms:.2f}",
                "c=8 p50 ms mlflow": f"{ml[8].p50_ms:.1f}",
                "c=8 p50 ours/mlflow": f"1/{ml[8].p50_ms / ours[8].p50_ms:.0f}",
                "RSS MB ours/mlflow": f"{ours['rss_mb']:.0f}/{ml['rss_mb']:.0f}",
                "ready s ours/mlflow": f"{ours['ready_s']:.1f}/{ml['ready_s']:.1f}",
                "errors": errors,
            }
        )
    print(
        f"\nexamples: train = `python -m orchestration.train` (what `make train` runs) on a fresh "
        f"sqlite MLflow store; one-record POSTs, wrk 2 threads, {DURATION_S} s per point, "
        f"{WORKERS} uvicorn workers each; load average (1/5/15 min) at start "
        f"{'/'.join(f'{x:.2f}' for x in load_start)}, at end {'/'.join(f'{x:.2f}' for x in load_end)}"
    )
    print(table(rows))
    text = results.get("reviews (text, binary)")
    tabular = [r["ours"][8].p50_ms for k, r in results.items() if "text" not in k]
    if text is not None and tabular:
        # For context; the target (within 3x the root config's model) is bench_text.py's.
        print(
            f"text p50 / tabular p50 at c=8, ours: {text['ours'][8].p50_ms / max(tabular):.2f}x "
            f"to {text['ours'][8].p50_ms / min(tabular):.2f}x (hpc, deliveries)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
