"""The Open Inference Protocol (V2: KServe, Triton, MLServer) beside our JSON API.

One model is served, under its registered name. Each contract feature is one input tensor of
shape `[n]` (or `[n, 1]`): `BYTES` for categorical (and text) features, numbers for numeric ones
(`FP64`, or `INT64` for an integer feature that is not nullable; every V2 integer and float type
is accepted), `BOOL` for booleans (integers 0/1 too). The outputs follow the task: for a binary
target, the positive-class probability (`FP64`), the label at the model's threshold (`BYTES`) and
the request id of each row (`BYTES`, for /feedback). The tensors are turned into the columns of a
by-column batch and go through the very validator /predict/batch uses, so the contract's checks
are the same; a bad tensor is a 400 whose `{"error": ...}` names the input (and the element).
Every answered row is logged like /predict, so the drift check sees V2 traffic too.

Triton's binary tensor extension is spoken as well (tritonclient uses it by default): inputs
whose `parameters.binary_data_size` says so are read from the bytes after the JSON header
(`Inference-Header-Content-Length`), a NaN in a binary float tensor being a missing value, and
outputs are sent binary when the request asks for it (`binary_data_output`, or `binary_data` on
a requested output).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

import numpy as np
import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import Field, TypeAdapter, ValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from typing_extensions import TypedDict

from core.columns import LABEL, PROBABILITIES, PROBABILITY, REQUEST_ID, VALUE
from core.config import Contract, Feature, FeatureType, TaskType
from serving.http import JSON, json_response, read_body
from serving.service import Answers, ModelService

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]
FLOATS: dict[str, type[np.generic]] = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
INTEGERS: dict[str, type[np.integer[Any]]] = {
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
}
NUMPY: dict[str, type[np.generic]] = {"BOOL": np.bool_, **INTEGERS, **FLOATS}
# Datatypes each feature type accepts, the first one advertised; anything else (categorical,
# text) is strings.
ACCEPTED: dict[FeatureType, tuple[str, ...]] = {
    FeatureType.numeric: ("FP64", "FP32", "FP16", *INTEGERS),
    FeatureType.boolean: ("BOOL", *INTEGERS),
}
STRINGS = ("BYTES",)
MAX_ERRORS = 5


class InferError(Exception):
    """A request the protocol or the contract refuses: a 400 with its message."""


def accepted(feature: Feature) -> tuple[str, ...]:
    """The V2 datatypes an input tensor for `feature` may have."""
    return ACCEPTED.get(feature.type, STRINGS)


def advertised(feature: Feature) -> str:
    """The datatype the model metadata gives for `feature`."""
    if feature.type is FeatureType.numeric and feature.integer and not feature.nullable:
        return "INT64"
    return accepted(feature)[0]


@dataclass(frozen=True)
class Output:
    """One output tensor: its name, datatype and the per-row values taken from the answers."""

    name: str
    datatype: str
    values: Callable[[Answers], list[Any]]  # row-major: `width` values per row
    width: int = 1


def task_outputs(contract: Contract) -> tuple[Output, ...]:
    """The output tensors of the contract's task.

    A binary target gives the positive class's probability, the label and the request id; a
    multiclass one the `[n, k]` probabilities (classes in contract order), the label and the
    request id; a regression its value and the request id.
    """
    target = contract.target
    ids = Output(REQUEST_ID, "BYTES", lambda a: a.request_ids)
    if target.type is TaskType.regression:
        return (Output(VALUE, "FP64", lambda a: a.scores), ids)
    label = Output(LABEL, "BYTES", lambda a: a.labels or [])
    if target.type is TaskType.multiclass:
        k = len(target.classes)
        flat = Output(PROBABILITIES, "FP64", lambda a: [p for row in a.scores for p in row], k)
        return (flat, label, ids)
    return (Output(PROBABILITY, "FP64", lambda a: a.scores), label, ids)


# The envelope of a request, as the protocol defines it; the contract's checks come after.
class _Tensor(TypedDict):
    name: str
    shape: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    datatype: str
    parameters: NotRequired[dict[str, Any]]
    data: NotRequired[list[Any]]


class _RequestedOutput(TypedDict):
    name: str
    parameters: NotRequired[dict[str, Any]]


class _InferRequest(TypedDict):
    id: NotRequired[str]
    parameters: NotRequired[dict[str, Any]]
    inputs: Annotated[list[_Tensor], Field(min_length=1)]
    outputs: NotRequired[list[_RequestedOutput]]


ENVELOPE: TypeAdapter[Any] = TypeAdapter(_InferRequest)


def _where(loc: Sequence[Any], raw: Any) -> str:
    """A pydantic location in the request as text, naming an input by its name when it has one."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            node = node[item] if isinstance(node, list) and item < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            parts.append(f"[{item}]" + (f" ({name!r})" if isinstance(name, str) else ""))
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def parse_envelope(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """Split the body into the request's JSON and the binary tensor data after it."""
    binary = b""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InferError(
                f"{HEADER_LENGTH} is {header_length!r}: not a length within the body "
                f"({len(body)} bytes)"
            )
        body, binary = body[: int(header_length)], body[int(header_length) :]
    try:
        return ENVELOPE.validate_json(body), binary
    except ValidationError as exc:
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InferError(f"the request is not valid JSON: {exc.errors()[0]['msg']}") from None
        problems = [f"{_where(e['loc'], raw) or 'request'}: {e['msg']}" for e in exc.errors()]
        raise InferError("; ".join(problems[:MAX_ERRORS])) from None


def from_binary(datatype: str, raw: bytes) -> list[Any]:
    """Decode binary tensor data (little-endian; BYTES as 4-byte length + bytes per element)."""
    if datatype in STRINGS:
        out, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise ValueError("BYTES data ends inside an element's length")
            (size,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + size > len(raw):
                raise ValueError("BYTES data ends inside an element")
            out.append(raw[pos : pos + size].decode())
            pos += size
        return out
    dtype = np.dtype(NUMPY[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise ValueError(f"{len(raw)} bytes is not a whole number of {datatype} values")
    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    if datatype in FLOATS:  # numpy's missing value is NaN; the contract's is null
        return [None if math.isnan(v) else v for v in values]
    return values


def to_binary(datatype: str, values: list[Any]) -> bytes:
    """Encode an output's values as binary tensor data."""
    if datatype in STRINGS:
        encoded = [str(v).encode() for v in values]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    return np.asarray(values, dtype=np.dtype(NUMPY[datatype]).newbyteorder("<")).tobytes()


def _fits(datatype: str) -> Callable[[Any], bool]:
    """Whether one JSON value is of `datatype` (null always is: the contract decides on it)."""
    if datatype in STRINGS:
        return lambda v: isinstance(v, str)
    if datatype == "BOOL":
        return lambda v: isinstance(v, bool)
    if datatype in INTEGERS:
        info = np.iinfo(INTEGERS[datatype])
        low, high = int(info.min), int(info.max)
        return lambda v: type(v) is int and low <= v <= high
    return lambda v: type(v) in (int, float)


def _flat(tensor: dict[str, Any], data: list[Any]) -> list[Any]:
    """The values of a `[n]` or `[n, 1]` tensor, given flat or as `n` one-element lists."""
    name, shape = tensor["name"], tensor["shape"]
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise InferError(f"input {name!r}: shape {shape} is not [n] or [n, 1] (one feature)")
    if len(shape) == 2 and data and isinstance(data[0], list):
        if any(not isinstance(row, list) or len(row) != 1 for row in data):
            raise InferError(f"input {name!r}: data for shape {shape} must be [[v], [v], ...]")
        data = [row[0] for row in data]
    if len(data) != shape[0]:
        raise InferError(
            f"input {name!r}: shape {shape} says {shape[0]} values, data has {len(data)}"
        )
    fits = _fits(tensor["datatype"])
    for i, value in enumerate(data):
        if value is not None and not fits(value):
            raise InferError(
                f"input {name!r} [{i}]: {value!r} is not of datatype {tensor['datatype']}"
            )
    return data


def _tensor_data(tensors: list[dict[str, Any]], binary: bytes) -> Iterator[list[Any]]:
    """Each tensor's data, from JSON or from its slice of the binary part, in request order."""
    pos = 0
    for tensor in tensors:
        size = tensor.get("parameters", {}).get("binary_data_size")
        if size is None:
            if "data" not in tensor:
                raise InferError(f"input {tensor['name']!r}: no data and no binary_data_size")
            yield tensor["data"]
            continue
        if type(size) is not int or size < 0 or pos + size > len(binary):
            raise InferError(
                f"input {tensor['name']!r}: binary_data_size {size!r} is not within the "
                f"{len(binary)} bytes after the JSON header"
            )
        try:
            yield from_binary(tensor["datatype"], binary[pos : pos + size])
        except (ValueError, UnicodeDecodeError) as exc:
            raise InferError(f"input {tensor['name']!r}: bad binary data: {exc}") from None
        pos += size
    if pos != len(binary):
        raise InferError(f"{len(binary) - pos} bytes after the JSON header belong to no input")


class V2Model:
    """The served model as the protocol sees it: metadata, and inputs turned into columns."""

    def __init__(self, service: ModelService) -> None:
        self.service = service
        self.contract = service.contract
        self.name = str(service.bundle.metadata.get("model_name") or service.config.project)
        self.version = service.version
        self.features = {f.name: f for f in self.contract.features}
        self.outputs = {o.name: o for o in task_outputs(self.contract)}
        self.columns = service.schemas["BatchColumns"]

    def check_model(self, name: str, version: str | None = None) -> None:
        """404 unless `name` (and `version`, when given) is the model served here."""
        if name != self.name:
            raise HTTPException(
                404, f"model {name!r} is not served here; this server serves {self.name!r}"
            )
        if version is not None and version != self.version:
            raise HTTPException(
                404, f"model {name!r} has no version {version!r} here; it serves {self.version!r}"
            )

    def metadata(self) -> dict[str, Any]:
        """The model metadata response: inputs from the contract, outputs from the task."""
        estimator = self.service.config.model.estimator
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": f"{estimator.split('.')[0]}_{self.service.describe()['scoring']}",
            "inputs": [
                {"name": f.name, "datatype": advertised(f), "shape": [-1]}
                for f in self.contract.features
            ],
            "outputs": [
                {"name": o.name, "datatype": o.datatype, "shape": [-1]}
                for o in self.outputs.values()
            ],
        }

    def _input(self, tensor: dict[str, Any], seen: dict[str, Any]) -> Feature | None:
        """The feature an input tensor carries; None when unknown inputs are ignored."""
        name = tensor["name"]
        feature = self.features.get(name)
        if feature is None:
            if self.contract.unknown_columns == "ignore":
                return None
            raise InferError(
                f"input {name!r} is not a feature of model {self.name!r}; its inputs are "
                f"{', '.join(self.features)}"
            )
        if name in seen:
            raise InferError(f"input {name!r} is given twice")
        if tensor["datatype"] not in accepted(feature):
            raise InferError(
                f"input {name!r}: datatype {tensor['datatype']!r} does not fit a "
                f"{feature.type.value} feature; send {' or '.join(accepted(feature))}"
            )
        return feature

    def columns_of(self, request: dict[str, Any], binary: bytes) -> tuple[dict[str, Any], int]:
        """Check the input tensors against the contract; return them as validated columns."""
        columns: dict[str, Any] = {}
        for tensor, data in zip(
            request["inputs"], _tensor_data(request["inputs"], binary), strict=True
        ):
            if self._input(tensor, columns) is not None:
                columns[tensor["name"]] = _flat(tensor, data)
        missing = [name for name in self.features if name not in columns]
        if missing:
            raise InferError(
                f"missing input(s) {', '.join(map(repr, missing))}: every feature is one input"
            )
        first, n = next((name, len(values)) for name, values in columns.items())
        for name, values in columns.items():
            if len(values) != n:
                raise InferError(
                    f"input {name!r} has {len(values)} values but {first!r} has {n}: every input "
                    "has one value per row"
                )
        try:
            return self.columns.validate_python({"columns": columns})["columns"], n
        except ValidationError as exc:
            raise InferError("; ".join(self._problems(exc.errors(include_url=False)))) from None

    def _problems(self, errors: list[Any]) -> list[str]:
        """Validation errors of the columns, each naming its input and element."""
        problems: dict[str, str] = {}
        for err in errors:
            loc = list(err["loc"][1:])  # ("columns", feature, index, ...)
            where = f"input {loc[0]!r}" if loc else "inputs"
            if len(loc) > 1 and isinstance(loc[1], int):
                where += f" [{loc[1]}]"
            # A union (a boolean is true/false or 0/1) fails once per member: say it once.
            problems.setdefault(where, f"{where}: {err['msg']}")
        return list(problems.values())[:MAX_ERRORS]

    def selected_outputs(self, request: dict[str, Any]) -> list[tuple[Output, bool]]:
        """The outputs to send, each with whether it goes as binary data."""
        binary = request.get("parameters", {}).get("binary_data_output") is True
        wanted = request.get("outputs")
        if not wanted:
            return [(o, binary) for o in self.outputs.values()]
        chosen = []
        for item in wanted:
            output = self.outputs.get(item["name"])
            if output is None:
                raise InferError(
                    f"output {item['name']!r} is not an output of model {self.name!r}; its "
                    f"outputs are {', '.join(self.outputs)}"
                )
            chosen.append((output, item.get("parameters", {}).get("binary_data", binary) is True))
        return chosen

    def response(
        self, request: dict[str, Any], answers: Answers, outputs: list[tuple[Output, bool]]
    ) -> tuple[bytes, bytes]:
        """The inference response's JSON and its binary part (empty when no output is binary)."""
        n = len(answers.request_ids)
        tensors, buffers = [], []
        for output, binary in outputs:
            values = output.values(answers)
            tensor: dict[str, Any] = {
                "name": output.name,
                "datatype": output.datatype,
                "shape": [n] if output.width == 1 else [n, output.width],
            }
            if binary:
                raw = to_binary(output.datatype, values)
                tensor["parameters"] = {"binary_data_size": len(raw)}
                buffers.append(raw)
            else:
                tensor["data"] = values
            tensors.append(tensor)
        head: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        if "id" in request:
            head["id"] = request["id"]
        return orjson.dumps({**head, "outputs": tensors}), b"".join(buffers)

    def request_schema(self) -> dict[str, Any]:
        """The JSON schema of an inference request for this model (for the OpenAPI document)."""
        columns = self.columns.json_schema()
        defs = columns.get("$defs", {})
        ref = columns["properties"]["columns"].get("$ref", "")
        by_feature = defs.get(ref.rsplit("/", 1)[-1], columns["properties"]["columns"])[
            "properties"
        ]
        inputs: list[dict[str, Any]] = []
        for feature in self.contract.features:
            values = by_feature[feature.name]
            item = values["items"]
            data = {
                **values,
                "items": {
                    "anyOf": [item, {"type": "array", "items": item, "minItems": 1, "maxItems": 1}]
                },
            }
            inputs.append(
                {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "properties": {
                        "name": {"const": feature.name},
                        "datatype": {"enum": list(accepted(feature))},
                        "shape": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 0},
                            "minItems": 1,
                            "maxItems": 2,
                        },
                        "parameters": {"type": "object"},
                        "data": data,
                    },
                }
            )
        if self.contract.unknown_columns == "ignore":
            inputs.append(ENVELOPE.json_schema()["$defs"]["_Tensor"])
        output = {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"enum": list(self.outputs)}, "parameters": {"type": "object"}},
        }
        return {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "minItems": 1, "items": {"anyOf": inputs}},
                "outputs": {"type": "array", "items": output},
            },
        }


