"""A thin adapter over the MLflow tracking server and model registry.

It connects (failing fast with ServiceUnavailable when a server cannot be reached), creates the
experiment with an explicit artifact location, logs a run, registers a version with tags and the
`candidate` alias, finds the champion by alias, and fetches what `make package` needs.
orchestration/ reaches MLflow only through it. Elsewhere: training/package.py reads a run's params
and metrics with the client returned here (`client.get_run`), training/gate.py checks bounds with
MLflow's MetricThreshold (library code, no server), and bench/ logs runs and models of its own to
time them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.bundle import DIGEST_TAG, model_threshold
from core.errors import ServiceUnavailable, TemplateError
from core.git import head_commit
from core.settings import Settings

LOCK_FILE = Path(__file__).resolve().parents[1] / "uv.lock"
# What loading the logged model needs; pinned to the lock so log_model does not infer (9.5 s → 1.8 s).
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")
CANDIDATE_ALIAS = "candidate"
MODEL_ARTIFACT = "model"


def pip_requirements(lock: Path = LOCK_FILE) -> list[str]:
    """Pin the model's runtime requirements to the versions in uv.lock."""
    try:
        packages = tomllib.loads(lock.read_text())["package"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise TemplateError(f"{lock}: cannot read pinned versions ({exc})") from None
    versions = {p["name"]: p["version"] for p in packages}
    missing = [n for n in MODEL_REQUIREMENTS if n not in versions]
    if missing:
        raise TemplateError(f"{lock}: no pinned version for {', '.join(missing)}")
    return [f"{n}=={versions[n]}" for n in MODEL_REQUIREMENTS]


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # A dead server should fail a run in seconds, not after MLflow's default 7 retries with backoff.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def connect(settings: Settings) -> Any:
    """Point MLflow at the settings' tracking URI and return a client; fail fast when unreachable."""
    _quiet()
    uri = settings.mlflow_tracking_uri
    if is_remote(uri):
        import httpx

        try:
            response = httpx.get(uri.rstrip("/") + "/health", timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"MLflow server {uri} is unreachable ({type(exc).__name__}: {exc}); start it or "
                "set MLFLOW_TRACKING_URI"
            ) from None
    elif uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    import mlflow  # imported after the reachability check: it costs about 2 s
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # pip is not installed in a uv venv; the requirements are pinned explicitly anyway.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def reachable(settings: Settings) -> Iterator[None]:
    """Turn MLflow's connection failures into ServiceUnavailable naming the tracking URI."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        text = str(exc).splitlines()[0][:300]
        raise ServiceUnavailable(
            f"MLflow at {settings.mlflow_tracking_uri} failed: {text}"
        ) from None
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise ServiceUnavailable(
            f"MLflow at {settings.mlflow_tracking_uri} is unreachable: {exc}"
        ) from None


def artifact_location(settings: Settings) -> str | None:
    """Where a new experiment stores artifacts: the local root, or the server's proxied store."""
    if is_remote(settings.mlflow_tracking_uri):
        return None  # the server's --artifacts-destination; clients upload over HTTP
    return settings.mlflow_artifact_root.resolve().as_uri()


def ensure_experiment(client: Any, name: str, settings: Settings) -> str:
    """Return the experiment id, creating it with an explicit artifact location when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location(settings)))


@dataclass(frozen=True)
class RegisteredModel:
    """A registered version found by alias, with the fitted model loaded from it.

    `pipeline` is the model as registered: the pipeline inside the wrapper that carries the
    decision threshold, or, for a version registered before the threshold moved into the model,
    the bare pipeline (its threshold then comes from the version tag).
    """

    name: str
    version: str
    alias: str
    run_id: str
    threshold: float | None  # binary only
    pipeline: Any
    tags: dict[str, str]


def find_by_alias(client: Any, model_name: str, alias: str) -> RegisteredModel | None:
    """Load the version that holds `alias`, or None when the model or the alias does not exist."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise
    pipeline = mlflow.sklearn.load_model(f"models:/{model_name}/{mv.version}")
    tags = dict(mv.tags)
    own = model_threshold(pipeline)
    tagged = tags.get("threshold", "0.5")  # a multiclass or regression version is tagged "None"
    return RegisteredModel(
        name=model_name,
        version=str(mv.version),
        alias=alias,
        run_id=str(mv.run_id),
        threshold=own if own is not None else None if tagged == "None" else float(tagged),
        pipeline=pipeline,
        tags=tags,
    )


# orchestration/train.py records the training commit under this name.
git_commit = head_commit


@dataclass(frozen=True)
class RunRecord:
    """Everything a training run logs; built by train.py, written here."""

    experiment_id: str
    run_name: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    text_artifacts: dict[str, str]
    binary_artifacts: dict[str, bytes]
    dataset: pd.DataFrame
    dataset_source: str
    dataset_name: str
    dataset_sha256: str
    target: str


def log_run(
    record: RunRecord, pipeline: Any | None, input_example: pd.DataFrame
) -> tuple[str, LoggedModel | None]:
    """Log a finished training run; log the model only when given one. Return run id and model."""
    import tempfile
    import warnings

    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    logged: LoggedModel | None = None
    # MLflow hints about integer columns and ambiguous local sources; neither applies here.
    with (
        warnings.catch_warnings(),
        mlflow.start_run(experiment_id=record.experiment_id, run_name=record.run_name) as run,
    ):
        warnings.simplefilter("ignore", UserWarning)
        mlflow.log_params({k: str(v)[:500] for k, v in record.params.items()})
        mlflow.log_metrics(record.metrics)
        mlflow.set_tags(record.tags)
        dataset = from_pandas(
            record.dataset,
            source=record.dataset_source,
            targets=record.target,
            name=record.dataset_name,
            digest=record.dataset_sha256[:16],
        )
        mlflow.log_input(dataset, context="training", tags={"sha256": record.dataset_sha256})
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in record.text_artifacts.items():
                (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / name).write_text(text)
            for name, data in record.binary_artifacts.items():
                (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / name).write_bytes(data)
            mlflow.log_artifacts(tmp)
        if pipeline is not None:
            logged = log_model(pipeline, input_example)
        return str(run.info.run_id), logged


def trusted_types(pipeline: Any) -> list[str]:
    """List the types skops will not load by default; they come from our own fitted model.

    Read from the model itself, so they cover whatever wraps the pipeline (the threshold
    wrapper and the frozen estimator are sklearn's and trusted already; numpy.dtype is not).
    """
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))


