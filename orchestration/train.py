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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.cli import entry_point, step, table
from core.config import METRICS, Config, load_config
from core.errors import GateRejected
from core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from core.settings import Settings, get_settings
from training import evaluate, gate, registry
from training.data import load_dataset
from training.model import fit, with_threshold
from validation.profile import build_reference, reference_files

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TrainResult:
    """What a training run produced, for callers (`make retrain`, the benchmark, tests)."""

    decision: gate.Decision
    metrics: dict[str, float]
    threshold: float
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


def _champion_scores(
    champion: registry.RegisteredModel, X: pd.DataFrame
) -> tuple[np.ndarray | None, str]:
    try:
        return np.asarray(champion.pipeline.predict_proba(X)[:, 1], dtype="float64"), ""
    except Exception as exc:  # a champion from an older contract may not accept today's columns
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def train_and_gate(
    config: Config, settings: Settings, *, register: bool = True, log: bool = True
) -> TrainResult:
    """Train, evaluate and gate; log the run and register on pass. Raise GateRejected on failure.

    With `log=False` (a pull-request dry run) nothing is written to MLflow; the champion is still
    read so the report compares against it.
    """
    timings: dict[str, float] = {}
    with _timed("connect", timings):
        client = registry.connect(settings)
    reports = settings.reports_dir / "training"
    with _timed("load", timings):
        ds = load_dataset(config)
    with _timed("fit", timings):
        pipeline = fit(config, ds)
    with _timed("evaluate", timings):
        p_val = pipeline.predict_proba(ds.validation.X)[:, 1]
        spec = config.model.threshold
        threshold = evaluate.choose_threshold(ds.validation.y, p_val, spec.objective, spec.fixed)
        p_test = pipeline.predict_proba(ds.test.X)[:, 1]
        metrics = evaluate.all_metrics(ds.test.y, p_test, threshold)
        slices = evaluate.slice_metrics(
            ds.test.X, ds.test.y, p_test, threshold, config.model.slices
        )
        importance = evaluate.permutation_importance(
            pipeline, ds.test.X, ds.test.y, seed=config.model.seed
        )
        pngs = evaluate.plots(ds.test.y, p_test, threshold, importance)
    with _timed("gate", timings):
        with registry.reachable(settings):
            champion = registry.find_by_alias(
                client, config.mlflow.registered_model, config.gate.champion.alias
            )
        rule_results = gate.check_rules(config.gate.rules, metrics)
        champion_result = None
        champion_info: dict[str, Any] | None = None
        champion_metrics: dict[str, float] | None = None
        if champion is not None:
            p_champ, problem = _champion_scores(champion, ds.test.X)
            champion_info = {
                "name": champion.name,
                "version": champion.version,
                "alias": champion.alias,
                "run_id": champion.run_id,
                "threshold": champion.threshold,
            }
            if p_champ is None:
                champion_info["note"] = (
                    f"the champion cannot score the test rows ({problem}); thresholds alone decide"
                )
            else:
                champion_metrics = evaluate.all_metrics(ds.test.y, p_champ, champion.threshold)
                champion_info["metrics"] = champion_metrics
                champion_result = gate.compare_with_champion(
                    ds.test.y,
                    p_test,
                    p_champ,
                    threshold_challenger=threshold,
                    threshold_champion=champion.threshold,
                    settings=config.gate.champion,
                    seed=config.model.seed,
                )
        decision = gate.decide(rule_results, champion_result, champion_info)

    with _timed("report", timings, str(reports)):
        # Held-out rows only: in-sample scores of a flexible model are sharper than live ones, and
        # the score-drift test would then fire on healthy traffic.
        ref, profile = build_reference(
            pd.concat([ds.validation.X, ds.test.X]),
            np.concatenate([p_val, p_test]),
            config.contract,
            seed=config.model.seed,
        )
        ref_files = reference_files(ref, profile)
        summary = evaluate.summary_markdown(metrics, slices, champion_metrics)
        summary += "\n" + ds.describe() + "\n"
        text_files = {
            "evaluation/metrics.json": registry.dumps(metrics),
            "evaluation/slices.json": registry.dumps(slices),
            "evaluation/permutation_importance.csv": importance.to_csv(index=False),
            "evaluation/summary.md": summary,
            "gate/decision.json": registry.dumps(decision.to_json()),
            "gate/gate.md": decision.to_markdown(),
            "reference/reference_profile.json": ref_files["reference_profile.json"].decode(),
            "config/config.yaml": config.source.read_text(),
        }
        validation_result = settings.reports_dir / "validation" / "result.json"
        if validation_result.is_file():
            text_files["validation/result.json"] = validation_result.read_text()
        binary_files = {f"plots/{name}": data for name, data in pngs.items()}
        binary_files["reference/reference.parquet"] = ref_files["reference.parquet"]
        _write_reports(reports, text_files, binary_files, summary + "\n" + decision.to_markdown())

    result = TrainResult(
        decision=decision,
        metrics=metrics,
        threshold=threshold,
        champion_version=champion.version if champion else None,
        champion_metrics=champion_metrics,
        reports=reports,
        timings=timings,
    )
    if log:
        commit = registry.git_commit(ROOT)
        tags = {
            "gate.passed": str(decision.passed).lower(),
            "gate.reason": decision.reason[:4000],
            "git_commit": commit,
            "config_sha256": config.sha256,
            "data_sha256": ds.sha256,
            **({"feedback_sha256": ds.feedback_sha256} if ds.feedback_sha256 else {}),
            "estimator": config.model.estimator,
            "champion_version": result.champion_version or "none",
        }
        params = {
            "estimator": config.model.estimator,
            **{f"model.{k}": v for k, v in config.model.params.items()},
            "seed": config.model.seed,
            "split.test_size": config.model.split.test_size,
            "split.validation_size": config.model.split.validation_size,
            "split.time_column": config.model.split.time_column,
            "threshold.objective": spec.objective,
            "rows.train": ds.train.n_rows,
            "rows.validation": ds.validation.n_rows,
            "rows.test": ds.test.n_rows,
            "rows.feedback": ds.feedback_rows,
        }
        logged = {f"test_{k}": v for k, v in metrics.items() if np.isfinite(v)}
        logged["val_roc_auc"] = evaluate.roc_auc(ds.validation.y, p_val)
        logged["gate_passed"] = float(decision.passed)
        # The whole table as trained on (all three parts, feedback rows included): source, the
        # fingerprint of its file(s), schema and row count.
        frame = pd.concat(
            [part.X.assign(**{config.contract.target.name: part.y}) for part in ds.parts]
        )
        record = registry.RunRecord(
            experiment_id="",
            run_name=f"train-{config.model.estimator.rsplit('.', 1)[-1]}",
            params=params,
            metrics=logged,
            tags=tags,
            text_artifacts=text_files,
            binary_artifacts=binary_files,
            dataset=frame,
            dataset_source=str(ds.path),
            dataset_name=ds.path.name,
            dataset_sha256=ds.fingerprint,
            target=config.contract.target.name,
        )
        with _timed("log", timings), registry.reachable(settings):
            experiment_id = registry.ensure_experiment(client, config.mlflow.experiment, settings)
            record = _with_experiment(record, experiment_id)
            # What gets registered carries the threshold: every consumer labels alike.
            model = with_threshold(pipeline, threshold, ds.validation) if decision.passed else None
            result.run_id, logged_model = registry.log_run(record, model, ds.test.X.head(5))
        if decision.passed and register and logged_model is not None:
            version_tags = {
                "threshold": repr(threshold),
                "config_sha256": config.sha256,
                "data_sha256": ds.sha256,
                **({"feedback_sha256": ds.feedback_sha256} if ds.feedback_sha256 else {}),
                "git_commit": commit,
                "gate": "passed",
                **{k: f"{metrics[k]:.6f}" for k in METRICS},
            }
            with _timed("register", timings), registry.reachable(settings):
                result.version = registry.register(
                    client,
                    config.mlflow.registered_model,
                    result.run_id,
                    logged_model,
                    version_tags,
                )
    atomic_write_json(
        reports / "result.json",
        {
            "passed": decision.passed,
            "run_id": result.run_id,
            "model_version": result.version,
            "champion_version": result.champion_version,
            "threshold": threshold,
            "metrics": metrics,
            "data": {
                "path": str(ds.path),
                "sha256": ds.sha256,
                "rows": ds.n_rows,
                "feedback_path": None if ds.feedback_path is None else str(ds.feedback_path),
                "feedback_sha256": ds.feedback_sha256,
                "feedback_rows": ds.feedback_rows,
            },
            "timings": timings,
        },
    )
    if not decision.passed:
        raise GateRejected(f"gate rejected the challenger: {decision.reason}")
    return result


