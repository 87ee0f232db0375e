"""The config loader: the shipped configs load; each kind of mistake is one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core import check_config
from core.config import FeatureType, TaskType, load_config
from core.data import read_table
from core.errors import ConfigError
from tests.conftest import CONFIGS, ROOT, ROOT_CONFIG


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_configs_load(name: str) -> None:
    config = load_config(CONFIGS[name])
    assert config.data_path.exists()
    target = config.contract.target
    if target.type is TaskType.binary:
        assert target.positive in target.classes
    else:
        assert not target.positive and (target.is_classifier == bool(target.classes))
    # Every column of the data is the target, an id or a feature of the contract.
    columns = set(read_table(config.data_path).columns)
    assert columns == set(config.contract.columns)
    assert len(config.sha256) == 64


def test_root_config_loads_and_its_contract_covers_its_data() -> None:
    """The config a fork edits: whatever its table, it loads and its contract fits its data."""
    config = load_config(ROOT_CONFIG)
    frame = read_table(config.data_path, config.data.format)
    assert set(config.contract.columns) <= set(frame.columns)
    if config.contract.unknown_columns == "fail":
        assert set(frame.columns) == set(config.contract.columns)
    target = config.contract.target
    if target.is_classifier:
        assert set(frame[target.name].dropna().astype(str)) <= {str(c) for c in target.classes}
    else:
        values = pd.to_numeric(frame[target.name], errors="raise")
        assert target.min is None or values.min() >= target.min
        assert target.max is None or values.max() <= target.max
    assert len(config.sha256) == 64


def test_default_contract_covers_every_column_of_the_data(config: Any, default_frame: Any) -> None:
    assert set(default_frame.columns) == set(config.contract.columns)
    assert config.contract.feature("tenure").type is FeatureType.numeric


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        node = raw
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        last = keys[-1]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def _append_feature(feature: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["contract"]["features"].append(feature)


BAD_CONFIGS: dict[str, tuple[Callable[[dict[str, Any]], None], list[str]]] = {
    "unknown key": (_set("model.learning_rate", 0.1), ["model.learning_rate", "unknown key"]),
    "unknown top-level section": (_set("trainer", {}), ["trainer", "unknown key"]),
    "wrong type": (_set("model.seed", "forty-two"), ["model.seed", "integer"]),
    "bad feature type": (
        _set("contract.features.4.type", "free-text"),
        ["contract.features[4] (tenure).type", "numeric"],
    ),
    "feature listed twice": (
        _append_feature({"name": "tenure", "type": "numeric"}),
        ["contract", "'tenure' is listed twice"],
    ),
    "target is also a feature": (
        _append_feature({"name": "churn", "type": "categorical", "categories": ["No", "Yes"]}),
        ["contract", "target 'churn' is also listed as a feature"],
    ),
    "reserved feature name": (
        _append_feature({"name": "score", "type": "numeric"}),
        ["(score)", "feature name 'score' is reserved"],
    ),
    "categories on a numeric": (
        _set("contract.features.4.categories", ["a", "b"]),
        ["contract.features[4] (tenure)", "categories are only allowed on categorical"],
    ),
    "bad estimator path": (
        _set("model.estimator", "sklearn.linear_model.NoSuchModel"),
        ["model", "no class 'NoSuchModel'"],
    ),
    "estimator module missing": (
        _set("model.estimator", "nosuchpkg.Model"),
        ["model", "cannot import module"],
    ),
    "bad hyper-parameter": (
        _set("model.params", {"depth": 3}),
        ["model", "no hyper-parameter depth", "allowed:"],
    ),
    "positive not a class": (
        _set("contract.target.positive", "Maybe"),
        ["contract.target", "'Maybe'"],
    ),
    "unknown gate metric": (
        _set("gate.rules", [{"metric": "auc", "min": 0.5}]),
        ["gate.rules[0]", "unknown metric"],
    ),
    "slice not a feature": (_set("model.slices", ["region"]), ["model.slices[0]", "'region'"]),
    "behaviour not a feature": (
        _set("model.behaviour", {"invariant": ["region"]}),
        ["model.behaviour.invariant[0]", "'region'"],
    ),
    "direction on a categorical": (
        _set("model.behaviour", {"increasing": ["contract"]}),
        ["model.behaviour.increasing[0]", "'contract' is not numeric"],
    ),
    "missing section": (lambda raw: raw.pop("mlflow"), ["mlflow", "required key is missing"]),
    "min above max": (_set("contract.features.4.min", 500), ["tenure", "greater than max"]),
    "feedback not csv": (
        _set("data.feedback_path", "data/feedback.parquet"),
        ["data: feedback_path 'data/feedback.parquet' must be a .csv file"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_clear_error(
    case: str, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    edit, expected = BAD_CONFIGS[case]
    path = write_config(edit)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for fragment in expected:
        assert fragment in str(info.value), f"{fragment!r} not in {info.value}"
    # Every command turns it into one error line and exit code 2, not a traceback.
    assert check_config.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("project: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_real_process_exit_code_and_one_line(write_config: Callable[..., Path]) -> None:
    path = write_config(_set("contract.features.4.type", "free-text"))
    proc = subprocess.run(
        [sys.executable, "-m", "core.check_config", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "contract.features[4] (tenure).type" in proc.stderr
    assert "Traceback" not in proc.stderr