@dataclass(frozen=True)
class LoggedModel:
    """Where the logged model lives: its URI and MLflow 3 model id (registration needs both)."""

    uri: str
    model_id: str | None


def log_model(pipeline: Any, input_example: pd.DataFrame) -> LoggedModel:
    """Log the fitted model (skops) with its signature, input example and pinned requirements.

    The signature's output is what the pyfunc flavour returns: `predict`'s labels (at the
    threshold the model carries), not probabilities.
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature

    # One int64 column (a regression's float64 values): spark_udf refuses int8 (what `predict` of
    # a 0/1 target returns) and turns a tensor spec into an array per row.
    predicted = np.asarray(pipeline.predict(input_example))
    kind = np.float64 if predicted.dtype.kind == "f" else np.int64
    labels = pd.Series(predicted.astype(kind))
    signature = infer_signature(input_example, labels)
    info = mlflow.sklearn.log_model(
        pipeline,
        name=MODEL_ARTIFACT,
        serialization_format="skops",
        skops_trusted_types=trusted_types(pipeline),
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements(),
    )
    return LoggedModel(uri=str(info.model_uri), model_id=getattr(info, "model_id", None))


def register(
    client: Any, model_name: str, run_id: str, model: LoggedModel, tags: dict[str, str]
) -> str:
    """Register the run's model, tag it, point `candidate` at it; undo the version on failure."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    mv = client.create_model_version(
        model_name, source=model.uri, run_id=run_id, tags=tags, model_id=model.model_id
    )
    try:
        client.set_registered_model_alias(model_name, CANDIDATE_ALIAS, mv.version)
    except BaseException:
        # A version without its alias would be half-registered: remove it, then report the failure.
        # The server may be gone entirely; the original error matters more than this one.
        with contextlib.suppress(Exception):
            client.delete_model_version(model_name, mv.version)
        raise
    return str(mv.version)


def record_bundle_digest(client: Any, model_name: str, version: str, digest: str) -> None:
    """Tag the model version with its bundle's digest: the anchor consumers check the bundle by.

    Stored in the registry, which whoever can write a bundle file cannot write; a later packaging
    of the same version (new `created_at`) records its own digest in its place.
    """
    client.set_model_version_tag(model_name, version, DIGEST_TAG, digest)


def recorded_bundle_digest(client: Any, model_name: str, version: str) -> str | None:
    """The bundle digest the registry holds for `version`, or None when it was never packaged."""
    value = client.get_model_version(model_name, version).tags.get(DIGEST_TAG)
    return str(value) if value else None


def download_run_file(client: Any, run_id: str, path: str, dst: Path) -> Path:
    """Download one artifact of a run into `dst` and return its local path."""
    return Path(client.download_artifacts(run_id, path, str(dst)))


def log_text_to_run(client: Any, run_id: str, path: str, text: str) -> None:
    """Attach a text artifact to an existing run (e.g. the model card written at packaging)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / Path(path).name
        file.write_text(text)
        parent = str(Path(path).parent)
        client.log_artifact(run_id, str(file), artifact_path=None if parent == "." else parent)


def dumps(payload: Any) -> str:
    return json.dumps(payload, indent=2, default=str) + "\n"


def point_alias(
    client: Any, model_name: str, alias: str, version: str, tags: dict[str, str]
) -> str | None:
    """Tag `version` and point `alias` at it; return the version that held the alias before."""
    from mlflow.exceptions import MlflowException

    try:
        before: str | None = str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        before = None
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    client.set_registered_model_alias(model_name, alias, version)
    return before


def drop_alias(client: Any, model_name: str, alias: str) -> None:
    """Remove `alias` from the model (no error when it is not set)."""
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):
        client.delete_registered_model_alias(model_name, alias)


def has_version(client: Any, model_name: str, version: str) -> bool:
    """Say whether the registry holds that version of the model."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(model_name, version)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return False
        raise
    return True


def is_registered(client: Any, model_name: str) -> bool:
    """Say whether the registry holds the model at all."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model_name)
    except MlflowException:
        return False
    return True
