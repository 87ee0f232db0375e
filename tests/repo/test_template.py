"""Checks of the template itself: what the README and workflows call exists, help lists everything."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MAKE_CALL = re.compile(r"(?:^|`|\$\(|[ \t])make[ \t]+([a-z][a-z0-9-]*)", re.M)


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_-]*):", text, flags=re.M))


def documented_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_-]*):.*## ", text, flags=re.M))


def workflow_files() -> list[Path]:
    return sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def test_every_target_is_documented_and_help_lists_it() -> None:
    lines = re.findall(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
    phony = {target for line in lines for target in line.split()}
    undocumented = phony - documented_targets()
    assert not undocumented, f"targets without a '## description': {sorted(undocumented)}"
    out = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = {
        line.split()[0] for line in re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines() if line.strip()
    }
    assert listed == documented_targets()


def test_readme_calls_only_existing_targets_and_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    called = set(MAKE_CALL.findall(readme))
    assert {"pipeline", "test"} <= called
    missing = called - make_targets()
    assert not missing, f"README calls make targets that do not exist: {sorted(missing)}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)


def test_workflows_call_only_existing_make_targets() -> None:
    targets = make_targets()
    for wf in workflow_files():
        doc = yaml.safe_load(wf.read_text())
        for job_name, job in doc.get("jobs", {}).items():
            for step in job.get("steps", []):
                run = step.get("run")
                if not run:
                    continue
                for target in MAKE_CALL.findall(run):
                    assert target in targets, (
                        f"{wf.name}:{job_name} calls missing target make {target}"
                    )


def test_every_stage_package_exists_with_its_tests() -> None:
    for package in [
        "core",
        "validation",
        "training",
        "serving",
        "scoring",
        "deploy",
        "orchestration",
    ]:
        assert (ROOT / package / "__init__.py").exists()
        assert (ROOT / "tests" / package).is_dir(), f"tests/{package} should mirror the package"