def _with_experiment(record: registry.RunRecord, experiment_id: str) -> registry.RunRecord:
    from dataclasses import replace

    return replace(record, experiment_id=experiment_id)


def _write_reports(
    folder: Path, text: dict[str, str], binary: dict[str, bytes], pr_comment: str
) -> None:
    for name, content in text.items():
        if not name.startswith(("config/", "validation/")):
            atomic_write_text(folder / name, content)
    for name, data in binary.items():
        atomic_write_bytes(folder / name, data)
    atomic_write_text(folder / "pr_comment.md", pr_comment)


def _print_result(result: TrainResult) -> None:
    rows: list[dict[str, object]] = []
    for name in METRICS:
        row: dict[str, object] = {"metric": name, "challenger": f"{result.metrics[name]:.4f}"}
        if result.champion_metrics is not None:
            row["champion"] = f"{result.champion_metrics[name]:.4f}"
        rows.append(row)
    print(table(rows))
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
        print(f"report: {settings.reports_dir / 'training' / 'pr_comment.md'}")
        raise
    _print_result(result)
    where = (
        f"{config.mlflow.registered_model} version {result.version} (alias candidate)"
        if result.version
        else "dry run: nothing logged"
    )
    print(
        f"✓ train: gate passed in {time.perf_counter() - started:.1f} s → {where}; "
        f"report {result.reports}/pr_comment.md"
    )
    print(json.dumps({"run_id": result.run_id, "model_version": result.version}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
