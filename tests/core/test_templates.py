"""Reports come from the templates in `templates/`: a fork edits text there, and mistakes are one line."""

from __future__ import annotations

import ast
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core import templates
from core.cli import entry_point
from core.config import METRICS, Config, TaskType, load_config
from core.errors import TemplateRenderError
from core.templates import TEMPLATES_DIR, environment, render
from tests.conftest import ROOT, TASK_CONFIGS
from training.evaluate import SLICE_METRICS
from training.package import model_card
from training.registry import RegisteredModel

# Every package of ours but the tests: the code that may render a template.
CODE = sorted({p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"})


def card_inputs(config: Config) -> tuple[Any, ...]:
    """Arguments for `model_card` as `make package` gathers them from a run, from the root config."""
    feature = config.contract.features[0].name
    model = RegisteredModel(
        name=config.mlflow.registered_model,
        version="7",
        alias="candidate",
        run_id="run-1",
        threshold=0.4321,
        pipeline=None,
        tags={"git_commit": "abc", "data_sha256": "d" * 64, "config_sha256": config.sha256},
    )
    metrics = {name: 0.5 + i / 100 for i, name in enumerate(METRICS)}
    params = {"rows.train": "70", "rows.validation": "15", "rows.test": "15", "seed": "1"}
    decision = {
        "passed": False,
        "reason": "roc_auc too low",
        "rules": [{"rule": "roc_auc ≥ 0.9", "observed": 0.51, "limit": 0.9, "passed": False}],
    }
    slices = [
        {"slice": feature, "value": "a", "n_rows": 10, "roc_auc": 0.61},
        {"slice": feature, "value": "b", "n_rows": 12, "roc_auc": float("nan")},
    ]
    return config, model, metrics, params, decision, slices


@pytest.fixture
def fork_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fork's copy of the shipped templates, which the renderer now reads."""
    folder = Path(shutil.copytree(TEMPLATES_DIR, tmp_path / "templates"))
    monkeypatch.setattr(templates, "TEMPLATES_DIR", folder)
    return folder


def test_the_shipped_model_card_renders_the_run(config: Config) -> None:
    card = model_card(*card_inputs(config))
    assert card.startswith(f"# Model card: {config.mlflow.registered_model} version 7\n")
    assert "- Decision threshold: 0.4321 (objective " in card
    assert f"| {next(iter(METRICS))} | 0.5000 |" in card
    assert "Rejected: roc_auc too low" in card
    assert "| roc_auc ≥ 0.9 | 0.5100 | 0.9000 | FAIL |" in card
    # The slice whose AUC is undefined is not among the weakest.
    feature = config.contract.features[0].name
    assert f"Weakest slices on the test set: {feature}=a (AUC 0.610, n=10).\n" in card
    assert card.endswith("the service rejects them first.\n")


def test_a_forks_edited_template_changes_the_output(config: Config, fork_templates: Path) -> None:
    shipped = model_card(*card_inputs(config))
    path = fork_templates / "model_card.md.j2"
    path.write_text(path.read_text().replace("## Intended use", "## What it is for"))
    edited = model_card(*card_inputs(config))
    assert "## What it is for" in edited and "## Intended use" not in edited
    assert edited == shipped.replace("## Intended use", "## What it is for")


def test_an_undefined_variable_names_the_template_file_and_line(fork_templates: Path) -> None:
    (fork_templates / "broken.md.j2").write_text("# Title {{ title }}\n\n{{ not_given }}\n")
    with pytest.raises(TemplateRenderError) as caught:
        render("broken.md.j2", title="t")
    message = str(caught.value)
    assert f"{fork_templates / 'broken.md.j2'}, line 3" in message and "not_given" in message


def test_a_syntax_error_names_the_template_file_and_line(fork_templates: Path) -> None:
    (fork_templates / "broken.md.j2").write_text("ok\n{% if %}\n")
    with pytest.raises(TemplateRenderError, match=r"broken\.md\.j2, line 2"):
        render("broken.md.j2")


def test_a_missing_template_is_our_error(fork_templates: Path) -> None:
    with pytest.raises(TemplateRenderError, match=r"nowhere\.md\.j2: template not found"):
        render("nowhere.md.j2")


def test_a_command_prints_one_line_for_a_broken_template(
    fork_templates: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fork_templates / "broken.md.j2").write_text("{{ not_given }}\n")

    @entry_point
    def main() -> int:
        render("broken.md.j2")
        return 0

    assert main() == TemplateRenderError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "broken.md.j2, line 1" in err


def test_html_templates_escape_values_and_markdown_ones_do_not(fork_templates: Path) -> None:
    for name in ("page.html.j2", "page.md.j2"):
        (fork_templates / name).write_text("{{ value }}")
    assert render("page.html.j2", value="<b>&") == "&lt;b&gt;&amp;"
    assert render("page.md.j2", value="<b>&") == "<b>&"


def test_number_filters() -> None:
    assert templates.fixed(0.84291) == "0.8429" and templates.fixed(0.5, 1) == "0.5"
    assert templates.number(None) == "-" and templates.number(0.00012) == "1.2e-04"
    assert templates.number(0.0) == "0.000" and templates.number(1.23456) == "1.235"
    assert templates.percent(0.0123) == "1.2%" and templates.percent(0.5, 2) == "50.00%"


def rendered_names() -> dict[str, list[str]]:
    """Map each template a call of `core.templates.render` names to the places that call it."""
    calls: dict[str, list[str]] = {}
    for package in CODE:
        for source in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(source.read_text(), str(source))
            aliases = {
                alias.asname or alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "core.templates"
                for alias in node.names
                if alias.name == "render"
            }
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in aliases
                ):
                    continue
                where = f"{source.relative_to(ROOT)}:{node.lineno}"
                first = node.args[0] if node.args else None
                assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                    f"{where}: render() must name its template as a literal, so this test sees it"
                )
                calls.setdefault(first.value, []).append(where)
    return calls


