"""The service as a client sees it: a real uvicorn process on 127.0.0.1, every endpoint, every kind
of bad input (a 4xx naming the field, never a 500), the API key, start-up on a bad bundle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.prediction_log import read_predictions
from core.settings import get_settings
from serving import serve
from tests.serving.conftest import API_KEY, ROOT, Server, schemathesis

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
KEY = {"X-API-Key": API_KEY}


def post(
    server: Server,
    path: str,
    body: Any = None,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    with server.client() as client:
        if content is not None:
            return client.post(path, content=content, headers={**KEY, **(headers or {})})
        return client.post(path, json=body, headers={**KEY, **(headers or {})})


def locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [e["loc"] for e in response.json()["detail"]]


def test_predict_scores_one_record_and_logs_it(
    server: Server, records: list[dict[str, Any]]
) -> None:
    r = post(server, "/predict", records[0])
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"request_id", "probability", "label", "model_version"}
    assert 0 <= body["probability"] <= 1 and body["model_version"] == "0"
    assert body["label"] == ("Yes" if body["probability"] >= 0.5 else "No")

    counted = feedback_count(server, body["label"], "Yes")
    fb = post(server, "/feedback", {"request_id": body["request_id"], "label": "Yes"})
    assert fb.status_code == 200, fb.text
    # The live metric's counts: by the label the prediction answered and the true one.
    assert feedback_count(server, body["label"], "Yes") == counted + 1
    logged = read_predictions(server.log_url).set_index("request_id").loc[body["request_id"]]
    assert logged["score"] == pytest.approx(body["probability"])
    assert logged["feedback"] == "Yes" and logged["tenure"] == records[0]["tenure"]


def feedback_count(server: Server, predicted: str, actual: str) -> float:
    """The service's prediction_feedback_total for one (predicted, actual) pair on /metrics."""
    with server.client() as client:
        text = client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "prediction_feedback_total"
        and sample.labels == {"predicted": predicted, "actual": actual}
    )


def test_batch_answers_in_order_and_matches_single_calls(
    server: Server, records: list[dict[str, Any]]
) -> None:
    r = post(server, "/predict/batch", {"records": records[:5]})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 5 and len({p["request_id"] for p in preds}) == 5
    single = [post(server, "/predict", rec).json()["probability"] for rec in records[:5]]
    assert [p["probability"] for p in preds] == pytest.approx(single, abs=1e-9)


def by_column(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"columns": {name: [r[name] for r in records] for name in records[0]}}


def test_batch_by_column_answers_like_records_and_logs_each_row(
    server: Server, records: list[dict[str, Any]]
) -> None:
    by_record = post(server, "/predict/batch", {"records": records[:5]}).json()["predictions"]
    r = post(server, "/predict/batch", by_column(records[:5]))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert set(answer) == {"model_version", "request_ids", "probabilities", "labels"}
    assert answer["probabilities"] == pytest.approx(
        [p["probability"] for p in by_record], abs=1e-12
    )
    assert answer["labels"] == [p["label"] for p in by_record]
    assert len(set(answer["request_ids"])) == 5
    # Each row is in the log with its own features, and takes feedback by its own id.
    fb = post(server, "/feedback", {"request_id": answer["request_ids"][3], "label": "No"})
    assert fb.status_code == 200, fb.text
    logged = read_predictions(server.log_url).set_index("request_id")
    assert logged.loc[answer["request_ids"][3], "contract"] == records[3]["contract"]
    assert logged.loc[answer["request_ids"][3], "feedback"] == "No"
    assert logged.loc[answer["request_ids"], "score"].tolist() == pytest.approx(
        answer["probabilities"]
    )


def test_batch_by_column_bad_input_is_422_naming_column_and_row(
    server: Server, records: list[dict[str, Any]]
) -> None:
    good = by_column(records[:3])["columns"]
    cases = [
        (
            {**good, "contract": ["Month-to-month", "Weekly", "Two year"]},
            ["body", "columns", "contract", 1],
        ),
        ({**good, "tenure": [1, 2]}, ["body", "columns", "tenure"]),
        ({k: v for k, v in good.items() if k != "tenure"}, ["body", "columns", "tenure"]),
        ({**good, "surprise": [1, 2, 3]}, ["body", "columns", "surprise"]),
        ({**good, "tenure": [1, 2.5, 3]}, ["body", "columns", "tenure", 1]),
        ({**good, "monthly_charges": [1.0, "x", 3.0]}, ["body", "columns", "monthly_charges", 1]),
    ]
    for columns, loc in cases:
        assert locs(post(server, "/predict/batch", {"columns": columns})) == [loc]
    too_many = by_column(records[:6])  # max_batch is 5 in these tests
    assert {tuple(loc[:2]) for loc in locs(post(server, "/predict/batch", too_many))} == {
        ("body", "columns")
    }
    empty = {"columns": {k: [] for k in good}}
    assert len(locs(post(server, "/predict/batch", empty))) == len(good)
    assert locs(post(server, "/predict/batch", {"columns": [1, 2]})) == [["body", "columns"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"contract": "Weekly"}, "contract"),
        ({"tenure": "twelve"}, "tenure"),
        ({"tenure": 500}, "tenure"),
        ({"monthly_charges": None}, "monthly_charges"),
        ({"surprise": 1}, "surprise"),
        ({"female": "maybe"}, "female"),
    ],
)
def test_bad_values_are_422_naming_the_field(
    server: Server, records: list[dict[str, Any]], change: dict[str, Any], field: str
) -> None:
    assert all(
        loc[:2] == ["body", field]
        for loc in locs(post(server, "/predict", {**records[0], **change}))
    )


