"""`validation.extra_expectations`: checked at config load against GX's own schemas, no GX import."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config
from core.errors import ConfigError
from tests.conftest import ROOT


def _extra(*items: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        raw["validation"]["extra_expectations"] = list(items)

    return edit


def test_valid_extra_expectation_loads(write_config: Callable[..., Path]) -> None:
    item = {
        "expectation": "ExpectColumnValuesToBeBetween",
        "kwargs": {"column": "tenure", "min_value": 0, "max_value": 100, "mostly": 0.99},
    }
    config = load_config(write_config(_extra(item)))
    assert config.validation.extra_expectations[0].kwargs["mostly"] == 0.99


BAD = {
    "unknown name": (
        {"expectation": "ExpectColumnValuesToBeBetwen", "kwargs": {"column": "tenure"}},
        [
            "validation.extra_expectations[0]",
            "not a Great Expectations core expectation",
            "did you mean ExpectColumnValuesToBeBetween",
        ],
    ),
    "unknown argument": (
        {"expectation": "ExpectColumnValuesToBeBetween", "kwargs": {"column": "tenure", "min": 0}},
        ["validation.extra_expectations[0]", "has no argument min", "min_value"],
    ),
    "missing argument": (
        {"expectation": "ExpectColumnValuesToBeInSet", "kwargs": {"column": "tenure"}},
        ["needs argument(s) value_set"],
    ),
    "wrong argument value": (
        {
            "expectation": "ExpectColumnValuesToBeBetween",
            "kwargs": {"column": "tenure", "mostly": 3},
        },
        ["argument mostly", "maximum"],
    ),
    "column not in contract": (
        {
            "expectation": "ExpectColumnValuesToBeBetween",
            "kwargs": {"column": "tenur", "min_value": 0},
        },
        [
            "validation.extra_expectations[0] (ExpectColumnValuesToBeBetween).kwargs.column",
            "'tenur'",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_extra_expectation_is_a_config_error_naming_the_key(
    case: str, write_config: Callable[..., Path]
) -> None:
    item, fragments = BAD[case]
    with pytest.raises(ConfigError) as info:
        load_config(write_config(_extra(item)))
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {info.value}"


@pytest.mark.slow
def test_the_check_does_not_import_great_expectations(write_config: Callable[..., Path]) -> None:
    path = write_config(
        _extra(
            {
                "expectation": "ExpectColumnMaxToBeBetween",
                "kwargs": {"column": "tenure", "max_value": 99},
            }
        )
    )
    code = (
        "import sys; from core.config import load_config; "
        f"load_config({str(path)!r}); sys.exit('great_expectations' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
