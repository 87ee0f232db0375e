"""The alerting rules: rendered from the config, each proven by promtool on its own unit tests.

promtool (Debian's prometheus package) evaluates the real PromQL on the generated input series; a
rule that is changed by hand (a threshold, a filter, an aggregation) must fail its unit test.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import Config, load_config
from core.errors import ConfigError
from deploy import alerts, lint_infra

ROOT = Path(__file__).resolve().parents[2]


def promtool_test(folder: Path, *names: str) -> subprocess.CompletedProcess[str]:
    files = [
        str(alerts.TESTS_DIR.relative_to(alerts.RULES_FILE.parent) / f"{n}.yaml") for n in names
    ]
    return subprocess.run(
        ["promtool", "test", "rules", *files], cwd=folder, capture_output=True, text=True
    )


@pytest.fixture
def rules_copy(tmp_path: Path, config: Config) -> Path:
    """The fixture config's rules and their unit tests, rendered into tmp_path to change."""
    for path, text in alerts.rendered(config).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path / alerts.RULES_FILE.parent


def test_the_committed_rules_are_what_the_config_renders() -> None:
    assert alerts.stale(load_config(ROOT / "config.yaml"), ROOT) == []


def test_every_rule_has_a_case_that_fires_and_one_that_stays_quiet(config: Config) -> None:
    for alert in alerts.alerts(config):
        assert [bool(c.fires) for c in alert.cases].count(True) >= 1, alert.name
        assert [bool(c.fires) for c in alert.cases].count(False) >= 1, alert.name


def test_the_shipped_rules_pass_promtool_and_amtool() -> None:
    assert lint_infra.alerting(ROOT) == []


# Each edit breaks one rule the way a hand edit could; its own unit test must catch it. The
# thresholds are the frozen fixture config's (tests/fixtures/churn/config.yaml).
ZERO_FILL = ' or 0 * sum by (namespace) (increase(prediction_feedback_total{job="model-api"}[24h]))'
BROKEN = [
    ("ModelApiDown", "max by (namespace) (up", "min by (namespace) (up"),
    ("ModelApiErrors", ',route!~"/(health|ready|metrics)"}', "}"),  # probes dilute the share
    ("ModelApiErrors", "> 0.02", "> 0.2"),
    ("ModelApiReadinessFlapping", "changes(service_ready", "resets(service_ready"),
    ("PredictionLogBacklog", "> 50000", "> 100000"),
    ("ModelScoreShift", ">= 200", ">= 2000000"),
    ("LiveRecallBelowFloor", ZERO_FILL, ""),  # no true positive at all: recall would be absent
    ("LiveRecallBelowFloor", ">= 100", ">= 1000000"),
]


@pytest.mark.parametrize(("alert", "old", "new"), BROKEN)
def test_a_rule_changed_by_hand_fails_its_unit_test(
    rules_copy: Path, alert: str, old: str, new: str
) -> None:
    path = rules_copy / alerts.RULES_FILE.name
    doc = yaml.safe_load(path.read_text())
    rule = next(r for r in doc["groups"][0]["rules"] if r["alert"] == alert)
    assert old in rule["expr"], f"the edit no longer applies to {alert}: {old!r}"
    assert promtool_test(rules_copy, alert).returncode == 0
    rule["expr"] = rule["expr"].replace(old, new)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = promtool_test(rules_copy, alert)
    assert proc.returncode != 0
    assert f"{alert} " in proc.stdout + proc.stderr


def _fork(raw: dict[str, Any]) -> None:
    raw["canary"] = {**raw.get("canary", {}), "max_error_share": 0.1, "max_score_distance": 0.3}
    raw["serving"] = {**raw.get("serving", {}), "log_buffer_rows": 1000}
    raw["drift"] = {**raw.get("drift", {}), "min_samples": 50}
    raw["alerts"] = {
        "window": "2m",
        "hold": "90s",
        "down_for": "30s",
        "max_p99_seconds": 2.0,
        "max_queue_share": 0.9,
        "flap_window": "5m",
        "max_ready_changes": 1,
        "score_recent": "30m",
        "score_reference": "6h",
    }


def test_other_thresholds_render_rules_whose_unit_tests_pass(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = load_config(write_config(_fork))
    root = tmp_path / "repo"
    assert alerts.main(["--config", str(config.source), "--root", str(root)]) == 0
    rules = yaml.safe_load((root / alerts.RULES_FILE).read_text())["groups"][0]["rules"]
    errors = next(r for r in rules if r["alert"] == "ModelApiErrors")
    assert errors["expr"].endswith("> 0.1") and errors["for"] == "90s"
    backlog = next(r for r in rules if r["alert"] == "PredictionLogBacklog")
    assert backlog["expr"].endswith("> 900")
    proc = subprocess.run(
        ["promtool", "test", "rules", *alerts.test_files(root)],
        cwd=root / alerts.RULES_FILE.parent,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(alerts.alerts(config))


def test_a_changed_threshold_makes_the_files_stale(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    assert alerts.main(["--config", str(write_config()), "--root", str(root)]) == 0
    (root / alerts.TESTS_DIR / "Gone.yaml").write_text("tests: []\n")
    changed = load_config(write_config(_fork, name="fork.yaml"))
    problems = alerts.stale(changed, root)
    assert any(str(alerts.RULES_FILE) in p for p in problems)
    assert any(str(alerts.PROMETHEUS_RULE) in p for p in problems)
    assert any("Gone.yaml" in p and "delete it" in p for p in problems)
    assert alerts.main(["--config", str(changed.source), "--root", str(root)]) == 0
    assert alerts.stale(changed, root) == []


def test_a_threshold_no_alert_can_cross_is_refused(
    write_config: Callable[..., Path],
) -> None:
    def never(raw: dict[str, Any]) -> None:
        raw["canary"] = {**raw.get("canary", {}), "max_error_share": 1.0}

    with pytest.raises(ConfigError, match="max_error_share"):
        alerts.alerts(load_config(write_config(never)))


def test_an_alertmanager_route_to_an_unknown_receiver_fails(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "infra", tmp_path / "infra")
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    path = tmp_path / "infra" / "alertmanager" / "alertmanager.yml"
    doc = yaml.safe_load(path.read_text())
    doc["route"]["routes"][0]["receiver"] = "pager"
    path.write_text(yaml.safe_dump(doc))
    problems = lint_infra.alerting(tmp_path)
    assert any("pager" in p for p in problems), problems


def test_every_rule_links_a_section_of_the_alerts_page(config: Config) -> None:
    from tests.repo.test_docs import anchors

    sections = anchors(ROOT / alerts.RUNBOOK)
    for rule in alerts.rule_groups(config)[0]["rules"]:
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == alerts.RUNBOOK and anchor in sections, rule["alert"]


@pytest.mark.parametrize(("severity", "receiver"), [("critical", "on-call"), ("warning", "chat")])
def test_alertmanager_routes_each_severity_of_the_rules_to_its_receiver(
    config: Config, severity: str, receiver: str
) -> None:
    assert severity in {a.severity for a in alerts.alerts(config)}
    config_file = ROOT / "infra" / "alertmanager" / "alertmanager.yml"
    options = [f"--config.file={config_file}", f"--verify.receivers={receiver}"]
    labels = [f"severity={severity}", "alertname=ModelApiDown"]
    proc = subprocess.run(
        ["amtool", "config", "routes", "test", *options, *labels],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receiver
