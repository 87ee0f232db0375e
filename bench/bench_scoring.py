"""Batch scoring speed and memory: streamed `make score` and Spark local[2] against predict_proba.

2,000,000 rows (the default data resampled, ids renumbered) as CSV. Baseline, in the same run:
the bundle's `predict_proba` on all rows in one call, in memory (features already prepared).
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
from core.config import load_config
from core.data import read_table
from core.frames import feature_frame, target_vector

ROWS = 2_000_000
SMALL = 500_000
TARGET_SHARE = 0.8
TARGET_RSS_MB = 1024
# Runs the scoring command in a child and reports that child's own peak RSS.
PROBE = (
    "import json, resource, runpy, sys, time\n"
    "sys.argv = ['scoring.score', *sys.argv[1:]]\n"
    "t = time.perf_counter(); code = 0\n"
    "try:\n    runpy.run_module('scoring.score', run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code\n"
    "print(json.dumps({'seconds': time.perf_counter() - t, 'code': code,\n"
    "  'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
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


def main() -> int:
    config_path = Path(os.environ.get("CONFIG_PATH", "config.yaml"))
    config = load_config(config_path)
    folder = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    rows: list[dict[str, object]] = []
    try:
        data = read_table(config.data_path, config.data.format)
        from training.model import build_pipeline

        pipeline = build_pipeline(config).fit(
            feature_frame(data, config.contract), target_vector(data, config.contract)
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

        frame = read_table(big)
        features = feature_frame(frame, config.contract)
        del frame
        model = load_bundle(bundle_dir).pipeline
        started = time.perf_counter()
        model.predict_proba(features)
        t_base = time.perf_counter() - started
        features.to_parquet(folder / "big.parquet", index=False)
        del features
        base_rate = ROWS / t_base
        rows.append(
            {
                "path": "predict_proba, one call (baseline)",
                "rows": f"{ROWS:,}",
                "seconds": f"{t_base:.1f}",
                "rows/s": f"{base_rate:,.0f}",
                "vs baseline": "1.00",
                "peak RSS MB": "-",
                "note": "features already in memory",
            }
        )
        for n, source in ((SMALL, small), (ROWS, big)):
            r = streamed(source, folder / f"out-{n}.parquet", bundle_dir, config_path)
            rows.append(
                {
                    "path": "make score (streamed, 100k-row chunks)",
                    "rows": f"{n:,}",
                    "seconds": f"{r['seconds']:.1f}",
                    "rows/s": f"{n / r['seconds']:,.0f}",
                    "vs baseline": f"{n / r['seconds'] / base_rate:.2f}",
                    "peak RSS MB": f"{r['rss_mb']:.0f}",
                    "note": "read CSV + validate + score + write Parquet, whole process",
                }
            )
            print(table(rows[-1:]), flush=True)
        # Spark needs Parquet input; the feature frame has no id column, so give it one.
        import pandas as pd

        parquet = pd.read_parquet(folder / "big.parquet")
        parquet.insert(0, config.contract.id_columns[0], range(1, len(parquet) + 1))
        parquet.to_parquet(folder / "big.parquet", index=False)
        del parquet
        from scoring.spark_job import score_spark, spark_session

        t_start, spark = timed(lambda: spark_session("bench"))
        try:
            t_spark, _ = timed(
                lambda: score_spark(
                    folder / "big.parquet", folder / "spark-out", bundle_dir, config, spark=spark
                )
            )
        finally:
            spark.stop()
        rows.append(
            {
                "path": "Spark local[2] (mapInPandas)",
                "rows": f"{ROWS:,}",
                "seconds": f"{t_spark:.1f}",
                "rows/s": f"{ROWS / t_spark:,.0f}",
                "vs baseline": f"{ROWS / t_spark / base_rate:.2f}",
                "peak RSS MB": "-",
                "note": f"session start {t_start:.0f} s not included; Parquet in",
            }
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(table(rows))
    share = float(str(rows[2]["vs baseline"]))
    rss = max(float(str(r["peak RSS MB"])) for r in rows[1:3])
    print(
        f"targets: streamed {share:.0%} of predict_proba throughput (≥ {TARGET_SHARE:.0%}: "
        f"{'met' if share >= TARGET_SHARE else 'MISSED'}); peak RSS {rss:.0f} MB "
        f"(< {TARGET_RSS_MB} MB: {'met' if rss < TARGET_RSS_MB else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
