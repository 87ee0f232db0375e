"""`make validate`: real GX on real files; every bad file is one clear line and exit code 3."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.checks import validate_features
from core.config import Config, load_config
from core.data import read_table
from core.rules import Check, contract_rules
from core.settings import get_settings
from tests.conftest import CHURN_CONFIG, CONFIGS, ROOT, TASK_CONFIGS
from tests.validation.conftest import FILE_CASES
from validation import validate


@pytest.fixture
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point REPORTS_DIR at tmp_path for the command under test, through the settings."""
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    yield tmp_path / "reports" / "validation"
    get_settings.cache_clear()


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `make validate`'s main on the churn fixture config unless `args` name another."""
    if "--config" not in args:
        args = ["--config", str(CHURN_CONFIG), *args]
    code = validate.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# Unreadable files fail while reading, before GX is imported: these tests stay fast.
FILE_MESSAGES = {
    "empty": "the file is empty",
    "header only": "only a header, no data rows",
    "ragged rows": "malformed CSV",
    "wrong delimiter": "looks semicolon-separated, not comma-separated",
    "non-UTF-8": "not UTF-8",
    "not found": "not found",
}


@pytest.mark.parametrize("kind", FILE_CASES)
def test_unreadable_file_is_one_line_and_exit_3(
    kind: str,
    bad_file: Callable[[str], Path],
    reports: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = bad_file(kind)
    code, _, err = run(["--data", str(path), "--no-docs"], capsys)
    assert code == 3
    line = one_error_line(err)
    assert str(path) in line and FILE_MESSAGES[kind] in line
    assert not (reports / "result.json").exists()


# Each bad table: the words the one-line error must contain (column names come from `names`).
FRAME_MESSAGES: dict[str, list[str]] = {
    "missing column": ["missing: {integer}"],
    "extra column": ["unexpected: notes", "unknown_columns"],
    "wrong type": ["{numeric}", "type", "'abc'"],
    "unseen category": ["{categorical}", "'Never seen'"],
    "out of range": ["{integer}", "2 unexpected", "-3", "99999"],
    "not 0/1": ["{boolean}", "in {{0, 1}}", "e.g. 2"],
    "nulls": ["{numeric}", "not null", "2 unexpected"],
    "duplicate ids": ["{id}", "unique", "2 unexpected"],
    "single class": ["{target}", "missing: {positive}"],
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(FRAME_MESSAGES))
def test_bad_table_fails_naming_column_rule_and_values(
    kind: str,
    bad_file: Callable[[str], Path],
    names: dict[str, str],
    config: Config,
    reports: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = bad_file(kind)
    code, out, err = run(["--data", str(path), "--no-docs"], capsys)
    assert code == 3, out + err
    line = one_error_line(err)
    fill = {**names, "positive": config.contract.target.positive}
    for fragment in FRAME_MESSAGES[kind]:
        assert fragment.format(**fill) in line, f"{fragment!r} not in {line}"
    # The table on stdout marks the failure too, and the result is saved with success false.
    assert re.search(r"\bfailed\b", out)
    result = json.loads((reports / "result.json").read_text())
    assert result["success"] is False
    assert result["meta"]["rows"] > 0


FEATURE_CASES = [
    "missing column",
    "wrong type",
    "unseen category",
    "out of range",
    "not 0/1",
    "nulls",
]


@pytest.mark.slow
@pytest.mark.parametrize("kind", FEATURE_CASES)
def test_fast_feature_check_agrees_with_the_gx_suite(
    kind: str,
    bad_file: Callable[[str], Path],
    config: Config,
    reports: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = bad_file(kind)
    assert run(["--data", str(path), "--no-docs"], capsys)[0] == 3
    result = json.loads((reports / "result.json").read_text())
    rules = contract_rules(config)
    gx_columns: set[str] = set()
    gx_counts: dict[str, int] = {}
    for r in result["results"]:
        rule = rules[r["expectation_config"]["meta"]["rule"]]
        if rule.column not in config.contract.feature_names or r["success"]:
            continue
        gx_columns.add(rule.column)
        if rule.check in (Check.not_null, Check.in_set, Check.between) and r["result"]:
            gx_counts[rule.column] = r["result"]["unexpected_count"]
    frame = validate.load_table(path, "csv", config.contract)
    fast = validate_features(frame, config)
    flagged = {c: s for c, s in fast.unexpected_share.items() if s > 0}
    # Same columns fail in both; where GX counts rows, the fast check flags as many.
    assert flagged and set(flagged) == gx_columns
    for column, count in gx_counts.items():
        assert round(flagged[column] * fast.n_rows) == count
    reasons = fast.row_errors.dropna()
    assert len(reasons) and all(any(c in reason for c in flagged) for reason in reasons)


@pytest.mark.slow
def test_good_data_passes_and_writes_every_report(
    config: Config, reports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([], capsys)
    assert code == 0, err
    assert f"all {len(contract_rules(config))} checks passed" in out
    result = json.loads((reports / "result.json").read_text())
    assert result["success"] is True
    assert result["statistics"]["evaluated_expectations"] == len(contract_rules(config))
    suite = json.loads((reports / "suite.json").read_text())
    assert len(suite["expectations"]) == len(contract_rules(config))
    # Data Docs are a local site; the summary beside them renders with no network at all.
    assert (reports / "data_docs" / "index.html").is_file()
    page = (reports / "summary.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "data_docs/index.html" in page
    assert "| passed |" in (reports / "summary.md").read_text()
    assert not list(reports.glob(".*")), "temporary files left behind"


@pytest.mark.slow
def test_unknown_columns_ignore_lets_an_extra_column_pass(
    write_config: Callable[..., Path],
    bad_file: Callable[[str], Path],
    reports: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def ignore(raw: dict[str, Any]) -> None:
        raw["contract"]["unknown_columns"] = "ignore"

    cfg = write_config(ignore)
    code, _, err = run(
        ["--config", str(cfg), "--data", str(bad_file("extra column")), "--no-docs"], capsys
    )
    assert code == 0, err


@pytest.mark.slow
def test_extra_expectation_from_config_runs_in_the_suite(
    write_config: Callable[..., Path],
    names: dict[str, str],
    reports: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    column = names["integer"]

    def extra(raw: dict[str, Any]) -> None:
        raw["validation"]["extra_expectations"] = [
            {
                "expectation": "ExpectColumnMaxToBeBetween",
                "kwargs": {"column": column, "max_value": 5},
            }
        ]

    cfg = write_config(extra)
    code, _, err = run(["--config", str(cfg), "--no-docs"], capsys)
    assert code == 3
    line = one_error_line(err)
    assert column in line and "ExpectColumnMaxToBeBetween" in line


@pytest.mark.slow
def test_second_dataset_passes(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--config", str(CONFIGS["credit"]), "--no-docs"], capsys)
    assert code == 0, err
    assert json.loads((reports / "result.json").read_text())["success"]
    assert load_config(CONFIGS["credit"]).project in (reports / "summary.md").read_text()


@pytest.mark.slow
@pytest.mark.e2e
def test_make_validate_in_a_real_process(tmp_path: Path) -> None:
    # `make pipeline` on the second data set (tests/e2e) runs this target on that config too.
    env = {**os.environ, "REPORTS_DIR": str(tmp_path)}
    proc = subprocess.run(
        ["make", "validate", f"CONFIG={CHURN_CONFIG}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checks passed" in proc.stdout and "Data Docs" in proc.stdout
    assert json.loads((tmp_path / "validation" / "result.json").read_text())["success"]
    assert (tmp_path / "validation" / "data_docs" / "index.html").is_file()


@pytest.mark.slow
@pytest.mark.e2e
def test_bad_file_in_a_real_process_exits_3_without_traceback(
    bad_file: Callable[[str], Path], tmp_path: Path
) -> None:
    env = {**os.environ, "REPORTS_DIR": str(tmp_path)}
    proc = subprocess.run(
        ["make", "validate", f"CONFIG={CHURN_CONFIG}", f"DATA={bad_file('unseen category')}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "'Never seen'" in proc.stderr


@pytest.mark.slow
def test_a_regression_target_that_is_not_a_number_fails_naming_it(
    tmp_path: Path, reports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The target's rules follow its task: a regression target is checked as numbers in range."""
    source = load_config(TASK_CONFIGS["regression"])
    target = source.contract.target.name
    frame = read_table(source.data_path).head(300).astype({target: object})
    frame.loc[frame.index[5], target] = "late"
    frame.to_csv(tmp_path / "data.csv", index=False)
    raw = yaml.safe_load(TASK_CONFIGS["regression"].read_text())
    raw["data"] = {"path": str(tmp_path / "data.csv"), "format": "csv", "feedback_path": None}
    raw["validation"] = {"row_count": {"min": 10}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    code, _, err = run(["--config", str(tmp_path / "config.yaml"), "--no-docs"], capsys)
    assert code == 3
    line = one_error_line(err)
    assert f"{target}: numbers" in line


@pytest.mark.slow
def test_text_rules_catch_blank_and_overlong_texts_in_gx_and_the_fast_check(
    tmp_path: Path, reports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A blank text, one past max_length: GX fails both rules and the row check names both rows."""
    text_config = load_config(CONFIGS["reviews"])
    text = next(f for f in text_config.contract.features if f.type.value == "text")
    frame = validate.load_table(text_config.data_path, "csv", text_config.contract)
    frame.loc[3, text.name] = "   "
    frame.loc[7, text.name] = "word " * (text.length_bounds[1] // 5 + 1)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    code, _, err = run(
        ["--config", str(text_config.source), "--data", str(path), "--no-docs"], capsys
    )
    assert code == 3, err
    result = json.loads((reports / "result.json").read_text())
    rules = contract_rules(text_config)
    failed = {
        rules[r["expectation_config"]["meta"]["rule"]].check
        for r in result["results"]
        if not r["success"]
    }
    assert failed == {Check.not_blank, Check.length}
    fast = validate_features(validate.load_table(path, "csv", text_config.contract), text_config)
    bad = fast.row_errors.dropna()
    assert list(bad.index) == [3, 7]
    assert "blank" in bad[3] and "characters, outside" in bad[7] and text.name in bad[7]
