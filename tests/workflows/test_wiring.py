"""The workflow files' wiring, run with act, with the stage targets replaced by small stubs.

The stubs in `stubs.mk` (appended to the Makefile of the test's copy only) do what each stage promises at its
edge: exit codes (gate rejected = 4, drift = DRIFT_EXIT_CODE), the files the workflows read
(`reports/training/pr_comment.md`, `build/bundle/`, `reports/retrain/pr.md`) and, for the deploy, a
commit pushed to `origin`. What is under test here is the YAML: job order and conditions, outputs
and artifacts between jobs, the summaries, the PR and comment steps. The real stages are run by
`test_act.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.net import free_port
from tests.workflows.harness import Repo, git

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STUBS = (Path(__file__).resolve().parent / "stubs.mk").read_text()

DOCKERFILE = """FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1
COPY ready /srv/ready
CMD ["python", "-m", "http.server", "8000", "--bind", "0.0.0.0"]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo.create(tmp_path)
    with (repo.work / "Makefile").open("a") as f:
        f.write(STUBS)
    (repo.work / "Dockerfile").write_text(DOCKERFILE)
    (repo.work / "ready").write_text("ready\n")
    # The stub image's context is everything (the template's .dockerignore is for the real image).
    (repo.work / ".dockerignore").write_text("")
    staging = repo.work / "infra" / "k8s" / "overlays" / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "kustomization.yaml").write_text("images: []\n")
    repo.commit("stubs for the wiring tests")
    # The workflows smoke-test the image on 127.0.0.1:8000; the docker stand-in maps that port.
    repo.env["SMOKE_PORT"] = str(free_port())
    return repo


def test_pipeline_hands_the_signed_digest_to_the_gitops_commit(repo: Repo) -> None:
    before = repo.origin_log()
    run = repo.act("push", "pipeline.yml")
    assert run.returncode == 0, run.output[-5000:]
    for job in ("validate, train, gate, register, package", "build, smoke-test, push, sign"):
        assert run.succeeded(job), job
    assert run.succeeded("deploy to staging (GitOps commit)")
    assert not run.ran("smoke-test staging")  # STAGING_URL is not set
    image, tag = (run.state / "registry" / "pushed.txt").read_text().split()
    assert tag.endswith(":" + before[0].split()[0])  # tagged with the commit sha
    assert image in (run.state / "registry" / "signatures.txt").read_text()
    builds = [
        json.loads(p.read_text())
        for p in (run.state / "registry" / "images").glob("*/build-*.json")
    ]
    assert {(b["loaded"], b["pushed"]) for b in builds} == {(True, False), (False, True)}
    pushed = next(b for b in builds if b["pushed"])
    assert pushed["sbom"] == "true" and pushed["provenance"] == "mode=max"
    # The bundle artifact of the train job is inside the image's build context.
    rootfs = next((run.state / "registry" / "images").glob("sha256-*")) / "rootfs"
    assert (rootfs / "build" / "bundle" / "model.txt").read_text() == "stub model\n"
    after = repo.origin_log()
    assert len(after) == len(before) + 1 and image in after[0]
    overlay = yaml.safe_load(
        git(repo.origin, "show", "main:infra/k8s/overlays/staging/kustomization.yaml")
    )
    assert overlay["images"][0]["digest"] == image.split("@")[1]
    assert "roc_auc >= 0.8" in run.output  # the gate table went to the job summary


def test_pipeline_with_a_rejected_gate_stops_with_the_table_and_deploys_nothing(repo: Repo) -> None:
    config = yaml.safe_load((repo.work / "config.yaml").read_text())
    config["gate"]["rules"] = [{"metric": "roc_auc", "min": 0.9999}]
    (repo.work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    repo.commit("impossible gate")
    before = repo.origin_log()
    run = repo.act("push", "pipeline.yml")
    assert run.returncode != 0
    assert "The pipeline stopped" in run.output and "roc_auc >= 0.9999" in run.output
    assert not run.ran("build, smoke-test, push, sign")
    assert not run.ran("deploy to staging (GitOps commit)")
    assert repo.origin_log() == before
    assert not (run.state / "registry").exists()
    assert (run.state / "artifacts" / "reports" / "training" / "pr_comment.md").exists()
    assert not (run.state / "artifacts" / "bundle").exists()


def test_drift_opens_one_labelled_pr_and_a_second_run_updates_it(repo: Repo) -> None:
    repo.env["STUB_DRIFT"] = "10"
    first = repo.act("workflow_dispatch", "drift.yml")
    assert first.returncode == 0, first.output[-5000:]
    assert "Retraining pull request created" in first.output
    second = repo.act("workflow_dispatch", "drift.yml")
    assert second.returncode == 0, second.output[-5000:]
    assert "Retraining pull request updated" in second.output
    assert sorted(repo.origin_branches()) == ["main", "retrain/drift"]
    (record,) = (repo.state / "prs").glob("*.json")
    pr = json.loads(record.read_text())
    assert pr["number"] == 1 and pr["labels"] == ["retrain"]
    assert pr["body"].startswith("## Drift table")
    changed = git(repo.origin, "diff", "--name-only", "main", "retrain/drift").splitlines()
    assert changed == ["retrain-note.txt"]


def test_no_drift_retrains_nothing(repo: Repo) -> None:
    run = repo.act("workflow_dispatch", "drift.yml")
    assert run.returncode == 0, run.output[-5000:]
    assert run.succeeded("drift check")
    assert not run.ran("retrain and open the pull request")
    assert repo.origin_branches() == ["main"]


def test_a_drift_error_fails_the_run_and_retrains_nothing(repo: Repo) -> None:
    repo.env["STUB_DRIFT"] = "6"  # a service unreachable
    run = repo.act("workflow_dispatch", "drift.yml")
    assert run.returncode != 0
    assert not run.ran("retrain and open the pull request")


def test_pull_request_ci_posts_the_gate_table_as_one_comment(repo: Repo) -> None:
    # The comment job and what it needs (config, dry run); lint and test would run the real suite.
    run = repo.act("pull_request", "ci.yml", job="comment")
    assert run.returncode == 0, run.output[-5000:]
    assert run.succeeded("gate table on the pull request")
    (comment,) = (repo.state / "comments").glob("*.md")
    assert comment.name == "gate.md" and "roc_auc >= 0.8" in comment.read_text()


def test_promote_proposes_the_staging_digest_for_production(repo: Repo) -> None:
    run = repo.act("workflow_dispatch", "promote.yml")
    assert run.returncode == 0, run.output[-5000:]
    (record,) = (repo.state / "prs").glob("*.json")
    pr = json.loads(record.read_text())
    assert pr["branch"] == "promote/production" and pr["labels"] == ["promote"]
    assert pr["body"].startswith("# Promote model version")  # the body make promote wrote
    assert git(repo.origin, "diff", "--name-only", "main", "promote/production").splitlines() == [
        "infra/k8s/overlays/production/kustomization.yaml"
    ]
