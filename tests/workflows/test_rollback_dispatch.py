"""rollback-dispatch.yml under act: an aborted canary's notification opens one revert pull request.

The dispatch carries the client_payload that infra/k8s/base/rollout-notifications.yaml makes Argo
Rollouts send (no controller runs here: the payload stands in for its webhook call). The workflow
runs the real `make rollback-aborted` against the bare origin; create-pull-request is the stand-in
(one record per branch under STANDIN_STATE/prs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deploy.gitops import ImageRef, Pin, read_pin, set_image
from deploy.rollback_dispatch import Aborted, overlay_of
from tests.workflows import harness
from tests.workflows.harness import Repo, git

WORKFLOW = "rollback-dispatch.yml"
JOB = "propose the revert of the aborted canary"
IMAGE = "ghcr.io/acme/churn-api"
STAGING = "infra/k8s/overlays/staging/kustomization.yaml"
ABORT_MESSAGE = 'Metric "score-distance" assessed Failed due to failed (1) > failureLimit (0)'


def payload(model_version: str) -> dict[str, Any]:
    """The client_payload Argo Rollouts' template renders for an abort in staging."""
    return {
        "rollout": "model-api",
        "namespace": "mlops-staging",
        "model_version": model_version,
        "message": "RolloutAborted: Rollout aborted update to revision 2",
        "analysis": {"name": "model-api-7d9f-2-1", "status": "Failed", "message": ABORT_MESSAGE},
    }


class _EventJson:
    """`json` for the harness, adding the repository_dispatch fields its fixed payload lacks."""

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return json.dumps({**obj, **self.extra}, **kwargs)


def dispatch(repo: Repo, monkeypatch: pytest.MonkeyPatch, client_payload: dict[str, Any]) -> Any:
    extra = {"action": "canary-aborted", "client_payload": client_payload}
    with monkeypatch.context() as patch:
        patch.setattr(harness, "json", _EventJson(extra))
        return repo.act("repository_dispatch", WORKFLOW)


def prs(repo: Repo) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((repo.state / "prs").glob("*.json"))]


def test_the_payload_names_an_overlay_by_namespace(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    assert overlay_of(root, "mlops-production") == "production"
    aborted = Aborted.from_payload(payload("8"))
    assert (aborted.phase, aborted.message) == ("Failed", ABORT_MESSAGE)
    with pytest.raises(Exception, match="lacks model_version"):
        Aborted.from_payload({"rollout": "model-api", "namespace": "mlops-staging"})


@pytest.mark.slow  # act runs the workflow
def test_an_aborted_canary_opens_one_revert_and_a_merged_one_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo.create(tmp_path)
    for digest, version in (("a" * 64, "7"), ("b" * 64, "8")):
        set_image(repo.work, "staging", Pin(ImageRef(IMAGE, f"sha256:{digest}"), version))
    git(repo.work, "pull", "-q", "origin", "main")
    main_before = repo.origin_log()

    first = dispatch(repo, monkeypatch, payload("8"))
    assert first.succeeded(JOB), first.output[-4000:]
    (pr,) = prs(repo)
    assert pr["labels"] == ["rollback", "canary-aborted"]
    assert ABORT_MESSAGE.replace("|", "\\|") in pr["body"]
    assert "| model version | 8 | 7 |" in pr["body"]
    branch_pin = read_pin(git(repo.origin, "show", f"rollback/staging:{STAGING}"), STAGING)
    assert branch_pin.model_version == "7"
    assert branch_pin.image.digest == "sha256:" + "a" * 64
    assert repo.origin_log() == main_before, "the revert is a pull request, never a push to main"

    again = dispatch(repo, monkeypatch, payload("8"))
    assert again.succeeded(JOB), again.output[-4000:]
    assert [p["number"] for p in prs(repo)] == [pr["number"]], "a second PR for the same abort"

    # The pull request is merged: main pins version 7 again; a late notification changes nothing.
    git(repo.work, "fetch", "-q", "origin", "rollback/staging")
    git(repo.work, "merge", "-q", "--ff-only", "FETCH_HEAD")
    git(repo.work, "push", "-q", "origin", "main")
    branches = repo.origin_branches()
    late = dispatch(repo, monkeypatch, payload("8"))
    assert late.succeeded(JOB), late.output[-4000:]
    assert "nothing to revert" in late.output
    assert [p["number"] for p in prs(repo)] == [pr["number"]]
    assert repo.origin_branches() == branches
