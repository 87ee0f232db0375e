"""The FastAPI app: `create_app(settings)` builds it; `app_from_env` is uvicorn's --factory entry.

Routes are thin: read and validate the body against the models generated from the contract, call
one method of the ModelService, shape the response. Request bodies are validated straight from
bytes by pydantic-core (faster than parsing to Python objects first) and a validation error is the
same 422 FastAPI gives, with the field's location under `body`.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import TypeAdapter, ValidationError
from starlette.background import BackgroundTask

from core.columns import LABEL, MODEL_VERSION, REQUEST_ID
from core.config import load_config
from core.errors import TemplateError
from core.settings import Settings, get_settings
from serving.http import JSON, json_response, read_body
from serving.metrics import MetricsMiddleware
from serving.schemas import (
    FeedbackAccepted,
    batch_prediction_model,
    column_lengths,
    columns_prediction_model,
    prediction_model,
)
from serving.service import ModelService
from serving.v2 import v2_router

# A batch body whose (only) key is "columns" is read by column; anything else as records.
_COLUMNS_FIRST = re.compile(rb'\s*\{\s*"columns"\s*:')
API_KEY_HEADER = "X-API-Key"


def _validate(schema: TypeAdapter[Any], body: bytes) -> Any:
    """Validate JSON bytes against `schema`; a problem is a 422 naming the field (never a 500)."""
    try:
        return schema.validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise _body_errors(errors) from None


def _body_errors(errors: Sequence[Any]) -> RequestValidationError:
    """FastAPI's 422 for errors found in the request body (their `loc` starts with "body")."""
    return RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in errors])


def _body(*names: str) -> dict[str, Any]:
    """OpenAPI for a body that the route validates itself (its schemas are added to components)."""
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in names]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


_DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}}
_LOCATED = {
    "type": "object",
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        }
    },
}


def _error(description: str, schema: dict[str, Any] = _DETAIL) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


# The error answers of every route that reads a body, for the OpenAPI schema.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: _error("the request body is larger than serving.max_body_bytes"),
    415: _error("the request body is not application/json"),
    422: _error("the body does not follow the contract; `loc` names the field", _LOCATED),
}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error(f"missing or wrong API key (header {API_KEY_HEADER})")
}


# Octet-stream is what Triton's binary tensor extension sends to the V2 routes, and tritonclient
# sends no Content-Type at all (""). JSON and octet-stream are not CORS-safelisted; a body with no
# type is, so with AUTH=off a page on another site could post to /v2/.../infer (never /predict):
# keep an API key on a service a browser can reach (docs/serving.md).
V2_MEDIA_TYPES = (JSON, "application/octet-stream", "")


Guard = Callable[[Request], None]


def _media_guard(allowed: tuple[str, ...]) -> Guard:
    """Refuse (415) a body whose declared type is not one of `allowed`: a form or text/plain post
    from a web page on another site would otherwise reach the model with no CORS preflight."""

    def check(request: Request) -> None:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in allowed:
            got = media_type or "no content type"
            wanted = " or ".join(t for t in allowed if t)
            raise HTTPException(415, f"send the body as {wanted} (got {got})")

    return check


def _key_guard(key: str) -> Guard:
    """Refuse (401) a request without the API key in its header."""
    expected = key.encode()

    def check(request: Request) -> None:
        sent = request.headers.get(API_KEY_HEADER)
        # compare_digest takes the same time wherever the first difference is.
        if sent is None or not secrets.compare_digest(sent.encode(), expected):
            raise HTTPException(
                401, f"missing or wrong API key (send it in the {API_KEY_HEADER} header)"
            )

    return check


def _depends(guard: Guard) -> Any:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    async def dependency(request: Request) -> None:
        guard(request)

    return Depends(dependency)


@dataclass(frozen=True)
class BodyChecks:
    """The checks of a route that reads a body: the API key (unless AUTH=off), then its type.

    `guards` are the checks themselves (`DirectRoute` runs them); `dependencies` are the same
    checks as FastAPI dependencies (for the other routes), with the API key's security scheme
    for the OpenAPI schema.
    """

    guards: tuple[Guard, ...]
    keyed: bool

    @property
    def dependencies(self) -> list[Any]:
        scheme = [Security(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))]
        return [*(scheme if self.keyed else []), *map(_depends, self.guards)]

    @property
    def errors(self) -> dict[int | str, dict[str, Any]]:
        """The error responses a body route can give: 401 only when a key is required."""
        return {**(AUTH_ERRORS if self.keyed else {}), **BODY_ERRORS}


def body_checks(settings: Settings, media_types: tuple[str, ...] = (JSON,)) -> BodyChecks:
    """The checks of a body route under these settings."""
    key = settings.auth_key()
    media = _media_guard(media_types)
    if key is None:
        return BodyChecks((media,), keyed=False)
    return BodyChecks((_key_guard(key), media), keyed=True)


def direct_route(guards: tuple[Guard, ...]) -> type[APIRoute]:
    """A route class documented like any APIRoute whose handler skips FastAPI's dependency
    solving: it runs `guards` (the same checks, in order), then awaits the endpoint with the
    request. The endpoints read and validate their bodies themselves; under wrk, solving the
    route's dependencies was a tenth of a worker's time (docs/serving.md, "Speed")."""

    class DirectRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            endpoint = self.endpoint

            async def handler(request: Request) -> Response:
                for guard in guards:
                    guard(request)
                response: Response = await endpoint(request)
                return response

            return handler

    return DirectRoute


