"""A fork's life on GitHub, played with act: the workflows in order, the real stages, one registry.

One test, in the order a team lives it, against a bare git "origin" and a real MLflow tracking
server (the team's registry, `vars.MLFLOW_TRACKING_URI`): a pull request (ci.yml: the dry run's
gate table as the comment, the registry only read) → merge → pipeline.yml (train, `candidate`,
a real image build, the staging commit, `staging` alias, digest tag) → promote.yml (one pull
request with the model card) → merge → aliases.yml (`production`) → `make serve` of the
`production` version takes drifted traffic and its feedback → drift.yml (one retraining pull
request with its packet; the next run updates it) → merge → pipeline.yml (the challenger against
the `production` champion, to staging) → rollback.yml (`make rollback ENV=staging`) → merge →
aliases.yml (`staging` follows the revert).

Only GitHub-hosted actions are stand-ins (tests/workflows/stand-ins, README.md there); every
`make` target is the real one. Each step is checked on the remote, the registry and the reports.
The push pipeline's own checks (SBOM, provenance, one GitOps commit) live here too, so no other
test runs a whole pipeline.yml again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.columns import FEEDBACK, MODEL_VERSION
from core.net import free_port
from core.prediction_log import read_predictions
from deploy.gitops import OVERLAYS_DIR, read_pin
from tests.workflows.harness import ActRun, Repo, git

# Two pipeline runs build and run the image, two retrain: far beyond the suite's default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(5400)]

# The fork names its own model (its first pull request), so the shared server holds only its own.
MODEL = "lifecycle-model"
PIPELINE_TIMEOUT = 1800
# Production requests (all labelled later): above drift.min_samples, so the drift check decides.
TRAFFIC = 400


def overlay_pin(repo: Repo, env: str, ref: str = "main") -> Any:
    path = (OVERLAYS_DIR / env / "kustomization.yaml").as_posix()
    return read_pin(git(repo.origin, "show", f"{ref}:{path}"), path)


def pr_record(repo: Repo, branch: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(
        (repo.state / "prs" / (branch.replace("/", "__") + ".json")).read_text()
    )
    return record


def ok(run: ActRun, *jobs: str) -> None:
    """The run succeeded, with each named job; else show the tail of its log."""
    assert run.returncode == 0, run.output[-8000:]
    for job in jobs:
        assert run.succeeded(job), f"{job}: {run.output[-8000:]}"


def make(repo: Repo, *args: str, env: dict[str, str]) -> None:
    """Run a real make target in the work tree (what a person runs on a laptop)."""
    done = subprocess.run(
        ["make", *args],
        cwd=repo.work,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def push_pipeline(repo: Repo) -> None:
    """The push to main: pipeline.yml runs every job to success up to the staging commit."""
    run = repo.act("push", "pipeline.yml", timeout=PIPELINE_TIMEOUT)
    ok(
        run,
        "validate, train, gate, register, package",
        "build, smoke-test, push, sign",
        "deploy to staging (GitOps commit)",
    )


def merge_overlay_change(repo: Repo, branch: str) -> str:
    """Merge an overlay pull request, run aliases.yml on the push; return the branch's commit."""
    commit = git(repo.origin, "rev-parse", branch)
    repo.merge(branch)
    ok(repo.act("push", "aliases.yml"), "registry aliases follow the overlays")
    return commit


