"""A text model (examples/reviews): its vectorisers and linear head called directly on the skops-loaded
pipeline, checked against sklearn; its field a bounded string."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from core.bundle import read_metadata, write_bundle
from core.compiled import COMPILED_FILE, PROBES_FILE
from core.config import Config, FeatureType, load_config
from core.data import read_table
from core.frames import feature_frame, target_vector
from serving.fallback import tfidf_scorer
from serving.predictor import load_predictor
from tests.conftest import REVIEWS_CONFIG
from tests.serving.conftest import Server, request_records, start_server
from training.compile import model_files
from training.model import build_pipeline

ROWS = 1200  # enough for the vectoriser's min_df and a probe set; fits in seconds


@pytest.fixture(scope="module")
def reviews() -> Config:
    return load_config(REVIEWS_CONFIG)


@pytest.fixture(scope="module")
def frame(reviews: Config) -> pd.DataFrame:
    return read_table(reviews.data_path).head(ROWS)


@pytest.fixture(scope="module")
def text_bundle(
    tmp_path_factory: pytest.TempPathFactory, reviews: Config, frame: pd.DataFrame
) -> tuple[Path, object]:
    pipeline = build_pipeline(reviews).fit(
        feature_frame(frame, reviews.contract), target_vector(frame, reviews.contract)
    )
    files = model_files(pipeline, reviews.contract, frame.head(200))
    # The TF-IDF branch has no compiled form: the probes still travel, for the sklearn path.
    assert COMPILED_FILE not in files and PROBES_FILE in files
    meta = {
        "model_name": reviews.mlflow.registered_model,
        "model_version": "0",
        "run_id": None,
        "threshold": 0.5,
        "metrics": {},
        "contract": reviews.contract.model_dump(mode="json"),
        "config_sha256": reviews.sha256,
    }
    path = write_bundle(tmp_path_factory.mktemp("text") / "bundle", pipeline, meta, files)
    return path, pipeline


def test_the_text_model_is_served_by_its_vectorisers_and_passes_its_probes(
    text_bundle: tuple[Path, object], reviews: Config, frame: pd.DataFrame
) -> None:
    path, pipeline = text_bundle
    predictor = load_predictor(path, read_metadata(path), reviews.contract)[1]
    assert predictor.mode == "sklearn-tfidf"
    assert predictor.parity_error is not None and predictor.parity_error <= 1e-12
    records = request_records(frame, reviews.contract, 100)
    records[0] = {**records[0], reviews.contract.feature_names[0]: None}  # the empty document
    rows = frame.head(100).copy()
    rows.iloc[0, rows.columns.get_loc(reviews.contract.feature_names[0])] = None
    expected = pipeline.predict_proba(feature_frame(rows, reviews.contract))[:, 1]  # type: ignore[attr-defined]
    np.testing.assert_allclose(predictor(records), expected, rtol=0, atol=1e-12)


def test_a_text_pipeline_without_a_linear_head_is_scored_by_sklearn_itself(
    text_bundle: tuple[Path, object], reviews: Config, frame: pd.DataFrame
) -> None:
    pipeline = text_bundle[1]
    assert tfidf_scorer(pipeline, reviews.contract) is not None
    pre = pipeline.steps[0][1]  # type: ignore[attr-defined]
    X, y = feature_frame(frame, reviews.contract), target_vector(frame, reviews.contract)
    tree = Pipeline(
        [("pre", pre), ("tree", DecisionTreeClassifier(max_depth=2).fit(pre.transform(X), y))]
    )
    assert tfidf_scorer(tree, reviews.contract) is None


@pytest.fixture(scope="module")
def text_server(
    tmp_path_factory: pytest.TempPathFactory, text_bundle: tuple[Path, object]
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("text-server")
    srv = start_server(tmp, bundle=text_bundle[0], config=REVIEWS_CONFIG, env={"AUTH": "off"})
    yield srv
    srv.stop()


@pytest.mark.slow
def test_a_text_field_takes_strings_within_its_bounds_and_never_answers_500(
    text_server: Server, reviews: Config, frame: pd.DataFrame
) -> None:
    text = reviews.contract.of_type(FeatureType.text)[0]
    low, high = text.length_bounds
    good = request_records(frame, reviews.contract, 1)[0]
    with text_server.client() as client:
        ok = client.post("/predict", json=good)
        assert ok.status_code == 200, ok.text
        assert 0 <= ok.json()["probability"] <= 1
        for bad in (12345, ["a list", "of texts"], {"a": "mapping"}, "x" * (high + 1)):
            answer = client.post("/predict", json={**good, text.name: bad})
            assert answer.status_code == 422, (
                bad if isinstance(bad, int) else type(bad),
                answer.text,
            )
            assert [text.name] in [e["loc"][1:2] for e in answer.json()["detail"]], answer.text
        if low:
            short = client.post("/predict", json={**good, text.name: ""})
            assert short.status_code == 422 and text.name in short.text
        huge = client.post("/predict", json={**good, text.name: "é" * 1_000_000})
        assert huge.status_code in (413, 422), huge.status_code
        by_column = client.post(
            "/predict/batch", json={"columns": {text.name: [good[text.name], 7]}}
        )
        assert by_column.status_code == 422, by_column.text
    assert "Traceback" not in text_server.text()