def prediction_router(service: ModelService, checks: BodyChecks) -> APIRouter:
    """POST /predict and /predict/batch."""
    record, batch = service.schemas["Record"], service.schemas["BatchRequest"]
    by_column = service.schemas["BatchColumns"]
    limit = service.config.serving.max_body_bytes
    # The checks run in the route (direct_route), not as dependencies.
    router = APIRouter(
        tags=["prediction"], responses=checks.errors, route_class=direct_route(checks.guards)
    )

    target = service.target
    prediction = prediction_model(target)
    by_record, by_columns = batch_prediction_model(target), columns_prediction_model(target)

    @router.post("/predict", response_model=prediction, openapi_extra=_body("Record"))
    async def predict(request: Request) -> Response:
        """Score one record: the task's answer (probability and label, class probabilities and label, or value), version, request id."""
        values = _validate(record, await read_body(request, limit))
        answer = await service.predict_one(values)
        return json_response({**answer, MODEL_VERSION: service.version})

    @router.post(
        "/predict/batch",
        response_model=by_record | by_columns,
        openapi_extra=_body("BatchRequest", "BatchColumns"),
    )
    async def predict_batch(request: Request) -> Response:
        """Score many records in one call (at most `serving.max_batch`), answers in order.

        Send `{"records": [{...}, ...]}` for answers per record, or `{"columns": {feature: [...]}}`
        (faster: fewer bytes to parse) for answers by column.
        """
        body = await read_body(request, limit)
        version = service.version
        if _COLUMNS_FIRST.match(body):
            columns = _validate(by_column, body)["columns"]
            n, errors = column_lengths(columns)
            if errors:
                raise _body_errors(errors)
            answers = await service.predict_columns(columns, n)
            return json_response(
                {MODEL_VERSION: version, **service.columns_answer(answers)},
                background=BackgroundTask(service.log_batch, answers, columns),
            )
        records = _validate(batch, body)["records"]
        answers = await service.predict_many(records)
        labels: list[str | None] = [*answers.labels] if answers.labels else [None] * len(records)
        return json_response(
            {
                MODEL_VERSION: version,
                "predictions": [
                    {**service.answer(rid, p, lab), MODEL_VERSION: version}
                    for rid, p, lab in zip(answers.request_ids, answers.scores, labels, strict=True)
                ],
            },
            background=BackgroundTask(service.log_batch, answers, records),
        )

    return router


def feedback_router(service: ModelService, checks: BodyChecks) -> APIRouter:
    """POST /feedback: the true class (or value) of a logged prediction."""
    model = service.schemas["Feedback"]
    router = APIRouter(tags=["feedback"], dependencies=checks.dependencies, responses=checks.errors)

    @router.post(
        "/feedback",
        response_model=FeedbackAccepted,
        openapi_extra=_body("Feedback"),
        responses={404: {"description": "no logged prediction has this request id"}},
    )
    async def feedback(request: Request) -> Response:
        """Store ground truth for a request id returned by /predict or /predict/batch."""
        parsed = _validate(model, await read_body(request, 64 * 1024))
        request_id, label = parsed[REQUEST_ID], parsed[LABEL]
        if not await service.add_feedback(request_id, label):
            raise HTTPException(404, f"request_id {request_id!r}: no logged prediction has it")
        return json_response({REQUEST_ID: request_id, LABEL: label})

    return router


def operations_router(service: ModelService) -> APIRouter:
    """Liveness, readiness, model description, Prometheus metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @router.get("/ready", responses={503: {"description": "not ready"}})
    async def ready() -> Response:
        """Readiness: the model is loaded and the prediction-log writer is alive."""
        if service.ready:
            return json_response({"status": "ready", MODEL_VERSION: service.version})
        return json_response({"status": "not ready", MODEL_VERSION: service.version}, 503)

    @router.get("/model")
    async def model() -> Response:
        """Name, version, run id, metrics, threshold and contract of the model being served."""
        return json_response(service.describe())

    @router.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    return router


def create_app(settings: Settings) -> FastAPI:
    """Build the service: verify and load the bundle, generate the schemas, wire the routes."""
    config = load_config(settings.config_path, check_estimator=False)
    service = ModelService.load(settings, config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    meta = service.bundle.metadata
    app = FastAPI(
        title=f"{meta.get('model_name') or config.project} prediction service",
        version=service.version,
        description=f"Scores records of the `{config.project}` data contract.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry asks the global providers on every request whether any
        # is configured (4 % of a worker's time under wrk); the service reports through /metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    checks = body_checks(settings)
    app.include_router(prediction_router(service, checks))
    app.include_router(feedback_router(service, checks))
    app.include_router(operations_router(service))
    app.include_router(v2_router(service, body_checks(settings, V2_MEDIA_TYPES).dependencies))
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, adapter in service.schemas.items():
                body = adapter.json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[name] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Build the app from the environment (`uvicorn --factory serving.app:app_from_env`)."""
    try:
        return create_app(get_settings())
    except TemplateError as exc:
        # One clear line instead of a traceback from inside uvicorn, and the error's exit code.
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
