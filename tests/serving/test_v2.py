"""The Open Inference Protocol (V2) routes, in process through the app factory with test settings:
metadata from the contract, answers equal to /predict's, every bad tensor a 400 naming the input,
the API key, the prediction log, and Triton's binary tensor extension as tritonclient encodes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient
from tritonclient.http import InferInput, InferRequestedOutput, InferResult
from tritonclient.http._utils import _get_inference_request

from core.config import Contract, Feature, FeatureType
from core.prediction_log import read_predictions
from core.settings import Settings
from serving.app import create_app
from serving.v2 import HEADER_LENGTH, advertised
from tests.serving.conftest import API_KEY, serving_config

# Raw `content=` bodies declare JSON as a client must (serving refuses other types with 415).
KEY = {"X-API-Key": API_KEY, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def app_client(
    tmp_path_factory: pytest.TempPathFactory, trained_bundle: Path, raw_config: dict[str, Any]
) -> Iterator[tuple[TestClient, str]]:
    """The app with small limits (max_batch 5), the API key on and a SQLite log; and that log."""
    tmp = tmp_path_factory.mktemp("v2")
    log_url = f"sqlite:///{tmp}/predictions.db"
    settings = Settings(
        model_bundle=trained_bundle,
        config_path=serving_config(tmp, raw_config),
        prediction_log_url=log_url,
        api_key=API_KEY,
    )
    with TestClient(create_app(settings)) as client:
        yield client, log_url


@pytest.fixture(scope="module")
def client(app_client: tuple[TestClient, str]) -> TestClient:
    return app_client[0]


@pytest.fixture(scope="module")
def model_name(client: TestClient) -> str:
    return str(client.get("/model").json()["name"])


def _value(feature: Feature, value: Any) -> Any:
    """A record's value as the advertised datatype carries it (booleans as true/false)."""
    if value is None:
        return None
    if feature.type is FeatureType.boolean:
        return bool(value)
    if advertised(feature) == "INT64":
        return int(value)
    return value


