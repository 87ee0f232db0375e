"""`make package`: turn the registered `candidate` into a self-contained, checksummed bundle.

Usage: python -m training.package [--config config.yaml] [--alias candidate]
The bundle (Settings.model_bundle, default build/bundle) holds the fitted pipeline, metadata
(threshold, metrics, contract, run id, version, hashes), `model_card.md`, `reference.parquet` and
`reference_profile.json`, and a manifest with the sha256 of every file. Serving needs no MLflow.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.bundle import write_bundle
from core.cli import entry_point, markdown_table, step
from core.config import METRICS, Config, load_config
from core.errors import ConfigError, ModelNotFound
from core.settings import Settings, get_settings
from training import registry

RUN_FILES = {
    "reference.parquet": "reference/reference.parquet",
    "reference_profile.json": "reference/reference_profile.json",
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
    """Write the model card: what it predicts, from which data, how well, and where it falls short."""
    target = config.contract.target
    metric_rows: list[dict[str, object]] = [
        {"metric": k, "test": f"{metrics[k]:.4f}"} for k in METRICS if k in metrics
    ]
    gate_rows: list[dict[str, object]] = [
        {
            "rule": r["rule"],
            "observed": f"{r['observed']:.4f}",
            "limit": f"{r['limit']:.4f}",
            "result": "pass" if r["passed"] else "FAIL",
        }
        for r in decision.get("rules", [])
    ]
    weakest = sorted(
        (s for s in slices if s.get("roc_auc") == s.get("roc_auc")),  # drop NaN AUCs
        key=lambda s: s["roc_auc"],
    )[:3]
    return "\n".join(
        [
            f"# Model card: {model.name} version {model.version}",
            "",
            f"- Project: `{config.project}`; MLflow run `{model.run_id}`; "
            f"git commit `{model.tags.get('git_commit', 'unknown')}`",
            f"- Estimator: `{params.get('estimator', config.model.estimator)}` inside one sklearn "
            "Pipeline with the preprocessing built from the data contract",
            f"- Decision threshold: {model.threshold:.4f} (objective "
            f"`{params.get('threshold.objective', config.model.threshold.objective)}`, "
            "chosen on the validation set)",
            "",
            "## Intended use",
            "",
            f"Scores the probability that `{target.name}` is `{target.positive}` for one row with "
            f"the {len(config.contract.features)} features of the contract in `{config.source.name}`. "
            "It ranks and flags rows for a person or a process to act on; it is not meant to be "
            "the sole basis of a decision about an individual.",
            "",
            "## Data",
            "",
            f"- File `{config.data.path}` (sha256 `{model.tags.get('data_sha256', '?')}`)",
            *(
                [
                    f"- Feedback file `{config.data.feedback_path}` (sha256 "
                    f"`{model.tags['feedback_sha256']}`): {params.get('rows.feedback', '?')} "
                    "labelled production rows split by request id beside the data"
                ]
                if model.tags.get("feedback_sha256")
                else []
            ),
            f"- Rows: train {params.get('rows.train', '?')}, validation "
            f"{params.get('rows.validation', '?')}, test {params.get('rows.test', '?')} "
            f"(split seed {params.get('seed', '?')}"
            + (
                f", by time column `{params['split.time_column']}`)"
                if params.get("split.time_column") not in (None, "None")
                else ", stratified)"
            ),
            f"- Config sha256 `{model.tags.get('config_sha256', '?')}`",
            "",
            "## Metrics (test set)",
            "",
            markdown_table(metric_rows),
            "",
            "## Slices",
            "",
            markdown_table(slices) if slices else "_No slice columns configured._",
            "",
            "## Gate decision",
            "",
            f"{'Passed' if decision.get('passed') else 'Rejected'}: {decision.get('reason', '')}",
            "",
            markdown_table(gate_rows),
            "",
            "## Limits",
            "",
            "- Trained on one snapshot of the data; its quality holds only while production rows "
            "look like it. The drift check compares traffic with `reference_profile.json`.",
            "- Probabilities are as calibrated as the calibration plot in the MLflow run shows.",
            "- Weakest slices on the test set: "
            + (
                ", ".join(
                    f"{s['slice']}={s['value']} (AUC {s['roc_auc']:.3f}, n={s['n_rows']})"
                    for s in weakest
                )
                if weakest
                else "none measured"
            )
            + ".",
            "- Categories not in the contract are encoded as unknown (all zeros), not rejected by "
            "the model itself; the service rejects them first.",
            "",
        ]
    )


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
    bundle = write_bundle(
        settings.model_bundle, model.pipeline, metadata, {"model_card.md": card, **files}
    )
    with registry.reachable(settings):
        registry.log_text_to_run(client, model.run_id, "model_card.md", card)
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
    meta = json.loads((bundle / "bundle.json").read_text())
    print(f"  {meta['model_name']} version {meta['model_version']} (run {meta['run_id']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