class V2Route(APIRoute):
    """A route whose errors have the protocol's body, `{"error": "..."}`, status kept."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except InferError as exc:
                return _error(400, str(exc))
            except StarletteHTTPException as exc:
                return _error(exc.status_code, str(exc.detail), exc.headers)

        return route


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps({"error": message}), status, headers, media_type=JSON)


ERROR: dict[str, Any] = {
    "content": {JSON: {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}
}


def v2_router(service: ModelService, auth: list[Any]) -> APIRouter:
    """The Open Inference Protocol's REST routes: health, server and model metadata, infer."""
    model = V2Model(service)
    limit = service.config.serving.max_body_bytes
    router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"], route_class=V2Route)
    not_found: dict[int | str, dict[str, Any]] = {
        404: {"description": "no such model (or version) here", **ERROR}
    }

    @router.get("/health/live")
    async def live() -> Response:
        """Liveness: the process answers."""
        return json_response({"live": True})

    @router.get("/health/ready", responses={503: {"description": "not ready"}})
    async def ready() -> Response:
        """Readiness: the model is loaded and the prediction log is alive (503 when not)."""
        return json_response({"ready": service.ready}, 200 if service.ready else 503)

    @router.get("")
    async def server() -> Response:
        """Server metadata: name, version and the protocol extensions spoken."""
        return json_response(
            {"name": service.config.project, "version": model.version, "extensions": EXTENSIONS}
        )

    async def metadata() -> Response:
        """Model metadata: the input tensors (one per feature) and the output tensors."""
        return json_response(model.metadata())

    async def model_ready() -> Response:
        """Model readiness (503 when not ready)."""
        return json_response(
            {"name": model.name, "ready": service.ready}, 200 if service.ready else 503
        )

    async def infer(request: Request) -> Response:
        """Score the rows of the input tensors; every row is logged like a /predict request."""
        body = await read_body(request, limit)
        parsed, binary = parse_envelope(body, request.headers.get(HEADER_LENGTH))
        outputs = model.selected_outputs(parsed)
        columns, n = model.columns_of(parsed, binary)
        answers = await service.predict_columns(columns, n)
        head, tail = model.response(parsed, answers, outputs)
        log = BackgroundTask(service.log_batch, answers, columns)
        if not tail:
            return Response(head, media_type=JSON, background=log)
        return Response(
            head + tail,
            media_type="application/octet-stream",
            headers={HEADER_LENGTH: str(len(head))},
            background=log,
        )

    # The schema names the one model (and version) served, so generated requests can reach it;
    # any other name is still a 404, not a validation error.
    name_path = Path(json_schema_extra={"enum": [model.name]})
    version_path = Path(json_schema_extra={"enum": [model.version]})

    async def named(name: str = name_path) -> None:
        model.check_model(name)

    async def pinned(name: str = name_path, version: str = version_path) -> None:
        model.check_model(name, version)

    infer_body = {
        "requestBody": {"required": True, "content": {JSON: {"schema": model.request_schema()}}}
    }
    for path, check in (("/models/{name}", named), ("/models/{name}/versions/{version}", pinned)):
        which = [Depends(check)]
        router.add_api_route(
            path, metadata, methods=["GET"], dependencies=which, responses=not_found
        )
        router.add_api_route(
            f"{path}/ready", model_ready, methods=["GET"], dependencies=which, responses=not_found
        )
        router.add_api_route(
            f"{path}/infer",
            infer,
            methods=["POST"],
            dependencies=[*which, *auth],
            openapi_extra=infer_body,
            responses={400: {"description": "a bad tensor, named", **ERROR}, **not_found},
        )
    return router
