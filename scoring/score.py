"""Score a CSV or Parquet file (or folder) with the packaged model (`make score`).

Usage: python -m scoring.score --input FILE_OR_DIR --output OUT.parquet
       [--engine local|spark] [--overwrite] [--chunk-rows N] [--bundle DIR] [--config config.yaml]
Writes OUT.parquet (ids, score, label, model_version) and OUT.rejects.parquet (rows that break
the contract, with the reason). The bundle is checked against its recorded digest (--expected-digest or MODEL_DIGEST; see
core.bundle.check_anchor) and its checksums before it is loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.bundle import check_settings_anchor, load_bundle
from core.cli import entry_point, step
from core.config import load_config
from core.settings import get_settings
from scoring.stream import DEFAULT_CHUNK_ROWS, Summary, rejects_path, score_file


def print_progress(summary: Summary) -> None:
    """One line per chunk: rows so far, speed, rejects."""
    print(
        f"  {summary.rows:>12,} rows  {summary.rows_per_second:>10,.0f} rows/s  "
        f"{summary.rejected:,} rejected",
        flush=True,
    )


def add_io_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments both entry points take (this one and spark-submit's scoring/spark_job.py)."""
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--bundle", type=Path, help="model bundle folder (default: MODEL_BUNDLE)")
    parser.add_argument(
        "--expected-digest", help="the bundle's recorded digest (default: MODEL_DIGEST)"
    )


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_io_arguments(parser)
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    settings = get_settings()
    bundle_dir: Path = args.bundle or settings.model_bundle
    # Before anything in the bundle is unpickled, on either engine.
    digest = check_settings_anchor(bundle_dir, settings, args.expected_digest)
    if args.engine == "spark":
        from scoring.spark_job import score_spark  # pyspark only when asked for

        with step(f"score {args.input} on Spark", str(args.output)):
            rows = score_spark(
                args.input, args.output, bundle_dir, config, overwrite=args.overwrite, digest=digest
            )
        print(f"scored {rows:,} rows with Spark → {args.output}")
        return 0
    with step(f"verify and load bundle {bundle_dir}"):
        bundle = load_bundle(bundle_dir)
    with step(f"score {args.input}", str(args.output)):
        summary = score_file(
            args.input,
            args.output,
            bundle,
            config,
            chunk_rows=args.chunk_rows,
            overwrite=args.overwrite,
            progress=print_progress,
        )
    print(
        f"scored {summary.scored:,} of {summary.rows:,} rows with model version {bundle.version} "
        f"({summary.rows_per_second:,.0f} rows/s); {summary.rejected:,} rejected → "
        f"{rejects_path(args.output)}",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