def tensors(records: list[dict[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """One input tensor per feature, of the advertised datatype, holding the records' values."""
    return [
        {
            "name": f.name,
            "datatype": advertised(f),
            "shape": [len(records)],
            "data": [_value(f, r[f.name]) for r in records],
        }
        for f in contract.features
    ]


def infer(
    client: TestClient, name: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    return client.post(
        f"/v2/models/{name}/infer", json=body, headers=KEY if headers is None else headers
    )


def outputs(response: Any) -> dict[str, list[Any]]:
    assert response.status_code == 200, response.text
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


def test_health_and_server_metadata(client: TestClient, model_name: str) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    assert client.get(f"/v2/models/{model_name}/ready").json() == {
        "name": model_name,
        "ready": True,
    }
    server = client.get("/v2").json()
    assert set(server) == {"name", "version", "extensions"}
    assert "binary_tensor_data" in server["extensions"]


def test_model_metadata_comes_from_the_contract(
    client: TestClient, model_name: str, config: Any
) -> None:
    meta = client.get(f"/v2/models/{model_name}").json()
    assert meta["name"] == model_name and meta["versions"] == ["0"]
    kinds = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert list(kinds) == config.contract.feature_names
    for feature in config.contract.features:
        expected = {
            FeatureType.categorical: {"BYTES"},
            FeatureType.boolean: {"BOOL"},
            FeatureType.numeric: {"FP64", "INT64"},
        }[feature.type]
        assert kinds[feature.name] in expected, feature.name
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
        ("probability", "FP64"),
        ("label", "BYTES"),
        ("request_id", "BYTES"),
    ]
    assert client.get(f"/v2/models/{model_name}/versions/0").json() == meta


@pytest.mark.parametrize(
    "path",
    ["/v2/models/{other}", "/v2/models/{other}/ready", "/v2/models/{name}/versions/9/ready"],
)
def test_an_unknown_model_or_version_is_404_in_the_protocols_shape(
    client: TestClient, model_name: str, path: str
) -> None:
    r = client.get(path.format(other="no-such-model", name=model_name))
    assert r.status_code == 404
    assert set(r.json()) == {"error"}
    assert "not served here" in r.json()["error"] or "no version" in r.json()["error"]


def test_infer_answers_like_predict_and_logs_every_row(
    app_client: tuple[TestClient, str],
    model_name: str,
    records: list[dict[str, Any]],
    config: Any,
) -> None:
    client, log_url = app_client
    rows = records[:5]
    r = infer(client, model_name, {"id": "req-1", "inputs": tensors(rows, config.contract)})
    body = r.json()
    assert body["model_name"] == model_name and body["model_version"] == "0"
    assert body["id"] == "req-1"
    assert all(o["shape"] == [5] for o in body["outputs"])
    got = outputs(r)
    single = [client.post("/predict", json=rec, headers=KEY).json() for rec in rows]
    assert got["probability"] == pytest.approx([s["probability"] for s in single], abs=1e-12)
    assert got["label"] == [s["label"] for s in single]
    # Each row got its own request id, and is in the prediction log with its features.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logged = read_predictions(log_url).set_index("request_id")
        if set(got["request_id"]) <= set(logged.index):
            break
        time.sleep(0.05)
    assert set(got["request_id"]) <= set(logged.index)
    first = logged.loc[got["request_id"][0]]
    assert first["score"] == pytest.approx(got["probability"][0])
    numeric = config.contract.of_type(FeatureType.numeric)[0].name
    assert first[numeric] == pytest.approx(rows[0][numeric])
    # /feedback takes a V2 row's request id like any other.
    fb = client.post(
        "/feedback",
        json={"request_id": got["request_id"][0], "label": got["label"][0]},
        headers=KEY,
    )
    assert fb.status_code == 200, fb.text


def test_infer_takes_n_by_1_tensors_nested_or_flat_and_named_outputs(
    client: TestClient, model_name: str, records: list[dict[str, Any]], config: Any
) -> None:
    rows = records[5:8]
    flat = outputs(infer(client, model_name, {"inputs": tensors(rows, config.contract)}))
    nested = tensors(rows, config.contract)
    for i, tensor in enumerate(nested):
        tensor["shape"] = [3, 1]
        tensor["data"] = [[v] for v in tensor["data"]] if i % 2 else tensor["data"]
    wanted = {
        "inputs": nested,
        "outputs": [{"name": "probability"}],
        "parameters": {"content_type": "pd"},
    }
    got = outputs(infer(client, model_name, wanted))
    assert list(got) == ["probability"] and got["probability"] == flat["probability"]


def test_the_api_key_guards_infer_only(
    client: TestClient, model_name: str, records: list[dict[str, Any]], config: Any
) -> None:
    body = {"inputs": tensors(records[:1], config.contract)}
    for headers in ({}, {"X-API-Key": "wrong"}):
        r = infer(client, model_name, body, headers)
        assert r.status_code == 401 and "API key" in r.json()["error"]
    assert client.get(f"/v2/models/{model_name}").status_code == 200


def _first(contract: Contract, kind: FeatureType) -> str:
    return contract.of_type(kind)[0].name


def _data(tensor_list: list[dict[str, Any]], name: str) -> list[Any]:
    return next(t["data"] for t in tensor_list if t["name"] == name)


def _required(contract: Contract) -> str:
    return next(f.name for f in contract.features if not f.nullable)


def _edit(tensor_list: list[dict[str, Any]], name: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**t, **changes} if t["name"] == name else t for t in tensor_list]


BAD_TENSORS = {
    "unknown input": lambda ts, c: [*ts, {**ts[0], "name": "no_such_feature"}],
    "missing input": lambda ts, c: ts[1:],
    "input twice": lambda ts, c: [*ts, ts[0]],
    "numeric sent as BYTES": lambda ts, c: _edit(
        ts, _first(c, FeatureType.numeric), datatype="BYTES"
    ),
    "categorical sent as FP64": lambda ts, c: _edit(
        ts, _first(c, FeatureType.categorical), datatype="FP64"
    ),
    "not a category": lambda ts, c: _edit(
        ts, _first(c, FeatureType.categorical), data=["no-such-category"] * 2
    ),
    "string in a number": lambda ts, c: _edit(
        ts, _first(c, FeatureType.numeric), datatype="FP64", data=["1", 2.0]
    ),
    "float in an INT64": lambda ts, c: _edit(
        ts, _first(c, FeatureType.numeric), datatype="INT64", data=[1.5, 2]
    ),
    "shape says 3": lambda ts, c: _edit(ts, _first(c, FeatureType.numeric), shape=[3]),
    "shape [2, 2]": lambda ts, c: _edit(ts, _first(c, FeatureType.numeric), shape=[2, 2]),
    "one input shorter": lambda ts, c: _edit(
        ts,
        _first(c, FeatureType.categorical),
        shape=[1],
        data=_data(ts, _first(c, FeatureType.categorical))[:1],
    ),
    "negative dimension": lambda ts, c: _edit(ts, _first(c, FeatureType.numeric), shape=[-2]),
    "null in a non-nullable input": lambda ts, c: _edit(ts, _required(c), data=[None, None]),
}


@pytest.mark.parametrize("case", list(BAD_TENSORS))
def test_a_bad_tensor_is_400_naming_the_input(
    client: TestClient, model_name: str, records: list[dict[str, Any]], config: Any, case: str
) -> None:
    good = tensors(records[:2], config.contract)
    bad = BAD_TENSORS[case](good, config.contract)
    r = infer(client, model_name, {"inputs": bad})
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    changed = {t["name"] for t in bad if t not in good} | {t["name"] for t in good if t not in bad}
    if case == "input twice":
        changed = {good[0]["name"]}
    assert any(repr(name) in message for name in changed), message


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[]", b'{"inputs": []}', b'{"inputs": [{"name": 1}]}', b'{"inputs": {}}'],
)
def test_a_malformed_request_is_400_never_500(
    client: TestClient, model_name: str, content: bytes
) -> None:
    r = client.post(f"/v2/models/{model_name}/infer", content=content, headers=KEY)
    assert r.status_code == 400, r.text
    assert r.json()["error"]


def test_limits_of_the_json_api_apply(
    client: TestClient, model_name: str, records: list[dict[str, Any]], config: Any
) -> None:
    too_many = infer(client, model_name, {"inputs": tensors(records[:6], config.contract)})
    assert too_many.status_code == 400 and "at most 5" in too_many.json()["error"]
    unknown_output = infer(
        client,
        model_name,
        {"inputs": tensors(records[:1], config.contract), "outputs": [{"name": "x"}]},
    )
    assert unknown_output.status_code == 400 and "'x'" in unknown_output.json()["error"]
    huge = client.post(f"/v2/models/{model_name}/infer", content=b" " * 30_000, headers=KEY)
    assert huge.status_code == 413 and "larger than" in huge.json()["error"]


def _triton_inputs(
    records: list[dict[str, Any]], contract: Contract, binary: bool
) -> list[InferInput]:
    """The records as tritonclient's inputs, numpy arrays of the advertised datatypes."""
    dtypes = {"BYTES": np.object_, "BOOL": np.bool_, "INT64": np.int64, "FP64": np.float64}
    out = []
    for f in contract.features:
        kind = advertised(f)
        values = [r[f.name] for r in records]
        array: np.ndarray = np.array(
            [np.nan if v is None else v for v in values], dtype=dtypes[kind]
        )
        tensor = InferInput(f.name, [len(records)], kind)
        tensor.set_data_from_numpy(array, binary_data=binary)
        out.append(tensor)
    return out


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclients_encoding_round_trips(
    client: TestClient,
    model_name: str,
    records: list[dict[str, Any]],
    config: Any,
    binary: bool,
) -> None:
    # Rows with a missing value too: a NaN in a binary FP64 tensor is the contract's null.
    nullable = [f.name for f in config.contract.features if f.nullable]
    rows = (
        [r for r in records if any(r[n] is None for n in nullable)][:1] + records[:3]
        if binary
        else records[:4]
    )
    requested = [
        InferRequestedOutput(name, binary_data=binary) for name in ("probability", "label")
    ]
    body, json_size = _get_inference_request(
        _triton_inputs(rows, config.contract, binary),
        "7",
        requested,
        0,
        False,
        False,
        0,
        None,
        None,
    )
    headers = {**KEY, "Content-Type": "application/octet-stream"}
    if json_size is not None:
        headers[HEADER_LENGTH] = str(json_size)
    r = client.post(f"/v2/models/{model_name}/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    result = InferResult.from_response_body(r.content, header_length=r.headers.get(HEADER_LENGTH))
    single = [client.post("/predict", json=rec, headers=KEY).json() for rec in rows]
    assert result.as_numpy("probability").tolist() == pytest.approx(
        [s["probability"] for s in single], abs=1e-12
    )
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()]
    assert labels == [s["label"] for s in single]
    assert (HEADER_LENGTH in r.headers) is binary


def test_the_openapi_schema_of_infer_accepts_what_the_route_accepts(
    client: TestClient, model_name: str, records: list[dict[str, Any]], config: Any
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/infer",
    } <= set(paths)
    schema = paths["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    good = {"inputs": tensors(records[:2], config.contract)}
    jsonschema.validate(good, schema)
    assert infer(client, model_name, good).status_code == 200
    wrong = {
        "inputs": _edit(
            good["inputs"], _first(config.contract, FeatureType.categorical), data=["?", "?"]
        )
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)
