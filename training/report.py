"""What a training run reports and logs, built from in-memory results: files, the run record, tags.

Nothing here writes a file or calls MLflow: `orchestration/train.py` writes the reports and
`training/registry.py` logs the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.bundle import PROFILE_FILE, REFERENCE_FILE
from core.config import METRICS, Config, TaskType
from core.metrics import metric_value
from training.data import Dataset
from training.evaluate import Evaluation, summary_markdown
from training.gate import Decision
from training.registry import RunRecord, dumps

# Artifacts under these folders are logged to the run but not rewritten into reports/training/:
# the config and the validation result already live at their own paths.
LOGGED_ONLY = ("config/", "validation/")

# Where the run's reports land, relative to reports/training/. The workflows read PR_COMMENT (the
# pull-request comment and the job summary): tests/workflows/test_report_paths.py holds them to it.
GATE_TABLE = "gate/gate.md"
PR_COMMENT = "pr_comment.md"


@dataclass(frozen=True)
class Artifacts:
    """The run's files by relative path: text and binary, plus the pull-request comment."""

    text: dict[str, str]
    binary: dict[str, bytes]
    pr_comment: str


def artifacts(
    config: Config,
    ds: Dataset,
    evaluation: Evaluation,
    decision: Decision,
    reference: dict[str, bytes],
    validation_result: str | None,
) -> Artifacts:
    """Collect the run's reports: evaluation, gate, reference profile, config, validation result."""
    summary = summary_markdown(
        evaluation.metrics,
        evaluation.slices,
        decision.champion_metrics,
        baseline_metrics=decision.baseline_metrics,
        target=config.contract.target,
    )
    summary += "\n" + ds.describe() + "\n"
    text = {
        "evaluation/metrics.json": dumps(evaluation.metrics),
        "evaluation/slices.json": dumps(evaluation.slices),
        "evaluation/permutation_importance.csv": evaluation.importance.to_csv(index=False),
        "evaluation/summary.md": summary,
        "gate/decision.json": dumps(decision.to_json()),
        GATE_TABLE: decision.to_markdown(),
        f"reference/{PROFILE_FILE}": reference[PROFILE_FILE].decode(),
        "config/config.yaml": config.source.read_text(),
    }
    if validation_result is not None:
        text["validation/result.json"] = validation_result
    binary = {f"plots/{name}": data for name, data in evaluation.plots.items()}
    binary[f"reference/{REFERENCE_FILE}"] = reference[REFERENCE_FILE]
    return Artifacts(text, binary, summary + "\n" + decision.to_markdown())


def _data_tags(ds: Dataset) -> dict[str, str]:
    return {
        "data_sha256": ds.sha256,
        **({"feedback_sha256": ds.feedback_sha256} if ds.feedback_sha256 else {}),
    }


def run_record(
    config: Config,
    ds: Dataset,
    evaluation: Evaluation,
    decision: Decision,
    files: Artifacts,
    *,
    champion_version: str | None,
    commit: str,
) -> RunRecord:
    """Build what the MLflow run logs: params, metrics, tags, artifacts and the training table."""
    tags = {
        "gate.passed": str(decision.passed).lower(),
        "gate.reason": decision.reason[:4000],
        "git_commit": commit,
        "config_sha256": config.sha256,
        **_data_tags(ds),
        "estimator": config.model.estimator,
        "champion_version": champion_version or "none",
    }
    logged = {f"test_{k}": v for k, v in evaluation.metrics.items() if np.isfinite(v)}
    # The validation part's value of the gate's metric (the threshold was chosen on these rows).
    metric = config.gate.baseline.metric
    logged[f"val_{metric}"] = metric_value(
        metric, ds.validation.y, evaluation.p_validation, evaluation.threshold
    )
    logged["gate_passed"] = float(decision.passed)
    # The whole table as trained on (all three parts, feedback rows included): source, the
    # fingerprint of its file(s), schema and row count.
    frame = pd.concat([part.X.assign(**{config.contract.target.name: part.y}) for part in ds.parts])
    return RunRecord(
        experiment_id="",
        run_name=f"train-{config.model.estimator.rsplit('.', 1)[-1]}",
        params=_params(config, ds),
        metrics=logged,
        tags=tags,
        text_artifacts=files.text,
        binary_artifacts=files.binary,
        dataset=frame,
        dataset_source=str(ds.path),
        dataset_name=ds.path.name,
        dataset_sha256=ds.fingerprint,
        target=config.contract.target.name,
    )


def evaluation_has_threshold(config: Config) -> bool:
    """Only a binary classifier has a decision threshold to choose."""
    return config.contract.target.type is TaskType.binary


def _params(config: Config, ds: Dataset) -> dict[str, Any]:
    return {
        "estimator": config.model.estimator,
        **{f"model.{k}": v for k, v in config.model.params.items()},
        "seed": config.model.seed,
        "split.test_size": config.model.split.test_size,
        "split.validation_size": config.model.split.validation_size,
        "split.time_column": config.model.split.time_column,
        "task": config.contract.target.type.value,
        **(
            {"threshold.objective": config.model.threshold.objective}
            if evaluation_has_threshold(config)
            else {}
        ),
        "rows.train": ds.train.n_rows,
        "rows.validation": ds.validation.n_rows,
        "rows.test": ds.test.n_rows,
        "rows.feedback": ds.feedback_rows,
    }


def version_tags(
    config: Config, ds: Dataset, evaluation: Evaluation, *, commit: str
) -> dict[str, str]:
    """Tag the registered version with what made it: threshold, config, data, commit, metrics."""
    return {
        "threshold": repr(evaluation.threshold),
        "config_sha256": config.sha256,
        **_data_tags(ds),
        "git_commit": commit,
        "gate": "passed",
        **{k: f"{evaluation.metrics[k]:.6f}" for k in METRICS if k in evaluation.metrics},
    }


def result_json(
    passed: bool,
    ds: Dataset,
    evaluation: Evaluation,
    *,
    run_id: str | None,
    version: str | None,
    champion_version: str | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Summarise the run for `reports/training/result.json` (what workflows and retrain read)."""
    return {
        "passed": passed,
        "run_id": run_id,
        "model_version": version,
        "champion_version": champion_version,
        "threshold": evaluation.threshold,
        "metrics": evaluation.metrics,
        "data": {
            "path": str(ds.path),
            "sha256": ds.sha256,
            "rows": ds.n_rows,
            "feedback_path": None if ds.feedback_path is None else str(ds.feedback_path),
            "feedback_sha256": ds.feedback_sha256,
            "feedback_rows": ds.feedback_rows,
        },
        "timings": timings,
    }