@contextmanager
def service(repo: Repo, env: dict[str, str], log: Path) -> Iterator[str]:
    """`make serve` of the bundle at env's MODEL_BUNDLE on a free port; SIGTERM to it at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "serve"],
            cwd=repo.work,
            env={**os.environ, **env, "UVICORN_PORT": str(port), "WEB_CONCURRENCY": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the service's own process group, started above
        proc.wait(timeout=60)


def test_a_fork_lives_through_every_workflow_with_the_real_stages(
    tmp_path: Path, mlflow_server: str
) -> None:
    from mlflow import MlflowClient

    started = time.monotonic()
    timings: dict[str, float] = {}
    repo = Repo.create(tmp_path)
    repo.vars["MLFLOW_TRACKING_URI"] = mlflow_server
    repo.env["SMOKE_PORT"] = str(free_port())
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)

    def aliases() -> dict[str, str]:
        return {a: v for a, v in client.get_registered_model(MODEL).aliases.items()}

    def tags(version: str) -> dict[str, str]:
        return dict(client.get_model_version(MODEL, version).tags)

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 1)

    # 1. A pull request: the fork names its model. ci.yml's dry run posts the gate table.
    git(repo.work, "checkout", "-q", "-b", "name-the-model")
    config_file = repo.work / "config.yaml"
    raw = yaml.safe_load(config_file.read_text())
    raw["mlflow"]["registered_model"] = MODEL
    raw["mlflow"]["experiment"] = MODEL
    config_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    git(repo.work, "commit", "-q", "-am", "Name the model")
    git(repo.work, "push", "-q", "origin", "name-the-model")
    run = repo.act("pull_request", "ci.yml", job="comment", number=1)
    ok(run, "config and data", "training dry run", "gate table on the pull request")
    comment = (repo.state / "comments" / "gate.md").read_text()
    assert "## Gate: ✅ passed" in comment and "| metric | challenger | baseline |" in comment
    assert "No champion to compare against" in comment
    assert "Plots and reports of this dry run: [dry-run-reports](file://" in comment
    # Read-only: the dry run registered nothing on the team's server.
    assert client.search_registered_models(f"name = '{MODEL}'") == []
    lap("pull request, ci.yml")

    # 2. Merge → pipeline.yml: train, `candidate`, the image, the staging commit and alias.
    merged = repo.merge("name-the-model")
    push_pipeline(repo)
    image_v1 = (repo.state / "registry" / "pushed.txt").read_text().split()[0]
    assert re.fullmatch(r"ghcr\.io/owner/repo@sha256:[0-9a-f]{64}", image_v1)
    assert image_v1 in (repo.state / "registry" / "signatures.txt").read_text()
    staging = overlay_pin(repo, "staging")
    assert (str(staging.image), staging.model_version) == (image_v1, "1")
    # One GitOps commit on the remote, touching the staging overlay only.
    gitops_commit = git(repo.origin, "rev-parse", "main")
    assert git(repo.origin, "rev-parse", "main~1") == merged
    assert git(repo.origin, "log", "-1", "--format=%s", "main").startswith("deploy(staging)")
    changed = git(repo.origin, "diff", "--name-only", merged, "main").splitlines()
    assert changed == ["infra/k8s/overlays/staging/kustomization.yaml"]
    assert aliases() == {"candidate": "1", "staging": "1"}
    assert tags("1")["staging_image"] == image_v1
    assert tags("1")["staging_commit"] == gitops_commit
    # The image pushed carries the bundle's labels (the build arguments of make image-args).
    (build,) = [
        json.loads(p.read_text())
        for p in (repo.state / "registry" / "images").glob("*/build-*.json")
        if json.loads(p.read_text())["pushed"]
    ]
    assert {"MODEL_NAME=" + MODEL, "MODEL_VERSION=1"} <= set(build["build_args"])
    assert build["sbom"] == "true" and build["provenance"] == "mode=max"
    assert image_v1.endswith(build["digest"])
    lap("merge, pipeline.yml (version 1)")

    # 3. promote.yml: one pull request pinning staging's digest in production, with the evidence.
    repo.pull()
    run = repo.act("workflow_dispatch", "promote.yml")
    ok(run, "propose the staging digest for production")
    pr = pr_record(repo, "promote/production")
    assert pr["labels"] == ["promote"] and pr["state"] == "open"
    assert pr["body"].startswith("# Promote model version 1 from staging to production")
    assert "## Gate history of version 1" in pr["body"] and "# Model card:" in pr["body"]
    assert f"overlay commit `{gitops_commit[:12]}`" in pr["body"]
    changed = git(repo.origin, "diff", "--name-only", "main", "promote/production").splitlines()
    assert changed == ["infra/k8s/overlays/production/kustomization.yaml"]
    assert aliases() == {"candidate": "1", "staging": "1"}  # nothing moves before the merge
    lap("promote.yml")

    # 4. Merge → aliases.yml: `production` follows the merged overlay.
    # The overlay commit is the one that changed the overlay (the pull request's), not the merge.
    promotion = merge_overlay_change(repo, "promote/production")
    assert overlay_pin(repo, "production").image == staging.image
    assert aliases() == {"candidate": "1", "staging": "1", "production": "1"}
    assert tags("1")["production_commit"] == promotion
    assert tags("1")["production_image"] == image_v1
    lap("merge, aliases.yml (production)")

    # 5. Production serves: `make serve` builds the bundle of the `production` version from the
    # registry and logs every prediction; drifted traffic comes in, and its ground truth after it.
    repo.pull()
    log_url = f"sqlite:///{tmp_path / 'predictions.db'}"
    serving = {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MODEL_URI": f"models:/{MODEL}@production",
        "MODEL_BUNDLE": str(tmp_path / "production-bundle"),
        "PREDICTION_LOG_URL": log_url,
        "REPORTS_DIR": str(tmp_path / "serving-reports"),
        "AUTH": "off",
    }
    with service(repo, serving, tmp_path / "serve.log") as url:
        assert httpx.get(f"{url}/model", timeout=10).json()["version"] == "1"
        make(repo, "simulate", "SCENARIO=covariate", f"N={TRAFFIC}", f"URL={url}", env=serving)
    logged = read_predictions(log_url)  # read after the graceful stop: nothing is lost
    assert len(logged) == TRAFFIC and set(logged[MODEL_VERSION]) == {"1"}
    assert logged[FEEDBACK].notna().all()
    lap("production serves drifted traffic")

    # 6. drift.yml: drift in the production traffic → one retraining pull request with its packet.
    repo.secrets["PREDICTION_LOG_URL"] = log_url
    run = repo.act("workflow_dispatch", "drift.yml", timeout=PIPELINE_TIMEOUT)
    ok(run, "drift check", "retrain and open the pull request")
    drift = json.loads((repo.state / "artifacts" / "drift-report" / "report.json").read_text())
    assert drift["drifted"] and drift["n_current"] == TRAFFIC, drift["reasons"]
    assert drift["context"]["model_version"] == "1"
    assert [b for b in repo.origin_branches() if b != "main"] == ["retrain/drift"]
    assert sorted(p.name for p in (repo.state / "prs").glob("*.json")) == [
        "promote__production.json",
        "retrain__drift.json",
    ]
    pr = pr_record(repo, "retrain/drift")
    assert pr["labels"] == ["retrain"] and pr["state"] == "open"
    assert pr["body"].startswith(f"# Retrain {MODEL}: drift in traffic")
    assert "Champion: version 1. Gate: **passed**" in pr["body"]
    # The packet: the pull request's text, the drift report and the challenger beside the champion.
    packet = git(repo.origin, "ls-tree", "-r", "--name-only", "retrain/drift", "retraining/")
    names = {Path(name).name for name in packet.split()}
    assert {"pr.md", "drift-report.json", "drift-report.html", "challenger.json"} <= names
    (folder,) = {Path(name).parent for name in packet.split()}
    assert git(repo.origin, "show", f"retrain/drift:{folder}/pr.md") == pr["body"].strip()
    # The labelled traffic is in the pull request: its merge trains on what was gated.
    shipped = git(repo.origin, "show", "retrain/drift:data/feedback.csv")
    assert len(shipped.splitlines()) == 1 + TRAFFIC
    # A dry run: nothing registered, no alias moved.
    assert aliases() == {"candidate": "1", "staging": "1", "production": "1"}
    assert [v.version for v in client.search_model_versions(f"name = '{MODEL}'")] == ["1"]
    lap("drift.yml (retraining pull request)")

    # The next day's run, the traffic still drifted: the same pull request is updated, not a second.
    run = repo.act("workflow_dispatch", "drift.yml", timeout=PIPELINE_TIMEOUT)
    ok(run, "drift check", "retrain and open the pull request")
    assert f"create-pull-request: updated #{pr['number']} from retrain/drift" in run.output
    assert [b for b in repo.origin_branches() if b != "main"] == ["retrain/drift"]
    assert len(list((repo.state / "prs").glob("*.json"))) == 2
    lap("drift.yml again (the same pull request)")

    # 7. Merge → pipeline.yml: the challenger against the production champion, then staging.
    repo.merge("retrain/drift")
    push_pipeline(repo)
    result = json.loads(
        (repo.state / "artifacts" / "reports" / "training" / "result.json").read_text()
    )
    assert result["passed"] and result["champion_version"] == "1"
    assert (result["model_version"], result["data"]["feedback_rows"]) == ("2", TRAFFIC)
    image_v2 = (repo.state / "registry" / "pushed.txt").read_text().splitlines()[-1].split()[0]
    assert image_v2 != image_v1
    staging_v2 = overlay_pin(repo, "staging")
    assert (str(staging_v2.image), staging_v2.model_version) == (image_v2, "2")
    assert overlay_pin(repo, "production").image == staging.image  # production did not move
    deploy_v2 = git(repo.origin, "rev-parse", "main")
    assert aliases() == {"candidate": "2", "staging": "2", "production": "1"}
    assert (tags("2")["staging_image"], tags("2")["staging_commit"]) == (image_v2, deploy_v2)
    lap("merge, pipeline.yml (version 2 against the champion)")

    # 8. rollback.yml (`make rollback ENV=staging`): the revert as a pull request; merged, the
    # staging alias follows the overlay back to version 1.
    repo.pull()
    run = repo.act("workflow_dispatch", "rollback.yml", inputs={"environment": "staging"})
    ok(run, "propose the revert of the overlay's last image change")
    pr = pr_record(repo, "rollback/staging")
    assert pr["labels"] == ["rollback"] and pr["state"] == "open"
    assert pr["body"].startswith("# Roll staging back to model version 1")
    changed = git(repo.origin, "diff", "--name-only", "main", "rollback/staging").splitlines()
    assert changed == ["infra/k8s/overlays/staging/kustomization.yaml"]
    assert aliases()["staging"] == "2"  # the alias follows the merge, not the proposal
    revert = merge_overlay_change(repo, "rollback/staging")
    assert overlay_pin(repo, "staging").image == staging.image
    assert aliases() == {"candidate": "2", "staging": "1", "production": "1"}
    assert (tags("1")["staging_image"], tags("1")["staging_commit"]) == (image_v1, revert)
    lap("rollback.yml, merge, aliases.yml (staging back to 1)")

    timings["total"] = round(time.monotonic() - started, 1)
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=1))
    print("lifecycle timings (s):", json.dumps(timings))
