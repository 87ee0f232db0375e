"""Text model vs tabular model: single-record latency of our service, in one run.

Fits the root config's model (tabular; it compiles to numpy as `make package` ships it) and the
text classifier of examples/reviews (TF-IDF of words and character n-grams and a logistic
regression; served from the skops model by its vectorisers and a numpy head,
serving/fallback.py), writes both bundles with their compiled form and probes as packaging does,
starts `python -m serving.serve` on each in turn (same workers, same machine) and loads each with
`wrk` POSTing one record (a median-length review for the text model) at concurrency 8. The
target: the text model's p50 within 3x the tabular one's. Also the in-process cost of one record
by each predictor, which is what the HTTP figure adds to.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.bench_serving import WORKERS, WrkResult, run_wrk, start_server, write_lua
from bench.bundles import bench_metadata, fit_bundle
from core.bundle import read_metadata
from core.config import load_config
from core.data import read_table
from core.frames import request_record

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"tabular": ROOT / "config.yaml", "text": ROOT / "examples" / "reviews" / "config.yaml"}
TARGET_RATIO = 3.0
CONCURRENCY = 8


def _bundle(name: str, config_path: Path, tmp: Path) -> tuple[Path, bytes, float]:
    """Fit and write one bundle; return it, one record's body, and its in-process ms per record."""
    from serving.predictor import load_predictor

    config = load_config(config_path)
    frame = read_table(config.data_path)
    meta = bench_metadata(config)
    bundle = fit_bundle(tmp / name, config, frame, meta)[0]
    # A typical record: the row whose text length (or first feature) is the median one.
    lengths = frame[config.contract.feature_names].astype(str).sum(axis=1).str.len()
    row = frame.loc[(lengths - lengths.median()).abs().idxmin()]
    record = request_record(row, config.contract)
    predictor = load_predictor(bundle, read_metadata(bundle), config.contract)[1]
    for _ in range(20):
        predictor([record])
    started = time.perf_counter()
    for _ in range(200):
        predictor([record])
    in_process_ms = (time.perf_counter() - started) / 200 * 1e3
    print(f"{name}: served by {predictor.mode}, {in_process_ms:.2f} ms per record in process")
    return bundle, orjson.dumps(record), in_process_ms


def main() -> int:
    """Measure both models and print the table; 1 when the text model misses the target."""
    if shutil.which("wrk") is None:
        print("wrk is not installed: this benchmark needs Debian's wrk (apt-get install -y wrk)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-text-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, config_path in MODELS.items():
            bundle, body, in_process = _bundle(name, config_path, tmp)
            env = {
                "HOST": "127.0.0.1",
                "WEB_CONCURRENCY": str(WORKERS),
                "MODEL_BUNDLE": str(bundle),
                "CONFIG_PATH": str(config_path),
                "PREDICTION_LOG_URL": f"sqlite:///{tmp}/{name}.db",
                "AUTH": "off",
            }
            server = start_server(name, [sys.executable, "-m", "serving.serve"], env, "/ready", tmp)
            try:
                wrk: WrkResult = run_wrk(
                    server.url + "/predict", write_lua(body, tmp / f"{name}.lua"), CONCURRENCY
                )
            finally:
                server.stop()
            results[name] = {"wrk": wrk, "in_process_ms": in_process, "ready_s": server.ready_s}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\none record, POST /predict, wrk c={CONCURRENCY}, {WORKERS} workers")
    print("model    p50 ms  p99 ms  req/s   errors  in process ms  ready s")
    for name, r in results.items():
        w = r["wrk"]
        print(
            f"{name:<8} {w.p50_ms:6.2f}  {w.p99_ms:6.2f}  {w.rps:6.0f}  {w.errors:6d}  "
            f"{r['in_process_ms']:13.2f}  {r['ready_s']:7.1f}"
        )
    ratio = results["text"]["wrk"].p50_ms / results["tabular"]["wrk"].p50_ms
    verdict = "within" if ratio <= TARGET_RATIO else "MISSES"
    print(f"text p50 / tabular p50 = {ratio:.2f}x ({verdict} the {TARGET_RATIO:g}x target)")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
