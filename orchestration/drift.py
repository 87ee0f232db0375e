"""Compare recent traffic with the model's training reference and write the drift report.

Usage: python -m orchestration.drift [--config config.yaml] [--current FILE] [--since ISO] [--limit N]
       [--verdict-only]

The window is read from the prediction log (PREDICTION_LOG_URL) or from a CSV/Parquet file; the
reference from the model bundle (MODEL_BUNDLE), verified first. A log window starts at the later of
now - drift.window_hours and the bundle's version's first logged row (so a rollout never mixes two
models); rows of other versions in it are left out and counted in the report. The report goes to
REPORTS_DIR/drift/ (report.md, report.html, report.json).

Exit codes, for workflows to branch on:
  0  no drift, or not enough data to say (the report says which)
  10 drift (validation.drift.DRIFT_EXIT_CODE)
  2-6  our errors (core/errors.py): bad config 2, bad input 3, bundle 5, log unreachable 6
  70 an unexpected crash, printed with its traceback, so that a bug never reads as drift
Under GitHub Actions it also appends `drift=true|false` and `verdict=...` to $GITHUB_OUTPUT:
`make` itself exits 2 whatever its recipe returned, so a workflow calls `make drift
VERDICT_ONLY=1` (`--verdict-only`): a drift verdict then exits 0 and only that output says it,
while every error still fails the step. This module is the only writer of that output.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from core.bundle import METADATA_FILE, check_settings_anchor, load_bundle
from core.checks import validate_features
from core.cli import entry_point, github_output, step, table
from core.columns import (
    FEEDBACK,
    FEEDBACK_LABEL,
    LABEL,
    MODEL_VERSION,
    REFERENCE_LABEL,
    REFERENCE_PREDICTED,
    REFERENCE_SCORE,
    SCORE,
    TS,
)
from core.config import Config, Contract, TaskType, load_config
from core.data import read_table
from core.errors import (
    BundleIntegrityError,
    DataError,
    ServiceUnavailable,
    TemplateError,
)
from core.prediction_log import first_logged, read_predictions
from core.settings import Settings, get_settings
from core.task import labels, model_scores, summary_scores, truth_values
from validation.drift import DRIFT_EXIT_CODE, DriftResult, detect_drift
from validation.drift_report import HTML_FILE, JSON_FILE, MARKDOWN_FILE, feature_rows, write_report
from validation.profile import contract_features, read_reference

CRASH_EXIT_CODE = 70
# Where a window names its true class: a file's column, else the prediction log's.
LOG_FEEDBACK = (FEEDBACK_LABEL, FEEDBACK)


# --- adapters -------------------------------------------------------------------------------------


def read_log_window(url: str, since: datetime | None, limit: int | None) -> pd.DataFrame:
    """Read the window from the prediction log (core/prediction_log.py)."""
    shown = _hide_password(url)
    try:
        frame: pd.DataFrame = read_predictions(url, since=since, limit=limit)
    except Exception as exc:  # SQLAlchemy and the drivers raise many types for a dead database
        if isinstance(exc, TemplateError):
            raise
        raise ServiceUnavailable(
            f"prediction log {shown} cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from None
    return frame


def invalid_share(frame: pd.DataFrame, config: Config) -> dict[str, float]:
    """Share of rows failing validation per column (the same feature rules as the GX suite)."""
    result = validate_features(frame[config.contract.feature_names], config)
    return {str(k): float(v) for k, v in result.unexpected_share.items()}


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL: show it as given
        return url


# --- turning a raw window into what the statistics need ----------------------------------------


def normalise_window(
    raw: pd.DataFrame, contract: Contract, source: str, *, logged: bool = True
) -> tuple[pd.DataFrame, set[str]]:
    """Return features in pipeline dtypes plus `__score__`/`__label__` when known, and model versions.

    In a file (`logged=False`) a column of the contract is the data's own: a target named
    `score` holds the true classes, not the model's scores the log's `score` column does.
    """
    if len(raw) == 0:
        raise DataError(f"the current window from {source} is empty: no rows to compare")
    window = contract_features(raw, contract, f"the current window from {source}")
    own = set() if logged else set(contract.columns)
    for name in (REFERENCE_SCORE, SCORE):
        if name in raw.columns and name not in own:
            window[REFERENCE_SCORE] = pd.to_numeric(raw[name], errors="coerce").astype("float64")
            break
    for name in (REFERENCE_LABEL, *LOG_FEEDBACK, contract.target.name):
        if name in raw.columns:
            window[REFERENCE_LABEL] = labels_01(raw[name], contract, f"{source}: column {name!r}")
            break
    if contract.target.type is TaskType.multiclass:
        for name in (REFERENCE_PREDICTED, LABEL):
            if name in raw.columns and name not in own:
                window[REFERENCE_PREDICTED] = (
                    raw[name].astype(object).where(raw[name].notna(), None)
                )
                break
    versions = (
        {str(v) for v in raw[MODEL_VERSION].dropna().unique()}
        if MODEL_VERSION in raw.columns
        else set()
    )
    return window, versions


def labels_01(column: pd.Series, contract: Contract, what: str) -> pd.Series:
    """Map true labels to the target's encoding (binary 0/1, class index, value), NaN where none."""
    text = column.astype(object).where(column.notna(), None).tolist()
    values = truth_values(text, contract.target, what)
    return pd.Series(values, index=column.index, dtype="float64")


