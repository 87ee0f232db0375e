"""The Spark path (local[2]): the same probabilities as in-process predict_proba, rejects kept."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.bundle import load_bundle
from core.config import Config, FeatureType
from core.errors import BundleIntegrityError, DataError
from core.frames import feature_frame
from scoring.spark_job import score_spark, spark_session


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local Spark session for the module: it takes seconds to start."""
    session = spark_session("tests")
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_scores_match_predict_proba_and_rejects_are_kept(
    spark: Any,
    tmp_path: Path,
    trained_bundle: Path,
    config: Config,
    default_frame: pd.DataFrame,
) -> None:
    numeric = next(f for f in config.contract.of_type(FeatureType.numeric) if f.max is not None)
    frame = default_frame.copy()
    frame.loc[10, numeric.name] = numeric.max + 1000
    source = tmp_path / "in"
    source.mkdir()
    # Two files in one folder, same schema: Spark reads them as one data set.
    frame.iloc[:3000].to_parquet(source / "part-a.parquet", index=False)
    frame.iloc[3000:].to_parquet(source / "part-b.parquet", index=False)
    out = tmp_path / "scores"
    rows = score_spark(source, out, trained_bundle, config, spark=spark)
    assert rows == len(frame)
    id_col = config.contract.id_columns[0]
    scored = pd.read_parquet(out).sort_values(id_col)
    rejects = pd.read_parquet(tmp_path / "scores.rejects")
    assert rejects[id_col].tolist() == [frame.loc[10, id_col]]
    assert numeric.name in rejects["reject_reason"].iloc[0]
    keep = frame.drop(index=[10]).sort_values(id_col)
    want = load_bundle(trained_bundle).pipeline.predict_proba(feature_frame(keep, config.contract))
    assert scored[id_col].tolist() == keep[id_col].tolist()
    np.testing.assert_allclose(scored["score"].to_numpy(), want[:, 1], rtol=0, atol=1e-9)
    assert set(scored["label"]) <= set(config.contract.target.classes)
    assert (scored["model_version"] == "0").all()
    # The output exists now: a second run refuses to replace it unless told to.
    with pytest.raises(DataError, match="exists"):
        score_spark(source, out, trained_bundle, config, spark=spark)
    assert score_spark(source, out, trained_bundle, config, overwrite=True, spark=spark) == rows


@pytest.mark.slow
def test_spark_refuses_a_tampered_bundle_and_csv(
    spark: Any, tmp_path: Path, trained_bundle: Path, config: Config, default_frame: pd.DataFrame
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    (bundle / "bundle.json").write_text("{}")
    source = tmp_path / "in.parquet"
    default_frame.head(50).to_parquet(source, index=False)
    with pytest.raises(BundleIntegrityError, match=r"bundle\.json"):
        score_spark(source, tmp_path / "out", bundle, config, spark=spark)
    csv = tmp_path / "in.csv"
    default_frame.head(50).to_csv(csv, index=False)
    with pytest.raises(DataError, match="Parquet"):
        score_spark(csv, tmp_path / "out", trained_bundle, config, spark=spark)
    assert not (tmp_path / "out").exists()
