"""The V2 routes against a real uvicorn on 127.0.0.1: NVIDIA's `tritonclient` (a third-party V2
client) reads the metadata, scores rows in binary and in JSON, and gets the same answers as
/predict; schemathesis fuzzes the V2 routes from the OpenAPI document and finds no 5xx."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from core.config import Contract
from tests.serving.conftest import API_KEY, Server, schemathesis

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
KEY = {"X-API-Key": API_KEY}
# tritonclient adds its own headers to the dict it is given: give it a copy each time.
NUMPY = {"BYTES": np.object_, "BOOL": np.bool_, "INT64": np.int64, "FP64": np.float64}


def client_for(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)


def inputs_from_metadata(
    meta: dict[str, Any], records: list[dict[str, Any]], binary: bool
) -> list[triton.InferInput]:
    """What a V2 client does: one numpy array per input the metadata lists, of its datatype."""
    out = []
    for spec in meta["inputs"]:
        values = [r[spec["name"]] for r in records]
        array: np.ndarray = np.array(
            [np.nan if v is None else v for v in values], dtype=NUMPY[spec["datatype"]]
        )
        tensor = triton.InferInput(spec["name"], [len(records)], spec["datatype"])
        tensor.set_data_from_numpy(array, binary_data=binary)
        out.append(tensor)
    return out


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_scores_like_predict(
    server: Server, records: list[dict[str, Any]], config: Any, binary: bool
) -> None:
    with server.client() as http:
        name = http.get("/model").json()["name"]
        nullable = [f.name for f in config.contract.features if f.nullable]
        with_null = [r for r in records if any(r[n] is None for n in nullable)][:1]
        rows = [*(with_null if binary else []), *records[:4]][:5]  # JSON cannot carry NaN
        expected = [http.post("/predict", json=r, headers=KEY).json() for r in rows]
    client = client_for(server)
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(name) and client.is_model_ready(name, "0")
        meta = client.get_model_metadata(name)
        assert [i["name"] for i in meta["inputs"]] == config.contract.feature_names
        outputs = (
            None if binary else [triton.InferRequestedOutput("probability", binary_data=False)]
        )
        result = client.infer(
            name, inputs_from_metadata(meta, rows, binary), outputs=outputs, headers={**KEY}
        )
        probability = result.as_numpy("probability").tolist()
        assert probability == pytest.approx([e["probability"] for e in expected], abs=1e-12)
        if binary:  # every output came, in binary: labels too
            labels = [v.decode() for v in result.as_numpy("label").tolist()]
            assert labels == [e["label"] for e in expected]
            assert len(set(result.as_numpy("request_id").tolist())) == len(rows)
    finally:
        client.close()


def test_tritonclient_sees_the_errors_with_their_message(
    server: Server, records: list[dict[str, Any]], config: Contract
) -> None:
    with server.client() as http:
        name = http.get("/model").json()["name"]
    client = client_for(server)
    try:
        meta = client.get_model_metadata(name)
        inputs = inputs_from_metadata(meta, records[:2], binary=True)
        categorical = next(
            i for i, spec in enumerate(meta["inputs"]) if spec["datatype"] == "BYTES"
        )
        wrong = triton.InferInput(meta["inputs"][categorical]["name"], [2], "BYTES")
        wrong.set_data_from_numpy(np.array(["no such", "category"], dtype=np.object_))
        inputs[categorical] = wrong
        with pytest.raises(InferenceServerException) as bad:
            client.infer(name, inputs, headers={**KEY})
        assert bad.value.status() == "400"
        assert repr(meta["inputs"][categorical]["name"]) in bad.value.message()
        with pytest.raises(InferenceServerException) as unknown:
            client.get_model_metadata("no-such-model")
        assert unknown.value.status() == "404"
        with pytest.raises(InferenceServerException) as no_key:
            client.infer(name, inputs_from_metadata(meta, records[:1], binary=True))
        assert no_key.value.status() == "401" and "API key" in no_key.value.message()
    finally:
        client.close()


def test_fuzzing_the_v2_routes_finds_no_server_error(server: Server) -> None:
    # Only /v2; its schema names the served model, so generated requests reach infer.
    report = schemathesis(server, "--include-path-regex", "^/v2", max_examples=60)
    assert "/v2/models/{name}/infer" in report
