"""`make package`: turn the registered `candidate` into a self-contained, checksummed bundle.

Usage: python -m training.package [--config config.yaml] [--alias candidate]
The bundle (Settings.model_bundle, default build/bundle) holds the fitted model (skops), its
compiled form and probes (training/compile.py: what serving loads with numpy alone), metadata
(threshold, metrics, contract, run id, version, hashes), `model_card.md`, `reference.parquet` and
`reference_profile.json`, and a manifest with the sha256 of every file. Serving needs no MLflow.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.bundle import (
    DIGEST_TAG,
    METADATA_FILE,
    MODEL_CARD_FILE,
    PROFILE_FILE,
    REFERENCE_FILE,
    bundle_digest,
    write_bundle,
)
from core.cli import entry_point, github_output, step
from core.config import METRICS, Config, load_config
from core.errors import ConfigError, ModelNotFound
from core.settings import Settings, get_settings
from core.templates import render
from training import registry
from training.compile import model_files
from training.evaluate import SLICE_METRICS

# Bundle file name → where training logged it in the MLflow run.
RUN_FILES = {
    REFERENCE_FILE: f"reference/{REFERENCE_FILE}",
    PROFILE_FILE: f"reference/{PROFILE_FILE}",
    "decision.json": "gate/decision.json",
    "slices.json": "evaluation/slices.json",
}


def model_card(
    config: Config,
    model: registry.RegisteredModel,
    metrics: dict[str, float],
    params: dict[str, str],
    decision: dict[str, Any],
    slices: list[dict[str, Any]],
) -> str:
    """Render the model card (templates/model_card.md.j2) from the run's values."""
    time_column = params.get("split.time_column")
    return render(
        "model_card.md.j2",
        config=config,
        model=model,
        target=config.contract.target,
        estimator=params.get("estimator", config.model.estimator),
        objective=params.get("threshold.objective", config.model.threshold.objective),
        rows={
            part: params.get(f"rows.{part}", "?")
            for part in ("train", "validation", "test", "feedback")
        },
        seed=params.get("seed", "?"),
        # MLflow stores a missing param as the string "None".
        time_column=None if time_column in (None, "None") else time_column,
        metrics={k: metrics[k] for k in METRICS if k in metrics},
        slices=slices,
        passed=bool(decision.get("passed")),
        reason=decision.get("reason", ""),
        rules=decision.get("rules", []),
        slice_metric=SLICE_METRICS[config.contract.target.type][0],
        weakest=weakest_slices(slices, SLICE_METRICS[config.contract.target.type][0]),
    )


def weakest_slices(
    slices: list[dict[str, Any]], metric: str = "roc_auc", n: int = 3
) -> list[dict[str, Any]]:
    """Return the `n` slices worst on `metric` (the task's first slice metric), leaving out NaN ones."""
    measured = [s for s in slices if s.get(metric) == s.get(metric)]
    return sorted(measured, key=lambda s: s[metric], reverse=not METRICS[metric])[:n]


def package_candidate(config: Config, settings: Settings, alias: str = "candidate") -> Path:
    """Build the bundle from the version holding `alias`; return the bundle folder."""
    client = registry.connect(settings)
    name = config.mlflow.registered_model
    with registry.reachable(settings):
        model = registry.find_by_alias(client, name, alias)
        if model is None:
            raise ModelNotFound(
                f"no version of registered model {name!r} holds alias {alias!r}; run `make train` first"
            )
        trained_with = model.tags.get("config_sha256")
        if trained_with and trained_with != config.sha256:
            raise ConfigError(
                f"{config.source}: changed since {name} version {model.version} was trained "
                f"(config sha256 {config.sha256[:12]}…, trained with {trained_with[:12]}…); "
                "run `make train` again"
            )
        run = client.get_run(model.run_id)
        params = dict(run.data.params)
        metrics = {
            k.removeprefix("test_"): float(v)
            for k, v in run.data.metrics.items()
            if k.startswith("test_")
        }
        files: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for local, remote in RUN_FILES.items():
                files[local] = registry.download_run_file(
                    client, model.run_id, remote, Path(tmp)
                ).read_bytes()
    decision = json.loads(files.pop("decision.json"))
    slices = json.loads(files.pop("slices.json"))
    card = model_card(config, model, metrics, params, decision, slices)
    metadata = {
        "model_name": name,
        "model_version": model.version,
        "alias": alias,
        "run_id": model.run_id,
        # A mirror of the threshold inside the model, for display; loading refuses a mismatch.
        "threshold": model.threshold,
        "metrics": metrics,
        "contract": config.contract.model_dump(mode="json"),
        "config_sha256": config.sha256,
        "data_sha256": model.tags.get("data_sha256"),
        "git_commit": model.tags.get("git_commit"),
        "estimator": params.get("estimator", config.model.estimator),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    reference = pd.read_parquet(io.BytesIO(files[REFERENCE_FILE]))
    compiled = model_files(model.pipeline, config.contract, reference)
    bundle = write_bundle(
        settings.model_bundle,
        model.pipeline,
        metadata,
        {MODEL_CARD_FILE: card, **files, **compiled},
    )
    with registry.reachable(settings):
        registry.log_text_to_run(client, model.run_id, MODEL_CARD_FILE, card)
        registry.record_bundle_digest(client, name, model.version, bundle_digest(bundle))
    return bundle


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.package", description=__doc__)
    parser.add_argument(
        "--config", default="config.yaml", help="config file (default: config.yaml)"
    )
    parser.add_argument("--alias", default="candidate", help="registry alias to package")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    settings = get_settings()
    with step("package", str(settings.model_bundle)):
        bundle = package_candidate(config, settings, args.alias)
    meta = json.loads((bundle / METADATA_FILE).read_text())
    digest = bundle_digest(bundle)
    print(f"  {meta['model_name']} version {meta['model_version']} (run {meta['run_id']})")
    print(f"  MODEL_DIGEST={digest}  (also the version's tag {DIGEST_TAG!r})")
    # Later steps of the job (stage, image, drift) check the bundle against it.
    github_output(settings.github_output, model_digest=digest)
    github_output(settings.github_env, MODEL_DIGEST=digest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