def test_every_template_is_rendered_by_code_and_every_render_names_a_template() -> None:
    calls = rendered_names()
    shipped = {p.name for p in TEMPLATES_DIR.glob("*.j2")}
    missing = {name: where for name, where in calls.items() if name not in shipped}
    assert not missing, f"render() names templates that are not in templates/: {missing}"
    unused = shipped - set(calls)
    assert not unused, f"templates/ holds templates no code renders: {sorted(unused)}"
    assert {p.name for p in TEMPLATES_DIR.iterdir()} == shipped, "templates/ holds only *.j2"


def test_every_shipped_template_compiles() -> None:
    env = environment(TEMPLATES_DIR)
    for path in sorted(TEMPLATES_DIR.glob("*.j2")):
        env.get_template(path.name)  # a syntax error raises here


@pytest.mark.parametrize("task", sorted(TASK_CONFIGS))
def test_the_model_card_follows_the_task(task: str) -> None:
    config = load_config(TASK_CONFIGS[task])
    target = config.contract.target
    first = SLICE_METRICS[target.type][0]
    feature = config.contract.features[0].name
    base = card_inputs(config)
    model = replace(base[1], threshold=None)
    metrics = {name: 0.5 for name in target.metrics}
    slices = [
        {"slice": feature, "value": "a", "n_rows": 10, first: 0.25},
        {"slice": feature, "value": "b", "n_rows": 12, first: 0.75},
    ]
    card = model_card(config, model, metrics, base[3], base[4], slices)
    assert "Decision threshold" not in card and f"- Task: {target.type.value}" in card
    assert all(f"| {name} | 0.5000 |" in card for name in target.metrics)
    # The weakest slice is the worst in the metric's own direction (RMSE: the highest).
    worst = "b" if not METRICS[first] else "a"
    assert f"Weakest slices on the test set: {feature}={worst} ({first}" in card
    if target.type is TaskType.multiclass:
        assert ", ".join(target.classes) in card
    else:
        assert f"Predicts `{target.name}`" in card