def _threshold(metadata: dict[str, Any], contract: Contract) -> float | None:
    """The bundle's decision threshold (binary; 0.5 for a bundle that recorded none), else None."""
    if contract.target.type is not TaskType.binary:
        return None
    return float(metadata.get("threshold") or 0.5)


def training_metrics(metadata: dict[str, Any]) -> dict[str, float]:
    """Metrics the bundle recorded for the held-out test split (flat, or under 'test')."""
    metrics = metadata.get("metrics") or {}
    if isinstance(metrics.get("test"), dict):
        metrics = metrics["test"]
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


def reference_version(profile: dict[str, Any], metadata: dict[str, Any], bundle: Path) -> str:
    """Return the model version the reference belongs to; the profile and bundle must agree."""
    from_bundle = metadata.get("model_version")
    from_profile = profile.get("model_version")
    if (
        from_profile is not None
        and from_bundle is not None
        and str(from_profile) != str(from_bundle)
    ):
        raise BundleIntegrityError(
            f"{bundle}: the reference profile is for model version {from_profile} but the bundle "
            f"holds version {from_bundle}; re-package the bundle"
        )
    version = from_profile if from_profile is not None else from_bundle
    return "unregistered" if version is None else str(version)


def check_versions(window_versions: set[str], reference: str, source: str, bundle: Path) -> None:
    """Refuse to compare traffic of one model version with the reference of another."""
    other = sorted(window_versions - {reference})
    if other:
        raise DataError(
            f"the window from {source} holds predictions of model version(s) {', '.join(other)}, "
            f"but the reference in {bundle} is for version {reference}; point MODEL_BUNDLE at the "
            "deployed model's bundle, or pass --since the time that version went live"
        )


def window_start(url: str, version: str, window_hours: float, now: datetime) -> datetime:
    """Start the window at the later of `now - window_hours` and the version's first logged row.

    After a rollout the log still holds the previous version's traffic: starting at the moment
    the current version began serving compares only its own rows with its own reference.
    """
    start = now - timedelta(hours=window_hours)
    try:
        first = first_logged(url, version)
    except Exception as exc:  # the same dead-database errors read_log_window reports
        if isinstance(exc, ServiceUnavailable):
            raise
        raise ServiceUnavailable(
            f"prediction log {_hide_password(url)} cannot be read: {type(exc).__name__}"
        ) from None
    return max(start, first) if first is not None else start


