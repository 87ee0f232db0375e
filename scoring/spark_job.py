"""Score a Parquet data set on Apache Spark with the same bundle, checks and answers.

Why `mapInPandas` and not MLflow's `spark_udf`: our artefact is the checksummed bundle, not an
MLflow model, and its manifest is verified by `core.bundle.load_bundle` on every Python worker
before anything is unpickled; `spark_udf` would load an MLflow pyfunc (whose `predict` returns
labels, not probabilities; the same labels, since the threshold is inside the model) and skip
that check. `mapInPandas` hands each worker Arrow batches as
pandas frames, so the worker runs exactly the streamed path's `score_chunk` (validation,
`feature_frame`, `predict_proba`): same code, same probabilities.

Locally: `make score ENGINE=spark INPUT=data.parquet OUTPUT=out` (local[2], no UI).
On a cluster: `spark-submit --master yarn scoring/spark_job.py --input ... --output ...` (see
README); the bundle and the code are shipped to the executors with `addFile`/`addPyFile`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from core.bundle import bundle_digest, check_settings_anchor, verify_bundle
from core.cli import entry_point, step
from core.columns import MODEL_VERSION
from core.config import Config, Target, load_config
from core.errors import DataError
from core.io import replace_dir
from core.settings import get_settings
from core.task import output_columns
from scoring.score import add_io_arguments
from scoring.stream import REASON, check_columns, input_files

ROOT = Path(__file__).resolve().parents[1]
# The packages a worker imports to score; shipped as one zip so a cluster needs no install.
SHIPPED_PACKAGES = ("core", "validation", "scoring")


def spark_session(app: str = "batch-scoring") -> Any:
    """Get a Spark session: local[2] unless spark-submit set a master; workers use our Python."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark import SparkConf
        from pyspark.sql import SparkSession

    # PySpark starts its Python workers with $PYSPARK_PYTHON (default `python3` from PATH, which
    # lacks our packages); a cluster may set its own, so only fill it in when unset.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    builder = (
        SparkSession.builder.appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Bigger Arrow batches: predict_proba costs per call, as in the streamed path's chunks.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        # Workers warn that pandas 3 is not fully supported; the parity tests cover what we use.
        .config("spark.executorEnv.PYTHONWARNINGS", "ignore::FutureWarning")
    )
    if not SparkConf().contains("spark.master"):
        builder = builder.master("local[2]")
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _code_zip(folder: Path) -> Path:
    """Zip the packages workers import, for `addPyFile`."""
    target = folder / "template_code.zip"
    with zipfile.ZipFile(target, "w") as zf:
        for package in SHIPPED_PACKAGES:
            for source in (ROOT / package).rglob("*.py"):
                zf.write(source, source.relative_to(ROOT))
    return target


def _scorer(bundle_name: str, config: Config, digest: str) -> Any:
    """Build the function each worker runs on its stream of pandas batches."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import SparkFiles

        from core.bundle import check_anchor, load_bundle
        from scoring.stream import score_chunk

        # Verified on the worker itself, against the digest the driver checked: the copy Spark
        # shipped is the one that gets unpickled.
        copy = Path(SparkFiles.get(bundle_name))
        check_anchor(copy, digest, required=True)
        bundle = load_bundle(copy)
        ids = config.contract.id_columns
        for frame in batches:
            scored, rejected = score_chunk(frame, bundle, config, 0)
            rejects = _rejects(frame, rejected, ids, config.contract.target)
            yield pd.concat([scored.assign(**{REASON: None}), rejects])

    return score


def _rejects(
    frame: pd.DataFrame, rejected: pd.DataFrame, ids: list[str], target: Target
) -> pd.DataFrame:
    """Rejected rows in the output schema: their ids (original types) and the reason."""
    positions = rejected["row"].to_numpy()
    out = pd.DataFrame({c: frame[c].to_numpy()[positions] for c in ids if c in frame})
    for name, kind in output_columns(target):
        out[name] = float("nan") if kind is float else None
    out[MODEL_VERSION] = None
    out[REASON] = rejected[REASON].to_numpy()
    return out


def score_spark(
    source: Path,
    output: Path,
    bundle_dir: Path,
    config: Config,
    *,
    overwrite: bool = False,
    spark: Any = None,
    digest: str | None = None,
) -> int:
    """Score a Parquet file or folder into `output` (a Parquet folder) and `output.rejects`."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    # Fail fast on the driver; workers check their copy against the digest the caller checked.
    verify_bundle(bundle_dir)
    digest = digest or bundle_digest(bundle_dir)
    rejects = output.with_name(f"{output.name}.rejects")
    for target in (output, rejects):
        if target.exists() and not overwrite:
            raise DataError(f"output {target} exists; pass OVERWRITE=1 (--overwrite) to replace it")
    files = input_files(source)
    if any(f.suffix != ".parquet" for f in files):
        raise DataError(f"{source}: the Spark engine reads Parquet; convert CSV first")
    check_columns(files, config)
    output.parent.mkdir(parents=True, exist_ok=True)
    session = spark or spark_session()
    work = Path(tempfile.mkdtemp(prefix=".spark-", dir=output.parent))
    try:
        sc = session.sparkContext
        sc.addFile(str(bundle_dir.resolve()), recursive=True)
        sc.addPyFile(str(_code_zip(work)))
        frame = session.read.parquet(*[str(f.resolve()) for f in files])
        id_fields = [frame.schema[c] for c in config.contract.id_columns if c in frame.columns]
        schema = T.StructType(
            [
                *id_fields,
                *(
                    T.StructField(name, T.DoubleType() if kind is float else T.StringType())
                    for name, kind in output_columns(config.contract.target)
                ),
                T.StructField(MODEL_VERSION, T.StringType()),
                T.StructField(REASON, T.StringType()),
            ]
        )
        scored = frame.mapInPandas(
            _scorer(bundle_dir.resolve().name, config, digest), schema
        ).cache()
        good = scored.filter(F.col(REASON).isNull()).drop(REASON)
        bad = scored.filter(F.col(REASON).isNotNull()).select(*[f.name for f in id_fields], REASON)
        good.write.parquet(str(work / "scored"))
        bad.write.parquet(str(work / "rejects"))
        rows = int(scored.count())
        scored.unpersist()
        for built, target in ((work / "scored", output), (work / "rejects", rejects)):
            replace_dir(built, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if spark is None:
            session.stop()
    return rows


@entry_point
def main(argv: list[str] | None = None) -> int:
    """Entry point for spark-submit: the same arguments as `python -m scoring.score`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_io_arguments(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    settings = get_settings()
    bundle_dir = args.bundle or settings.model_bundle
    digest = check_settings_anchor(bundle_dir, settings, args.expected_digest)
    with step(f"score {args.input} on Spark", str(args.output)):
        rows = score_spark(
            args.input,
            args.output,
            bundle_dir,
            config,
            overwrite=args.overwrite,
            digest=digest,
        )
    print(f"scored {rows:,} rows with Spark → {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
