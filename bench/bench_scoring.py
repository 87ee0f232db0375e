"""Batch scoring speed and memory: streamed `make score` and Spark local[2] against predict_proba.

2,000,000 rows (the default data resampled, ids renumbered) as CSV. Baseline, in the same run:
the bundle's `predict_proba` on all rows in one call, in memory, features already prepared.
Targets (issue 9): streamed throughput ≥ 80 % of that baseline; peak resident memory under 1 GB
whatever the input size (0.5M and 2M rows side by side).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_validation import resampled_csv, timed
from core.bundle import load_bundle, write_bundle
from core.cli import table
from core.config import FeatureType, load_config
from core.data import read_table
from core.frames import feature_frame, target_vector
from scoring.stream import score_file

ROWS = 2_000_000
SMALL = 500_000
TARGET_SHARE = 0.8
TARGET_RSS_MB = 1024
# Runs the scoring command in a child and reports that child's own peak RSS (VmHWM: unlike
# getrusage's ru_maxrss, it does not inherit the parent's peak across fork and exec).
PROBE = (
    "import json, runpy, sys, time\n"
    "sys.argv = ['scoring.score', *sys.argv[1:]]\n"
    "t = time.perf_counter(); code = 0\n"
    "try:\n    runpy.run_module('scoring.score', run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
    "print(json.dumps({'seconds': time.perf_counter() - t, 'code': code,\n"
    "  'rss_mb': int(hwm) / 1024}))\n"
)


def streamed(source: Path, out: Path, bundle: Path, config_path: Path) -> dict[str, float]:
    """Run `python -m scoring.score` in a child process; return its time and peak RSS."""
    args = ["--config", str(config_path), "--input", str(source), "--output", str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "--bundle", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["code"]:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
    return result


def row(path: str, n: int, seconds: float, rss: str, note: str) -> dict[str, object]:
    return {
        "path": path,
        "rows": f"{n:,}",
        "seconds": f"{seconds:.1f}",
        "rows/s": f"{n / seconds:,.0f}",
        "peak RSS MB": rss,
        "note": note,
    }


def main() -> int:
    config_path = Path(os.environ.get("CONFIG_PATH", "config.yaml"))
    config = load_config(config_path)
    contract = config.contract
    folder = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    rows: list[dict[str, object]] = []
    try:
        from training.model import build_pipeline

        data = read_table(config.data_path, config.data.format)
        pipeline = build_pipeline(config).fit(
            feature_frame(data, contract), target_vector(data, contract)
        )
        bundle_dir = write_bundle(
            folder / "bundle", pipeline, {"model_version": "bench", "threshold": 0.5}
        )
        t_gen, big = timed(lambda: resampled_csv(config, ROWS, folder))
        small = folder / "small.csv"
        with big.open() as src, small.open("w") as dst:
            for i, line in enumerate(src):
                if i > SMALL:
                    break
                dst.write(line)
        print(f"wrote {ROWS:,} rows in {t_gen:.0f} s", flush=True)

        # 1. The command itself, in a child process, for its peak memory at two input sizes.
        rss: list[float] = []
        for n, source in ((SMALL, small), (ROWS, big)):
            r = streamed(source, folder / f"out-{n}.parquet", bundle_dir, config_path)
            rss.append(r["rss_mb"])
            rows.append(
                row(
                    "make score (child process)",
                    n,
                    r["seconds"],
                    f"{r['rss_mb']:.0f}",
                    "whole command: imports, bundle check, read, validate, score, write",
                )
            )
            print(table(rows[-1:]), flush=True)
        # 2. The streamed path in process, comparable with an in-process predict_proba.
        bundle = load_bundle(bundle_dir)
        t_stream, _ = timed(
            lambda: score_file(big, folder / "in-process.parquet", bundle, config, overwrite=True)
        )
        rows.append(
            row(
                "score_file (streamed), in process",
                ROWS,
                t_stream,
                "-",
                "read+validate+score+write",
            )
        )
        # 3. Baselines: predict_proba on all rows in one call, features prepared, timed alone.
        # Object columns made from categoricals compare faster in the one-hot encoder (shared
        # string objects), so both ways of preparing them are measured; the faster one counts.
        frame = read_table(big)
        labels = [f.name for f in contract.of_type(FeatureType.categorical)]
        timings: dict[str, float] = {}
        for name, prepared in (
            ("read_csv", frame),
            ("categorical", frame.astype({c: "category" for c in labels})),
        ):
            features = feature_frame(prepared, contract)
            started = time.perf_counter()
            bundle.pipeline.predict_proba(features)
            timings[name] = time.perf_counter() - started
            del features
        parquet = folder / "big.parquet"
        frame.to_parquet(parquet, index=False)
        del frame
        t_base = min(timings.values())
        for name, seconds in timings.items():
            best = " (baseline)" if seconds == t_base else ""
            rows.append(
                row(
                    f"predict_proba, one call, {name} features{best}",
                    ROWS,
                    seconds,
                    "-",
                    "in memory",
                )
            )
        # 4. Spark local[2] on the same rows as Parquet.
        from scoring.spark_job import score_spark, spark_session

        t_start, spark = timed(lambda: spark_session("bench"))
        try:
            t_spark, _ = timed(
                lambda: score_spark(parquet, folder / "spark-out", bundle_dir, config, spark=spark)
            )
        finally:
            spark.stop()
        rows.append(
            row(
                "Spark local[2], mapInPandas",
                ROWS,
                t_spark,
                "-",
                f"Parquet in; session start {t_start:.0f} s not included",
            )
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base_rate = ROWS / t_base
    for entry in rows:
        rate = float(str(entry["rows/s"]).replace(",", ""))
        entry["vs baseline"] = f"{rate / base_rate:.2f}"
    print(table(rows))
    share = ROWS / t_stream / base_rate
    print(
        f"targets: streamed {share:.0%} of predict_proba throughput (≥ {TARGET_SHARE:.0%}: "
        f"{'met' if share >= TARGET_SHARE else 'MISSED'}); peak RSS {rss[0]:.0f} MB at "
        f"{SMALL:,} rows, {rss[1]:.0f} MB at {ROWS:,} (< {TARGET_RSS_MB} MB: "
        f"{'met' if max(rss) < TARGET_RSS_MB else 'MISSED'}); Spark local "
        f"{ROWS / t_spark / base_rate:.0%} of the baseline"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
