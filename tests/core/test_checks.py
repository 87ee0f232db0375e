"""validate_features: the fast per-row check batch scoring and drift run on request features."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.checks import validate_features
from core.config import Config, FeatureType
from core.frames import feature_frame
from tests.conftest import ROOT


@pytest.fixture
def features(default_frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    return default_frame[config.contract.feature_names].head(500).copy()


def test_default_data_is_clean_and_extra_columns_are_ignored(
    default_frame: pd.DataFrame, config: Config
) -> None:
    # The whole table (ids and target included, as in a prediction log with extra columns).
    result = validate_features(default_frame, config)
    assert result.n_rows == len(default_frame)
    assert set(result.unexpected_share) == set(config.contract.feature_names)
    assert all(share == 0 for share in result.unexpected_share.values())
    assert result.ok_mask.all() and result.row_errors.isna().all()


def test_pipeline_dtypes_pass_too(default_frame: pd.DataFrame, config: Config) -> None:
    # What serving logs: the feature frame the model saw (numbers as float64, labels as object).
    assert validate_features(feature_frame(default_frame, config.contract), config).ok_mask.all()


def _first(config: Config, kind: FeatureType, **where: object) -> str:
    return next(
        f.name
        for f in config.contract.of_type(kind)
        if all(getattr(f, k) == v for k, v in where.items())
    )


def test_each_kind_of_bad_value_flags_its_row_and_names_the_column(
    features: pd.DataFrame, config: Config
) -> None:
    integer = _first(config, FeatureType.numeric, integer=True, nullable=False)
    number = _first(config, FeatureType.numeric, integer=False, nullable=False)
    label = _first(config, FeatureType.categorical)
    flag = _first(config, FeatureType.boolean)
    f = features.astype({integer: object, number: object, label: object})
    # A non-default index: results must align with it, not with positions.
    f.index = f.index * 10 + 7
    rows = list(f.index)
    f.loc[rows[1], integer] = -4  # out of range
    f.loc[rows[2], integer] = 2.5  # not whole
    f.loc[rows[3], number] = "abc"  # not a number
    f.loc[rows[4], number] = None  # null where not allowed
    f.loc[rows[5], label] = "Never seen"  # unseen category
    f.loc[rows[6], flag] = 3  # not 0/1
    f.loc[rows[7], integer] = -1  # two problems on one row
    f.loc[rows[7], label] = "Other"
    result = validate_features(f, config)
    expected = {
        rows[1]: [integer, "outside", "'-4'"],
        rows[2]: [integer, "not a whole number", "'2.5'"],
        rows[3]: [number, "not a number", "'abc'"],
        rows[4]: [number, "null"],
        rows[5]: [label, "not allowed", "'Never seen'"],
        rows[6]: [flag, "not allowed", "'3'"],
        rows[7]: [integer, label, "; "],
    }
    bad = result.row_errors.dropna()
    assert set(bad.index) == set(expected)
    for row, fragments in expected.items():
        for fragment in fragments:
            assert fragment in bad[row], (fragment, bad[row])
    assert list(result.ok_mask.index) == rows
    assert not result.ok_mask[rows[1]] and result.ok_mask[rows[0]]
    n = len(f)
    assert result.unexpected_share[integer] == pytest.approx(3 / n)
    assert result.unexpected_share[number] == pytest.approx(2 / n)
    assert result.unexpected_share[label] == pytest.approx(2 / n)
    assert result.unexpected_share[flag] == pytest.approx(1 / n)


def test_missing_feature_column_flags_every_row(features: pd.DataFrame, config: Config) -> None:
    gone = config.contract.feature_names[0]
    result = validate_features(features.drop(columns=[gone]), config)
    assert result.unexpected_share[gone] == 1.0
    assert result.row_errors.str.contains(f"{gone}: missing column").all()


def test_nullable_feature_accepts_nulls(features: pd.DataFrame, config: Config) -> None:
    nullable = next(f.name for f in config.contract.features if f.nullable)
    f = features.copy()
    f[nullable] = np.nan
    assert validate_features(f, config).unexpected_share[nullable] == 0


def test_empty_batch(features: pd.DataFrame, config: Config) -> None:
    result = validate_features(features.head(0), config)
    assert result.n_rows == 0 and result.row_errors.empty
    assert all(v == 0 for v in result.unexpected_share.values())


@pytest.mark.slow
def test_importing_the_api_does_not_import_great_expectations() -> None:
    # Serving and batch scoring import this module; GX costs seconds and ~300 MB to import.
    code = "import sys, core.checks; sys.exit('great_expectations' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
