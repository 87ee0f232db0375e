"""After a drift verdict: train a challenger, gate it against the champion, prepare the PR packet.

Usage: python -m orchestration.retrain [--config config.yaml] [--push] [--force] [--repo .]

Reads REPORTS_DIR/drift/report.json (written by `make drift`). With no drift there, it does
nothing. Otherwise, with data.feedback_path set, it merges the drift window's labelled rows into
that table (orchestration/feedback.py); it trains and gates a challenger on the data plus that table through
orchestration/train.py (a dry run: nothing is registered; merging the pull request runs the normal
pipeline, which trains and registers on the same files), writes REPORTS_DIR/retrain/pr.md, and,
only after the gate passed, writes the packet, the updated feedback table included, into the
checkout (retraining/...). With --push it pushes the packet as branch
`retrain/<model>-<window-date>` to drift.retrain_remote instead, unless one is already open for the
model, and leaves the checkout alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.cli import entry_point, github_output, markdown_table, step
from core.config import Config, load_config
from core.errors import ConfigError, DataError, GateRejected
from core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from core.metrics import comparison_rows
from core.settings import Settings, get_settings
from core.templates import render
from orchestration.feedback import FeedbackUpdate, collect
from orchestration.retrain_branch import BranchResult, branch_name, push_retrain_branch
from orchestration.train import train_and_gate
from training.report import PR_COMMENT


@dataclass(frozen=True)
class Challenger:
    """What retraining needs from a training run."""

    passed: bool
    gate: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    champion_version: str | None
    training_report: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def train_challenger(config: Config, settings: Settings) -> Challenger:
    """Train and gate a challenger as a dry run: nothing is logged or registered."""
    comment = settings.reports_dir / "training" / PR_COMMENT
    try:
        result = train_and_gate(config, settings, register=False, log=False)
    except GateRejected as exc:
        return Challenger(
            passed=False,
            gate=str(exc),
            metrics={},
            champion_metrics=None,
            champion_version=None,
            training_report=comment.read_text() if comment.is_file() else "",
        )
    return Challenger(
        passed=bool(result.decision.passed),
        gate=str(result.decision.reason),
        metrics={k: float(v) for k, v in result.metrics.items()},
        champion_metrics=(
            {k: float(v) for k, v in result.champion_metrics.items()}
            if result.champion_metrics
            else None
        ),
        champion_version=result.champion_version,
        training_report=comment.read_text() if comment.is_file() else "",
    )


def metric_rows(challenger: Challenger) -> list[dict[str, object]]:
    """Champion vs challenger, one row per metric the challenger has."""
    return comparison_rows(challenger.metrics, challenger.champion_metrics)


def render_pr(
    drift: dict[str, Any],
    drift_markdown: str,
    challenger: Challenger,
    branch: str,
    feedback: FeedbackUpdate | None = None,
    feedback_file: str | None = None,
) -> str:
    """Render the pull-request body (templates/retrain_pr.md.j2): why, the drift, the challenger."""
    return render(
        "retrain_pr.md.j2",
        context=drift.get("context", {}),
        reasons=drift.get("reasons", []),
        drift_markdown=drift_markdown,
        challenger=challenger,
        metric_table=markdown_table(metric_rows(challenger)),
        feedback=feedback,
        feedback_file=feedback_file,
        folder=packet_folder(branch),
    )


def packet_folder(branch: str) -> str:
    """Return the folder of the retraining packet in the repository, named after the branch."""
    return f"retraining/{branch.split('/', 1)[1]}"


Trainer = Callable[[Config, Settings], Challenger]


def retrain(
    config: Config,
    settings: Settings,
    *,
    repo: Path,
    push: bool = False,
    force: bool = False,
    trainer: Trainer = train_challenger,
) -> BranchResult | None:
    """Do the retraining step; return what happened to the branch (None when nothing was pushed)."""
    drift_dir = settings.reports_dir / "drift"
    report_path = drift_dir / "report.json"
    if not report_path.is_file():
        raise DataError(f"{report_path} not found: run make drift first")
    try:
        drift = json.loads(report_path.read_text())
    except ValueError:
        raise DataError(f"{report_path} is not valid JSON; run make drift again") from None
    if not drift.get("drifted") and not force:
        print(f"no drift in {report_path} (verdict: {drift.get('verdict')}): nothing to retrain")
        return None
    context = drift.get("context", {})
    model = str(context.get("model") or config.mlflow.registered_model)
    window_date = str(context.get("created_at", ""))[:10]
    branch = branch_name(model, window_date)
    out = settings.reports_dir / "retrain"
    feedback = collect(config, settings, context)
    feedback_file = repository_path(config, repo)
    with tempfile.TemporaryDirectory(prefix="retrain-feedback-") as tmp:
        train_config = config
        if feedback is not None and feedback.changed:
            # Train on the merged table from a temporary file: the checkout gets it only with
            # the packet, after the gate passed.
            merged = atomic_write_bytes(Path(tmp) / "feedback.csv", feedback.csv)
            data = config.data.model_copy(update={"feedback_path": merged})
            train_config = config.model_copy(update={"data": data})
        with step("train and gate a challenger", str(settings.reports_dir / "training")):
            challenger = trainer(train_config, settings)
    drift_markdown = (drift_dir / "report.md").read_text()
    pr = render_pr(drift, drift_markdown, challenger, branch, feedback, feedback_file)
    atomic_write_text(out / "pr.md", pr)
    atomic_write_json(out / "challenger.json", asdict(challenger))
    print(f"✓ pull-request body → {out / 'pr.md'}")
    if not challenger.passed:
        raise GateRejected(
            f"the challenger failed the gate, so no branch is pushed: {challenger.gate}"
        )
    folder = packet_folder(branch)
    files = {
        f"{folder}/pr.md": pr.encode(),
        f"{folder}/drift-report.md": drift_markdown.encode(),
        f"{folder}/drift-report.json": report_path.read_bytes(),
        f"{folder}/challenger.json": (out / "challenger.json").read_bytes(),
    }
    html = drift_dir / "report.html"
    if html.is_file():
        files[f"{folder}/drift-report.html"] = html.read_bytes()
    if challenger.training_report:
        files[f"{folder}/training-report.md"] = challenger.training_report.encode()
    if feedback is not None and feedback.changed and feedback_file is not None:
        files[feedback_file] = feedback.csv
    if not push:
        # On GitHub the workflow opens the pull request (create-pull-request commits the working
        # tree), so the packet goes into the checkout instead of onto a branch of its own.
        for name, content in files.items():
            atomic_write_bytes(repo / name, content)
        print(f"✓ retraining packet written to {repo / folder} (no push)")
        github_output(settings.github_output, branch=branch, created="false", folder=folder)
        return None
    remote = config.drift.retrain_remote
    with step(f"branch {branch} on {remote}"):
        result = push_retrain_branch(
            repo,
            remote,
            config.drift.retrain_base,
            model,
            window_date,
            files,
            f"Retrain {model}: drift in traffic up to {window_date}\n\n"
            + "\n".join(drift.get("reasons", [])),
        )
    print(result.reason)
    github_output(
        settings.github_output,
        branch=result.name,
        created=str(result.created).lower(),
        folder=folder,
    )
    return result


def repository_path(config: Config, repo: Path) -> str | None:
    """Return data.feedback_path as a path inside the repository `repo` (None when unset).

    A config outside `repo` (tests, a config passed by path) is taken to sit at its root.
    """
    relative = config.data.feedback_path
    if relative is None:
        return None
    try:
        return (config.root / relative).resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        if relative.is_absolute() or ".." in relative.parts:
            raise ConfigError(
                f"data.feedback_path {relative} is outside the repository {repo}: "
                "make retrain cannot put it into the pull request"
            ) from None
        return relative.as_posix()


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--repo", type=Path, default=Path("."), help="git repository to push from")
    # Pushing is opt-in, so a run from a laptop never publishes a branch by accident.
    parser.add_argument(
        "--push",
        action="store_true",
        help="push the packet as branch retrain/<model>-<date> instead of writing it into the "
        "checkout (retraining/...)",
    )
    parser.add_argument("--force", action="store_true", help="retrain even without a drift verdict")
    args = parser.parse_args(argv)
    retrain(
        load_config(args.config),
        get_settings(),
        repo=args.repo,
        push=args.push,
        force=args.force,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
