"""The training reference: sample, profile, and the bytes training writes into the bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.columns import REFERENCE_SCORE
from core.config import Config, FeatureType
from core.errors import BundleIntegrityError, ContractError, DataError
from validation.profile import (
    PROFILE_FILE,
    REFERENCE_FILE,
    build_reference,
    read_reference,
    reference_files,
)


def test_reference_samples_rows_and_profiles_every_feature(
    config: Config, default_frame: pd.DataFrame
) -> None:
    scores = np.linspace(0, 1, len(default_frame))
    reference, profile = build_reference(
        default_frame, scores, config.contract, max_rows=1000, seed=3
    )
    assert list(reference.columns) == [*config.contract.feature_names, REFERENCE_SCORE]
    assert len(reference) == 1000 and profile["sample_size"] == 1000
    assert profile["size"] == len(default_frame) and profile["model_version"] is None
    for f in config.contract.features:
        described = profile["features"][f.name]
        if f.type is FeatureType.numeric:
            assert described["quantiles"]["0.5"] == pytest.approx(default_frame[f.name].median())
            assert sum(described["histogram"]["counts"]) == default_frame[f.name].notna().sum()
        else:
            assert sum(described["frequencies"].values()) == default_frame[f.name].notna().sum()
    assert profile["score"]["quantiles"]["1"] == 1.0
    again, _ = build_reference(default_frame, scores, config.contract, max_rows=1000, seed=3)
    pd.testing.assert_frame_equal(reference, again)


def test_reference_refuses_bad_input(config: Config, default_frame: pd.DataFrame) -> None:
    name = config.contract.feature_names[0]
    with pytest.raises(ContractError, match=name):
        build_reference(
            default_frame.drop(columns=[name]), np.zeros(len(default_frame)), config.contract
        )
    with pytest.raises(DataError, match="scores for"):
        build_reference(default_frame, np.zeros(3), config.contract)
    with pytest.raises(DataError, match="no rows"):
        build_reference(default_frame.iloc[:0], np.zeros(0), config.contract)
    numeric = config.contract.of_type(FeatureType.numeric)[0].name
    broken = default_frame.astype({numeric: object})
    broken.loc[0, numeric] = "lots"
    with pytest.raises(ContractError, match=f"{numeric}.*'lots'"):
        build_reference(broken, np.zeros(len(broken)), config.contract)


def test_reference_files_round_trip(
    tmp_path: Path, config: Config, default_frame: pd.DataFrame
) -> None:
    reference, profile = build_reference(
        default_frame, np.full(len(default_frame), 0.3), config.contract, max_rows=500
    )
    for name, payload in reference_files(reference, profile).items():
        (tmp_path / name).write_bytes(payload)
    back, back_profile = read_reference(tmp_path, config.contract)
    pd.testing.assert_frame_equal(back, reference)
    assert back_profile == profile
    (tmp_path / PROFILE_FILE).unlink()
    with pytest.raises(BundleIntegrityError, match=PROFILE_FILE):
        read_reference(tmp_path, config.contract)
    (tmp_path / REFERENCE_FILE).write_bytes(b"not parquet")
    (tmp_path / PROFILE_FILE).write_text("{}")
    with pytest.raises(BundleIntegrityError, match="unreadable"):
        read_reference(tmp_path, config.contract)
