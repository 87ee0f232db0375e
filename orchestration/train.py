"""`make train`: fit the configured pipeline, evaluate it, gate it, log it, register it.

Usage: python -m orchestration.train [--config config.yaml] [--dry-run]
Exit codes: 0 passed (registered with alias `candidate`), 2 config, 3 data, 4 gate rejected
(run logged with the reason, nothing registered), 6 MLflow unreachable.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.cli import entry_point, step, table
from core.config import Config, TaskType, load_config
from core.errors import GateRejected
from core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from core.metrics import comparison_rows
from core.settings import Settings, get_settings
from core.task import labels, summary_scores
from training import evaluate, gate, registry, report
from training.data import Dataset, load_dataset
from training.evaluate import Evaluation
from training.model import fit, with_threshold
from validation.profile import build_reference, reference_files

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TrainResult:
    """What a training run produced, for callers (`make retrain`, the benchmark, tests)."""

    decision: gate.Decision
    metrics: dict[str, float]
    threshold: float | None
    run_id: str | None = None
    version: str | None = None
    champion_version: str | None = None
    champion_metrics: dict[str, float] | None = None
    reports: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def _timed(name: str, timings: dict[str, float], output: str | None = None) -> Iterator[None]:
    started = time.perf_counter()
    with step(name, output):
        yield
    timings[name] = time.perf_counter() - started


def train_and_gate(
    config: Config, settings: Settings, *, register: bool = True, log: bool = True
) -> TrainResult:
    """Train, evaluate and gate; log the run and register on pass. Raise GateRejected on failure.

    With `log=False` (a pull-request dry run) nothing is written to MLflow; the champion is still
    read so the report compares against it.
    """
    timings: dict[str, float] = {}
    reports = settings.reports_dir / "training"
    with _timed("connect", timings):
        client = registry.connect(settings)
    with _timed("load", timings):
        ds = load_dataset(config)
    with _timed("fit", timings):
        model = fit(config, ds)
    with _timed("evaluate", timings):
        evaluation = evaluate.evaluate_model(model, ds, config)
    with _timed("gate", timings):
        champion = read_champion(client, config, settings)
        target = config.contract.target
        scores = None if champion is None else gate.score_champion(champion, ds.test.X, target)
        baseline = gate.score_baseline(ds, target)
        decision = gate.judge(config, ds.test.y, evaluation, scores, baseline)
    with _timed("report", timings, str(reports)):
        files = report.artifacts(
            config,
            ds,
            evaluation,
            decision,
            training_reference(config, ds, evaluation),
            read_validation_result(settings, ds),
        )
        write_reports(reports, files)
    result = TrainResult(
        decision=decision,
        metrics=evaluation.metrics,
        threshold=evaluation.threshold,
        champion_version=champion.version if champion else None,
        champion_metrics=decision.champion_metrics,
        reports=reports,
        timings=timings,
    )
    if log:
        result.run_id, result.version = log_and_register(
            client, config, settings, (ds, evaluation, files, model), result, register=register
        )
    atomic_write_json(
        reports / "result.json",
        report.result_json(
            decision.passed,
            ds,
            evaluation,
            run_id=result.run_id,
            version=result.version,
            champion_version=result.champion_version,
            timings=timings,
        ),
    )
    if not decision.passed:
        raise GateRejected(f"gate rejected the challenger: {decision.reason}")
    return result


def read_champion(
    client: Any, config: Config, settings: Settings
) -> registry.RegisteredModel | None:
    """Load the version holding the champion alias (gate.champion.alias), if there is one."""
    with registry.reachable(settings):
        return registry.find_by_alias(
            client, config.mlflow.registered_model, config.gate.champion.alias
        )


def training_reference(config: Config, ds: Dataset, evaluation: Evaluation) -> dict[str, bytes]:
    """Build the drift reference from the held-out rows and their scores."""
    # Held-out rows only: in-sample scores of a flexible model are sharper than live ones, and
    # the score-drift test would then fire on healthy traffic.
    target = config.contract.target
    scores = np.concatenate([evaluation.p_validation, evaluation.p_test])
    ref, profile = build_reference(
        pd.concat([ds.validation.X, ds.test.X]),
        summary_scores(scores, target),
        config.contract,
        seed=config.model.seed,
        predicted=labels(scores, target, None) if target.type is TaskType.multiclass else None,
    )
    return reference_files(ref, profile)


def read_validation_result(settings: Settings, ds: Dataset) -> str | None:
    """Return `make validate`'s result for the very file trained on; None for any other file."""
    path = settings.reports_dir / "validation" / "result.json"
    if not path.is_file():
        return None
    text = path.read_text()
    try:
        validated = json.loads(text).get("meta", {}).get("data_sha256")
    except (ValueError, AttributeError):
        validated = None
    if validated != ds.sha256:
        print(
            f"not attaching {path}: it was made for another file than {ds.path} "
            "(run `make validate` on it)"
        )
        return None
    return text