def test_malformed_bodies_are_4xx_never_500(server: Server, records: list[dict[str, Any]]) -> None:
    missing = {k: v for k, v in records[0].items() if k != "contract"}
    assert locs(post(server, "/predict", missing)) == [["body", "contract"]]
    for raw in [
        b"",
        b"{",
        b"[1, 2]",
        b"null",
        b'"text"',
        b'{"tenure": NaN}',
        b"[" * 15_000,
        b"\xff\xfe",
    ]:
        r = post(server, "/predict", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (raw[:20], r.status_code, r.text[:200])
    as_json = {"Content-Type": "application/json"}
    huge = post(server, "/predict", content=b'{"x": "' + b"a" * 30_000 + b'"}', headers=as_json)
    assert huge.status_code == 413
    assert "20000 bytes" in huge.json()["detail"]
    inf = post(server, "/predict", content=b'{"tenure": 1e999}', headers=as_json)
    assert ["body", "tenure"] in locs(inf)


def test_batch_limits(server: Server, records: list[dict[str, Any]]) -> None:
    assert locs(post(server, "/predict/batch", {"records": records[:6]})) == [["body", "records"]]
    assert locs(post(server, "/predict/batch", {"records": []})) == [["body", "records"]]
    bad = [*records[:2], {**records[2], "tenure": -1}]
    assert locs(post(server, "/predict/batch", {"records": bad})) == [
        ["body", "records", 2, "tenure"]
    ]
    assert locs(post(server, "/predict/batch", records[:2]))[0][:1] == ["body"]


def test_feedback_rejects_unknown_ids_and_labels(server: Server) -> None:
    r = post(server, "/feedback", {"request_id": "nope", "label": "Yes"})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert locs(post(server, "/feedback", {"request_id": "nope", "label": "Maybe"})) == [
        ["body", "label"]
    ]


def test_api_key_guards_predictions_and_feedback_only(
    server: Server, records: list[dict[str, Any]]
) -> None:
    with server.client() as client:
        for path, body in [
            ("/predict", records[0]),
            ("/predict/batch", {"records": records[:1]}),
            ("/feedback", {"request_id": "x", "label": "No"}),
        ]:
            assert client.post(path, json=body).status_code == 401
            assert (
                client.post(path, json=body, headers={"X-API-Key": API_KEY + "x"}).status_code
                == 401
            )
        for path in ["/health", "/ready", "/model", "/metrics", "/openapi.json"]:
            assert client.get(path).status_code == 200, path


def test_operations_endpoints(server: Server, records: list[dict[str, Any]]) -> None:
    post(server, "/predict", records[1])
    with server.client() as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json()["status"] == "ready"
        model = client.get("/model").json()
        assert model["name"] == "telco-churn-classifier" and model["version"] == "0"
        assert model["scoring"] == "compiled" and model["parity_error"] <= 1e-6
        assert [f["name"] for f in model["contract"]["features"]][:2] == [
            "female",
            "senior_citizen",
        ]
        metrics = client.get("/metrics").text
        assert 'http_requests_total{method="POST",route="/predict",status="200"}' in metrics
        assert 'http_requests_total{method="POST",route="/predict",status="422"}' in metrics
        assert "http_request_duration_seconds_bucket" in metrics
        assert (
            "prediction_score_bucket" in metrics and "prediction_log_dropped_total 0.0" in metrics
        )
        assert (
            'model_info{name="telco-churn-classifier",run_id="",scoring="compiled",version="0"} 1.0'
            in metrics
        )
        assert client.get("/nowhere").status_code == 404
        assert client.get("/predict").status_code == 405
        assert 'route="unmatched"' in client.get("/metrics").text
        schema = client.get("/openapi.json").json()
        assert "Record" in schema["components"]["schemas"]
        assert client.get("/docs").status_code == 200


def test_a_tampered_bundle_stops_start_up_with_one_line(
    tmp_path: Path,
    trained_bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bad)
    (bad / "bundle.json").write_text((bad / "bundle.json").read_text().replace('"0"', '"1"'))
    env = {"MODEL_BUNDLE": str(bad), "PREDICTION_LOG_URL": f"sqlite:///{tmp_path}/p.db"}
    # The uvicorn factory, as the Dockerfile runs it: one line, exit code 5, no traceback.
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "serving.app:app_from_env", "--port", "1"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 5, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bundle.json has sha256" in errors[0]
    assert "Traceback" not in proc.stderr
    # `make serve` checks before any worker starts.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        assert serve.main([]) == 5
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "changed after packaging" in err[0]


def test_fuzzing_from_the_openapi_schema_finds_no_server_error(server: Server) -> None:
    schemathesis(server)
