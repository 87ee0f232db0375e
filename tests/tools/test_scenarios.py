"""Traffic scenarios (pure) and the request bodies the simulator sends."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from core.config import Config, FeatureType, load_config
from core.data import read_table
from core.errors import DataError, ServiceUnavailable
from core.frames import request_record
from core.net import free_port
from tests.conftest import CONFIGS
from tools.scenarios import default_positive_share, generate
from tools.simulate import requests, send


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_covariate_shifts_numeric_features_inside_the_contract_and_remixes_one_level(
    name: str,
) -> None:
    config = load_config(CONFIGS[name])
    frame = read_table(config.data_path)
    calm = generate(frame, config.contract, "none", 3000, seed=1)
    moved = generate(frame, config.contract, "covariate", 3000, seed=1)
    numeric = config.contract.of_type(FeatureType.numeric)
    shifted = [f for f in numeric if f.name in moved.changed]
    assert len(shifted) == math.ceil(len(numeric) / 2)
    for f in shifted:
        before, after = calm.rows[f.name].astype(float), moved.rows[f.name].astype(float)
        assert after.mean() > before.mean() + 0.2 * before.std()
        assert f.min is None or after.min() >= f.min
        assert f.max is None or after.max() <= f.max
        if f.integer:
            assert (after.dropna() == after.dropna().round()).all()
    texts = [f for f in config.contract.of_type(FeatureType.text) if f.name in moved.changed]
    assert len(texts) == min(1, len(config.contract.of_type(FeatureType.text)))
    for f in texts:
        before, after = calm.rows[f.name].str.len(), moved.rows[f.name].str.len()
        assert after.mean() < 0.8 * before.mean()
        assert after.min() >= (f.min_length or 1)
    levelled = [n for n in moved.changed if n not in {f.name for f in [*numeric, *texts]}]
    if not (
        config.contract.of_type(FeatureType.categorical)
        or FeatureType.boolean in {f.type for f in config.contract.features}
    ):
        assert not levelled
        return
    assert len(levelled) == 1
    feature = config.contract.feature(levelled[0])
    assert set(moved.rows[feature.name].dropna().astype(str)) <= set(
        feature.categories or ["0", "1"]
    )
    before_share = calm.rows[feature.name].value_counts(normalize=True)
    after_share = moved.rows[feature.name].value_counts(normalize=True)
    assert (after_share.reindex(before_share.index, fill_value=0) - before_share).abs().max() > 0.1
    np.testing.assert_array_equal(calm.labels, moved.labels)  # type: ignore[arg-type]


def test_prior_changes_the_class_balance(config: Config, default_frame: pd.DataFrame) -> None:
    base = (default_frame[config.contract.target.name] == config.contract.target.positive).mean()
    traffic = generate(default_frame, config.contract, "prior", 4000, seed=2)
    assert traffic.labels is not None
    assert traffic.labels.mean() == pytest.approx(default_positive_share(base), abs=0.03)
    assert generate(
        default_frame, config.contract, "prior", 4000, 2, 0.1
    ).labels.mean() == pytest.approx(0.1, abs=0.02)  # type: ignore[union-attr]
    assert default_positive_share(0.26) == 0.5
    assert default_positive_share(0.45) == pytest.approx(0.75)
    assert default_positive_share(0.6) == pytest.approx(0.3)


def test_concept_keeps_features_and_flips_a_share_of_labels(
    config: Config, default_frame: pd.DataFrame
) -> None:
    calm = generate(default_frame, config.contract, "none", 2000, seed=3)
    concept = generate(default_frame, config.contract, "concept", 2000, seed=3, strength=0.3)
    pd.testing.assert_frame_equal(calm.rows, concept.rows)
    assert calm.labels is not None and concept.labels is not None
    assert (calm.labels != concept.labels).mean() == pytest.approx(0.3, abs=0.04)


def test_scenarios_refuse_bad_input(config: Config, default_frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="unknown scenario"):
        generate(default_frame, config.contract, "sideways", 10)
    with pytest.raises(DataError, match="no rows"):
        generate(default_frame.iloc[:0], config.contract, "none", 10)
    with pytest.raises(DataError, match="positive"):
        generate(default_frame, config.contract, "none", 0)
    name = config.contract.feature_names[3]
    with pytest.raises(DataError, match=name):
        generate(default_frame.drop(columns=[name]), config.contract, "none", 10)
    unlabelled = default_frame.drop(columns=[config.contract.target.name])
    for scenario in ("prior", "concept"):
        with pytest.raises(DataError, match="target column"):
            generate(unlabelled, config.contract, scenario, 10)
    assert generate(unlabelled, config.contract, "covariate", 10).labels is None


def test_request_bodies_are_json_with_contract_types(
    config: Config, default_frame: pd.DataFrame
) -> None:
    traffic = generate(default_frame, config.contract, "none", 400, seed=4)
    nullable = next(f.name for f in config.contract.features if f.nullable)
    traffic.rows.loc[0, nullable] = np.nan
    items = list(requests(traffic, config.contract))
    assert len(items) == 400
    body, label = items[0]
    assert list(body) == config.contract.feature_names and body[nullable] is None
    assert label in config.contract.target.classes
    json.dumps(body, allow_nan=False)
    for f in config.contract.features:
        value = request_record(traffic.rows.iloc[1], config.contract)[f.name]
        expected = (
            str
            if f.type is FeatureType.categorical
            else (int if f.type is FeatureType.boolean or f.integer else float)
        )
        assert value is None or isinstance(value, expected), f.name


def test_an_unreachable_service_is_service_unavailable() -> None:
    port = free_port()  # free: nothing listens there
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        send(f"http://127.0.0.1:{port}", [({"x": 1}, None)], timeout=2)
