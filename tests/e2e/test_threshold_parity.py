"""Every consumer of the registered model labels the same rows alike, at the model's threshold.

One training run with a fixed threshold far from 0.5, then labels for the same rows from: the
model's own `predict`, our service (a real uvicorn process on the packaged bundle), `make score`'s
module, `mlflow models serve` on `models:/...@candidate`, and MLflow's `spark_udf`. They must all
agree, and differ from labels at 0.5 (else the test could not fail).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from core.bundle import load_bundle, model_threshold
from core.config import Config, load_config
from core.frames import feature_frame
from orchestration.train import train_and_gate
from tests.conftest import free_port
from tests.serving.conftest import request_records, serving_config, start_server
from tests.training.conftest import env_for, settings_for
from training.package import package_candidate

THRESHOLD = 0.3
N_ROWS = 200
# The local environment manager: the default builds a virtualenv and pip-installs everything.
MLFLOW_SERVE = (sys.executable, "-m", "mlflow", "models", "serve", "--env-manager", "local")
MLFLOW_SERVE += ("--workers", "1")
SCORE = (sys.executable, "-m", "scoring.score")


@contextmanager
def mlflow_serve(model_uri: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """`mlflow models serve --env-manager local` on a free port; yields its URL once /ping answers."""
    port = free_port()
    proc = subprocess.Popen(
        [*MLFLOW_SERVE, "-m", model_uri, "--host", "127.0.0.1", "--port", str(port)],
        # It execs `uvicorn` from PATH: the one beside this interpreter.
        env={**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def wait_for(url: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not ready in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def spark_udf_labels(model_uri: str, rows: pd.DataFrame) -> list[Any]:
    """Labels from `mlflow.pyfunc.spark_udf` in a local[1] session."""
    import mlflow.pyfunc
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("threshold-parity")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.executorEnv.PYTHONWARNINGS", "ignore::FutureWarning")
        .getOrCreate()
    )
    try:
        udf = mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local")
        frame = spark.createDataFrame(rows.reset_index(drop=True))
        scored = frame.withColumn("label", udf(*rows.columns)).select("label").toPandas()
        return list(scored["label"])
    finally:
        spark.stop()


@pytest.mark.slow
@pytest.mark.e2e
def test_every_consumer_labels_at_the_models_threshold(
    tmp_path: Path, write_config: Any, raw_config: dict[str, Any], default_frame: pd.DataFrame
) -> None:
    def fixed_threshold(raw: dict[str, Any]) -> None:
        raw["model"]["threshold"] = {"objective": "fixed", "fixed": THRESHOLD}

    config: Config = load_config(write_config(fixed_threshold))
    settings = settings_for(tmp_path)
    result = train_and_gate(config, settings)
    bundle_dir = package_candidate(config, settings)
    bundle = load_bundle(bundle_dir)
    assert model_threshold(bundle.pipeline) == bundle.threshold == result.threshold == THRESHOLD

    contract = config.contract
    positive, negative = contract.target.positive, contract.target.negative
    # Rows with a missing feature first (each consumer fills them in its own way), then others.
    missing = feature_frame(default_frame, contract).isna().any(axis=1)
    rows = pd.concat([default_frame[missing].head(20), default_frame[~missing]]).head(N_ROWS)
    features = feature_frame(rows, contract)
    to_name = {1: positive, 0: negative}
    own = [to_name[int(v)] for v in bundle.pipeline.predict(features)]
    proba = bundle.pipeline.predict_proba(features)[:, 1]
    at_half = np.where(proba >= 0.5, positive, negative).tolist()
    assert own != at_half, "no row between 0.5 and the threshold: the test could not fail"

    env = env_for(settings)
    model_uri = f"models:/{config.mlflow.registered_model}@candidate"
    labels: dict[str, list[Any]] = {"predict": own}
    records = request_records(rows, contract, N_ROWS)
    mlflow_log = tmp_path / "mlflow-serve.log"
    with mlflow_serve(model_uri, env, mlflow_log) as mlflow_url:
        # Started while `mlflow models serve` warms up; the service also verifies the bundle.
        service = start_server(
            tmp_path,
            bundle=bundle_dir,
            config=serving_config(tmp_path, raw_config, max_batch=500, max_body_bytes=1_000_000),
        )
        try:
            with service.client() as client:
                answer = client.post("/predict/batch", json={"records": records})
            assert answer.status_code == 200, answer.text
            labels["service"] = [p["label"] for p in answer.json()["predictions"]]
        finally:
            service.stop()

        source, output = tmp_path / "rows.parquet", tmp_path / "scored.parquet"
        rows.to_parquet(source, index=False)
        io = ["--input", str(source), "--output", str(output)]
        score = subprocess.run(
            [*SCORE, "--config", str(config.source), "--bundle", str(bundle_dir), *io],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert score.returncode == 0, score.stdout[-2000:] + score.stderr[-2000:]
        labels["make score"] = pd.read_parquet(output)["label"].tolist()

        labels["spark_udf"] = [to_name[int(v)] for v in spark_udf_labels(model_uri, features)]

        wait_for(f"{mlflow_url}/ping", mlflow_log)
        split = json.loads(features.to_json(orient="split", index=False))
        served = httpx.post(
            f"{mlflow_url}/invocations", json={"dataframe_split": split}, timeout=60
        )
        assert served.status_code == 200, served.text
        labels["mlflow models serve"] = [to_name[int(v)] for v in served.json()["predictions"]]

    for consumer, got in labels.items():
        assert got == own, f"{consumer} labels differ from the model's own on {len(got)} rows"
