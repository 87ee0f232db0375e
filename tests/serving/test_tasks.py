"""The service answers per task (multiclass: a probability per class and the label; regression:
the value), in the responses, the OpenAPI schema, the prediction log, V2 and /feedback, which
takes the task's truth and refuses another type naming the field. In process (TestClient), on
bundles fitted on the shipped task examples (tests.conftest.task_bundle)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.bundle import load_model
from core.config import Config, TaskType
from core.data import read_table
from core.frames import feature_frame, request_records
from core.prediction_log import read_predictions
from core.settings import Settings
from core.task import model_scores
from serving.app import create_app
from serving.v2 import advertised


@pytest.fixture(scope="module")
def served(
    task_bundle: tuple[Config, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Config, Path, TestClient, str, list[dict[str, Any]]]]:
    config, bundle = task_bundle
    log_url = f"sqlite:///{tmp_path_factory.mktemp('log')}/predictions.db"
    settings = Settings(
        model_bundle=bundle, config_path=config.source, prediction_log_url=log_url, auth="off"
    )
    frame = read_table(config.data_path).head(20)
    records = request_records(frame, config.contract)
    with TestClient(create_app(settings)) as client:
        yield config, bundle, client, log_url, records


def logged_row(log_url: str, request_id: str, column: str = "score") -> Any:
    """The logged prediction's row once the log's writer has flushed it (and `column` is set)."""
    deadline = time.monotonic() + 10
    while True:
        rows = read_predictions(log_url).set_index("request_id")
        if request_id in rows.index and rows.loc[request_id, column] is not None:
            return rows.loc[request_id]
        assert time.monotonic() < deadline, f"{request_id} not logged with {column} after 10 s"
        time.sleep(0.05)


def expected_scores(bundle: Path, config: Config, records: list[dict[str, Any]]) -> np.ndarray:
    """What the bundle's sklearn model gives the records in process (the served path may be numpy)."""
    import pandas as pd

    frame = feature_frame(pd.DataFrame(records), config.contract)
    return model_scores(load_model(bundle), frame, config.contract.target)


def test_predict_answers_as_the_task_does(served: Any) -> None:
    config, bundle, client, log_url, records = served
    target = config.contract.target
    want = expected_scores(bundle, config, records[:1])[0]
    r = client.post("/predict", json=records[0])
    assert r.status_code == 200, r.text
    body = r.json()
    if target.type is TaskType.multiclass:
        assert set(body) == {"request_id", "probabilities", "label", "model_version"}
        got = [body["probabilities"][c] for c in target.classes]
        np.testing.assert_allclose(got, want, atol=1e-9)
        assert body["label"] == target.classes[int(np.argmax(want))]
    else:
        assert set(body) == {"request_id", "value", "model_version"}
        assert body["value"] == pytest.approx(float(want), abs=1e-9)
    logged = logged_row(log_url, body["request_id"])
    assert logged["score"] == pytest.approx(float(np.max(want)) if np.ndim(want) else float(want))
    if target.type is TaskType.multiclass:
        assert logged["label"] == body["label"]


def test_batches_by_record_and_by_column_answer_per_task(served: Any) -> None:
    config, bundle, client, _, records = served
    target = config.contract.target
    want = expected_scores(bundle, config, records[:5])
    by_record = client.post("/predict/batch", json={"records": records[:5]})
    assert by_record.status_code == 200, by_record.text
    columns = {k: [r[k] for r in records[:5]] for k in records[0]}
    by_column = client.post("/predict/batch", json={"columns": columns})
    assert by_column.status_code == 200, by_column.text
    answers, body = by_record.json()["predictions"], by_column.json()
    if target.type is TaskType.multiclass:
        got = [[a["probabilities"][c] for c in target.classes] for a in answers]
        np.testing.assert_allclose(got, want, atol=1e-9)
        by_class = np.array([body["probabilities"][c] for c in target.classes]).T
        np.testing.assert_allclose(by_class, want, atol=1e-9)
        assert body["labels"] == [target.classes[i] for i in np.argmax(want, axis=1)]
    else:
        np.testing.assert_allclose([a["value"] for a in answers], want, atol=1e-9)
        np.testing.assert_allclose(body["values"], want, atol=1e-9)
        assert "labels" not in body


def test_the_openapi_schema_describes_the_tasks_answer_and_feedback(served: Any) -> None:
    config, _, client, _, _ = served
    target = config.contract.target
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    prediction = schemas["Prediction"]["properties"]
    feedback = schemas["Feedback"]["properties"]["label"]
    if target.type is TaskType.multiclass:
        assert {"probabilities", "label"} <= set(prediction)
        assert set(schemas["ClassProbabilities"]["properties"]) == set(target.classes)
        assert feedback["enum"] == target.classes
    else:
        assert "value" in prediction and "probability" not in prediction
        assert feedback["type"] == "number"
        assert feedback.get("minimum") == target.min and feedback.get("maximum") == target.max


def test_feedback_takes_the_tasks_truth_and_refuses_another_type(served: Any) -> None:
    config, _, client, log_url, records = served
    target = config.contract.target
    request_id = client.post("/predict", json=records[1]).json()["request_id"]
    logged_row(log_url, request_id)  # feedback needs the logged prediction
    if target.type is TaskType.multiclass:
        good: Any = target.classes[-1]
        bad: list[Any] = ["__not_a_class__", 1.5, None]
    else:
        assert target.min is not None and target.max is not None
        good = (target.min + target.max) / 2
        bad = ["fast", "12", None, target.max + 1, True]
    ok = client.post("/feedback", json={"request_id": request_id, "label": good})
    assert ok.status_code == 200, ok.text
    stored = logged_row(log_url, request_id, "feedback")["feedback"]
    assert stored == (good if isinstance(good, str) else repr(float(good)))
    for value in bad:
        r = client.post("/feedback", json={"request_id": request_id, "label": value})
        assert r.status_code == 422, (value, r.text)
        assert all(e["loc"][-1] == "label" for e in r.json()["detail"]), r.text


def test_v2_infer_gives_the_tasks_output_tensors(served: Any) -> None:
    config, bundle, client, _, records = served
    target = config.contract.target
    name = client.get("/model").json()["name"]
    inputs = [
        {
            "name": f.name,
            "datatype": advertised(f),
            "shape": [3],
            "data": [r[f.name] for r in records[:3]],
        }
        for f in config.contract.features
    ]
    r = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    want = expected_scores(bundle, config, records[:3])
    if target.type is TaskType.multiclass:
        tensor = outputs["probabilities"]
        assert tensor["shape"] == [3, len(target.classes)]
        np.testing.assert_allclose(np.reshape(tensor["data"], (3, -1)), want, atol=1e-9)
        assert set(outputs) == {"probabilities", "label", "request_id"}
    else:
        assert outputs["value"]["shape"] == [3]
        np.testing.assert_allclose(outputs["value"]["data"], want, atol=1e-9)
        assert set(outputs) == {"value", "request_id"}