def write_reports(folder: Path, files: report.Artifacts) -> None:
    """Write the run's reports under reports/training/ (the config and validation stay where they are)."""
    for name, content in files.text.items():
        if not name.startswith(report.LOGGED_ONLY):
            atomic_write_text(folder / name, content)
    for name, data in files.binary.items():
        atomic_write_bytes(folder / name, data)
    atomic_write_text(folder / report.PR_COMMENT, files.pr_comment)


def log_and_register(
    client: Any,
    config: Config,
    settings: Settings,
    run: tuple[Dataset, Evaluation, report.Artifacts, Any],
    result: TrainResult,
    *,
    register: bool,
) -> tuple[str, str | None]:
    """Log the run (with the model when the gate passed); register it as `candidate` on pass."""
    ds, evaluation, files, model = run
    timings, passed = result.timings, result.decision.passed
    commit = registry.git_commit(ROOT)
    record = report.run_record(
        config,
        ds,
        evaluation,
        result.decision,
        files,
        champion_version=result.champion_version,
        commit=commit,
    )
    with _timed("log", timings), registry.reachable(settings):
        experiment_id = registry.ensure_experiment(client, config.mlflow.experiment, settings)
        # What gets registered carries a binary threshold: every consumer labels alike.
        registered = None
        if passed:
            registered = (
                model
                if evaluation.threshold is None
                else with_threshold(model, evaluation.threshold, ds.validation)
            )
        run_id, logged_model = registry.log_run(
            replace(record, experiment_id=experiment_id), registered, ds.test.X.head(5)
        )
    if not (passed and register and logged_model is not None):
        return run_id, None
    tags = report.version_tags(config, ds, evaluation, commit=commit)
    with _timed("register", timings), registry.reachable(settings):
        version = registry.register(
            client, config.mlflow.registered_model, run_id, logged_model, tags
        )
    return run_id, version


def _print_result(result: TrainResult) -> None:
    print(
        table(
            comparison_rows(
                result.metrics, result.champion_metrics, result.decision.baseline_metrics
            )
        )
    )
    for r in result.decision.rules:
        mark = "pass" if r.passed else "FAIL"
        print(f"  gate {mark}: {r.rule} (observed {r.observed:.4f}, margin {r.margin:+.4f})")


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.train", description=__doc__)
    parser.add_argument(
        "--config", default="config.yaml", help="config file (default: config.yaml)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="evaluate and gate against the champion, write reports, log and register nothing",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_config(args.config)
    settings = get_settings()
    try:
        result = train_and_gate(config, settings, log=not args.dry_run, register=not args.dry_run)
    except GateRejected:
        print(f"report: {settings.reports_dir / 'training' / report.PR_COMMENT}")
        raise
    _print_result(result)
    where = (
        f"{config.mlflow.registered_model} version {result.version} (alias candidate)"
        if result.version
        else "dry run: nothing logged"
    )
    print(
        f"✓ train: gate passed in {time.perf_counter() - started:.1f} s → {where}; "
        f"report {result.reports}/{report.PR_COMMENT}"
    )
    print(json.dumps({"run_id": result.run_id, "model_version": result.version}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
