"""The serving benchmark's ceiling: a FastAPI app whose /predict returns a constant.

Its own module, importing FastAPI and orjson only, so its memory and start-up are the HTTP
stack's alone (bench_serving imports the training code to fit the model).
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request, Response


def ceiling_app() -> FastAPI:
    """A FastAPI app whose /predict returns a constant: the cost of the HTTP stack alone."""
    app = FastAPI()
    answer = orjson.dumps({"probability": 0.5, "label": "No", "model_version": "0"})

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app
