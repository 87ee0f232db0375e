"""The stand-ins themselves, driven by act through a small workflow that uses the same pins.

It shows that each stand-in takes the real action's inputs, gives its outputs, and leaves the
state the workflow tests read (artifacts, the image built for real with buildah, signatures,
pull-request records, comments).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from core.net import free_port
from deploy.containers import container_env
from deploy.stand_ins import base_images
from tests.workflows.harness import ROOT, Repo, pinned_actions

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def pin(owner_repo: str) -> str:
    (spec,) = [s for s in pinned_actions() if s.startswith(owner_repo + "@")]
    return spec


def checkout_pin() -> str:
    """Return the workflows' actions/checkout pin (act performs checkout itself, so no stand-in)."""
    (sha,) = set(
        re.findall(
            r"actions/checkout@([0-9a-f]{40})",
            (ROOT / ".github" / "workflows" / "ci.yml").read_text(),
        )
    )
    return f"actions/checkout@{sha}"


WORKFLOW = """
name: stand-ins
on: workflow_dispatch
permissions: {{}}
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    permissions: {{contents: read, packages: write, id-token: write}}
    outputs:
      image: ghcr.io/owner/repo@${{{{ steps.push.outputs.digest }}}}
    steps:
      - uses: {checkout}
        with: {{persist-credentials: false}}
      - uses: ./.github/actions/setup
      - run: mkdir -p out && .venv/bin/python -c "print('from the venv')" > out/a.txt
      - uses: {upload}
        with: {{name: out, path: out/, if-no-files-found: error}}
      - uses: {buildx}
      - id: build
        uses: {build_push}
        with: {{context: image, load: true, tags: "ghcr.io/owner/repo:smoke", build-args: "GREETING=hello"}}
      - env:
          IMAGE_ID: ${{{{ steps.build.outputs.imageid }}}}
        run: |
          docker run --detach --name smoke --read-only --cap-drop=ALL --publish "127.0.0.1:$SMOKE_PORT:8000" "$IMAGE_ID"
          trap 'docker rm --force smoke' EXIT
          for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$SMOKE_PORT/hello.txt" && exit 0; sleep 0.2; done
          docker logs smoke; exit 1
      - uses: {login}
        with: {{registry: ghcr.io, username: owner, password: "${{{{ secrets.GITHUB_TOKEN }}}}"}}
      - id: push
        uses: {build_push}
        with: {{context: image, push: true, sbom: true, provenance: "mode=max", tags: "ghcr.io/owner/repo:v1", build-args: "GREETING=hello"}}
      - uses: {cosign}
      - env:
          IMAGE: ghcr.io/owner/repo@${{{{ steps.push.outputs.digest }}}}
        run: cosign sign --yes "$IMAGE"
  pr:
    needs: build
    runs-on: ubuntu-latest
    timeout-minutes: 5
    permissions: {{contents: write, pull-requests: write}}
    steps:
      - id: app
        uses: {app_token}
        with: {{client-id: "${{{{ vars.BOT_APP_CLIENT_ID }}}}", private-key: "${{{{ secrets.BOT_APP_PRIVATE_KEY }}}}"}}
      - uses: {checkout}
        with: {{persist-credentials: false}}
      - uses: {download}
        with: {{name: out, path: got/}}
      - run: |
          test "$(cat got/a.txt)" = "from the venv"
          mkdir -p reports && echo "the packet for $IMAGE" > reports/pr.md && echo "$IMAGE" > image.txt
        env:
          IMAGE: ${{{{ needs.build.outputs.image }}}}
      - id: cpr
        uses: {cpr}
        with:
          token: ${{{{ steps.app.outputs.token || github.token }}}}
          branch: retrain/drift
          title: Retrain
          body-path: reports/pr.md
          labels: retrain
          add-paths: image.txt
      - uses: {sticky}
        with: {{header: gate, path: reports/pr.md}}
      - env:
          OPERATION: ${{{{ steps.cpr.outputs.pull-request-operation }}}}
        run: echo "operation=$OPERATION"
"""


def test_stand_ins_build_sign_upload_download_and_open_a_pr(tmp_path: Path) -> None:
    repo = Repo.create(tmp_path)
    (repo.work / "image").mkdir()
    (repo.work / "image" / "hello.txt").write_text("hello\n")
    # The template's own Python base (no registry here: the local stand-in deploy/stand_ins.py makes).
    base = base_images(ROOT / "Dockerfile")[0]
    (repo.work / "image" / "Dockerfile").write_text(
        # As the template's Dockerfile: the base (pinned by digest) through an ARG the build can
        # point at the local stand-in of its tag.
        f"ARG BASE={base}\nFROM ${{BASE}}\nARG GREETING=unset\nLABEL greeting=${{GREETING}}\n"
        "WORKDIR /srv\n"
        "COPY hello.txt /srv/\n"
        'CMD ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"]\n'
    )
    workflow = WORKFLOW.format(
        checkout=checkout_pin(),
        upload=pin("actions/upload-artifact"),
        download=pin("actions/download-artifact"),
        buildx=pin("docker/setup-buildx-action"),
        build_push=pin("docker/build-push-action"),
        login=pin("docker/login-action"),
        cosign=pin("sigstore/cosign-installer"),
        app_token=pin("actions/create-github-app-token"),
        cpr=pin("peter-evans/create-pull-request"),
        sticky=pin("marocchino/sticky-pull-request-comment"),
    )
    (repo.work / ".github" / "workflows" / "stand-ins.yml").write_text(workflow)
    repo.commit("stand-in workflow")
    repo.vars["BOT_APP_CLIENT_ID"] = "Iv1.test"
    repo.secrets["BOT_APP_PRIVATE_KEY"] = "not-a-key"
    repo.env["SMOKE_PORT"] = str(free_port())

    first = repo.act("workflow_dispatch", "stand-ins.yml")
    assert first.returncode == 0, first.output[-5000:]
    assert "operation=created" in first.output
    pushed = (repo.state / "registry" / "pushed.txt").read_text().split()
    assert pushed[1] == "ghcr.io/owner/repo:v1" and pushed[0].startswith(
        "ghcr.io/owner/repo@sha256:"
    )
    assert pushed[0] in (repo.state / "registry" / "signatures.txt").read_text()
    assert (repo.state / "app-tokens.txt").read_text().strip() == "Iv1.test"
    assert "the packet" in (repo.state / "comments" / "gate.md").read_text()

    assert sorted(repo.origin_branches()) == ["main", "retrain/drift"]
    (record,) = list((repo.state / "prs").glob("*.json"))
    pr = json.loads(record.read_text())
    assert pr["number"] == 1 and pr["labels"] == ["retrain"] and pr["body"].startswith("the packet")
    # A real build: the pushed digest is the image's, and its label came from the build argument.
    builds = sorted((repo.state / "registry" / "images").glob("sha256-*"))
    assert pushed[0].split("@")[1] in {b.name.replace("sha256-", "sha256:") for b in builds}
    labels = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Labels.greeting}}", "ghcr.io/owner/repo:v1"],
        env=container_env(repo.state),
        capture_output=True,
        text=True,
        check=True,
    )
    assert labels.stdout.strip() == "hello"