def split_versions(raw: pd.DataFrame, version: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep the rows of `version`; count the rows of every other version left out."""
    if MODEL_VERSION not in raw.columns:
        return raw, {}
    logged = raw[MODEL_VERSION].astype(str)
    others = logged[logged != version].value_counts().sort_index()
    return raw[logged == version].reset_index(drop=True), {
        str(k): int(n) for k, n in others.items()
    }


def empty_window(contract: Contract) -> pd.DataFrame:
    """Return a window with no rows: the current version has logged nothing yet."""
    return pd.DataFrame(columns=[*contract.feature_names, REFERENCE_SCORE])


def score_with_bundle(bundle: Path, window: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Score rows that came without a score (a file) with the bundle's model.

    Returns the score column (core.task.summary_scores) and, for a multiclass model, the class it
    predicts: what the prediction log holds for served rows.
    """
    loaded = load_bundle(bundle)
    scores = model_scores(loaded.pipeline, window[contract.feature_names], contract.target)
    out = pd.DataFrame(
        {REFERENCE_SCORE: summary_scores(scores, contract.target)}, index=window.index
    )
    if contract.target.type is TaskType.multiclass:
        out[REFERENCE_PREDICTED] = labels(scores, contract.target, loaded.threshold)
    return out


# --- the command ---------------------------------------------------------------------------------


def discard_report(out_dir: Path) -> None:
    """Remove the previous run's report first: a run that fails leaves no verdict for
    `make retrain` (or the workflow) to act on, rather than the last one's."""
    for name in (JSON_FILE, MARKDOWN_FILE, HTML_FILE):
        (out_dir / name).unlink(missing_ok=True)


def run(args: argparse.Namespace) -> tuple[DriftResult, dict[str, Path]]:
    """Load everything, compare, write the report; return the result and where it went."""
    config = load_config(args.config)
    settings = get_settings()
    bundle = Path(args.bundle) if args.bundle else settings.model_bundle
    out_dir = Path(args.out) if args.out else settings.reports_dir / "drift"
    discard_report(out_dir)
    if args.since:
        try:
            datetime.fromisoformat(args.since)
        except ValueError:
            raise DataError(f"--since {args.since!r} is not an ISO date or time") from None
    with step(f"reference from {bundle}"):
        check_settings_anchor(bundle, settings, args.expected_digest)
        metadata = json.loads((bundle / METADATA_FILE).read_text())
        reference, profile = read_reference(bundle, config.contract)
        version = reference_version(profile, metadata, bundle)
    if args.current:
        path = Path(args.current)
        source = str(path)
        with step(f"current window from {path}"):
            raw = read_table(
                path, "parquet" if path.suffix == ".parquet" else "csv", config.contract
            )
        window_text = f"file {path.name}"
        where: dict[str, str] = {"current": str(path)}
        context_extra: dict[str, Any] = {}
    else:
        raw, window_text, where, other_versions = log_window(args, config, settings, version)
        source = f"the prediction log {window_text}"
        context_extra = {"other_versions": other_versions}
    if len(raw) == 0 and not args.current:
        window, shares = empty_window(config.contract), None
    else:
        window, versions = normalise_window(raw, config.contract, source, logged=not args.current)
        check_versions(versions, version, source, bundle)
        shares = invalid_share(raw, config)
    if REFERENCE_SCORE not in window.columns:
        with step("scores from the bundle's model"):
            scored = score_with_bundle(bundle, window, config.contract)
            for column in scored.columns:
                window[column] = scored[column]
    with step("drift statistics"):
        result = detect_drift(
            reference,
            window,
            config.contract,
            config.drift,
            threshold=_threshold(metadata, config.contract),
            training_metrics=training_metrics(metadata),
            invalid_share=shares,
        )
    context = {
        "window": window_text,
        **where,  # what `make retrain` reads again for the window's feedback labels
        "source": source,
        "model": metadata.get("model_name", config.mlflow.registered_model),
        "model_version": version,
        "bundle": str(bundle),
        "reference_size": profile.get("size"),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **context_extra,
    }
    with step("drift report", str(out_dir)):
        paths = write_report(out_dir, result, context, reference, window, config.contract)
    return result, paths


def log_window(
    args: argparse.Namespace, config: Config, settings: Settings, version: str
) -> tuple[pd.DataFrame, str, dict[str, str], dict[str, int]]:
    """Read the current version's rows from the prediction log; count the others left out.

    Return the rows, the window's description, what `make retrain` reads again, and the count of
    rows per other model version.
    """
    url = settings.prediction_log_url
    limit = args.limit or config.drift.max_rows
    since = (
        datetime.fromisoformat(args.since)
        if args.since
        else window_start(url, version, config.drift.window_hours, datetime.now(UTC))
    )
    window_text = f"since {since.isoformat(timespec='minutes')}"
    with step("current window from the prediction log"):
        raw, other_versions = split_versions(read_log_window(url, since, limit), version)
    where = {"since": since.isoformat(), "limit": str(limit)}
    if TS in raw.columns and len(raw):
        # The newest row read: `make retrain` reads exactly this window again.
        where["until"] = pd.Timestamp(raw[TS].max()).isoformat()
    return raw, window_text, where, other_versions


def estimate_line(result: DriftResult) -> str:
    """One line on the performance estimated before labels (validation/estimate.py)."""
    e = result.estimate
    if e is None or not e.available:
        return f"estimated performance: {e.status if e else 'not computed'}" + (
            f" ({e.reason})" if e and e.reason else ""
        )
    realised = f", realised {e.realised:.3f} on feedback" if e.realised is not None else ""
    return (
        f"estimated {e.metric}: {e.estimated:.3f} vs {e.reference:.3f} on the reference "
        f"(drop {e.drop:+.3f}{realised}; {e.status})"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument(
        "--current", help="CSV or Parquet file to use instead of the prediction log"
    )
    parser.add_argument(
        "--since", help="ISO time the window starts (default: drift.window_hours ago)"
    )
    parser.add_argument("--limit", type=int, help="most rows to read (default: drift.max_rows)")
    parser.add_argument("--bundle", help="model bundle folder (default: MODEL_BUNDLE)")
    parser.add_argument(
        "--expected-digest", help="the bundle's recorded digest (default: MODEL_DIGEST)"
    )
    parser.add_argument("--out", help="report folder (default: REPORTS_DIR/drift)")
    parser.add_argument(
        "--verdict-only",
        action="store_true",
        help="exit 0 on drift too: the verdict is the drift output (GITHUB_OUTPUT) and the report",
    )
    return parser.parse_args(argv)


@entry_point
def _main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result, paths = run(args)
    if result.features:
        rows = [{**r, "status": str(r["status"]).strip("*")} for r in feature_rows(result)[:12]]
        print(table(rows, ["feature", "test", "q-value (BH)", "PSI", "status"]))
    if result.estimate is not None:
        print(estimate_line(result))
    print(
        f"verdict: {result.verdict}" + (f" ({'; '.join(result.reasons)})" if result.reasons else "")
    )
    print(f"report: {paths['markdown']}, {paths['html']}, {paths['json']}")
    github_output(
        get_settings().github_output, drift=str(result.drifted).lower(), verdict=result.verdict
    )
    return DRIFT_EXIT_CODE if result.drifted and not args.verdict_only else 0


def main(argv: list[str] | None = None) -> int:
    """Run the drift check; an unexpected crash exits 70, never the drift code."""
    try:
        return _main(argv)
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        print("error: the drift check crashed (a bug, not a verdict)", file=sys.stderr)
        return CRASH_EXIT_CODE


if __name__ == "__main__":
    raise SystemExit(main())
