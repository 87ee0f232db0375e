"""The service's real app with a fault put into its model call, for the canary analysis tests.

`uvicorn --factory tests.deploy.canary_faults:app_from_env` builds exactly what
`serving.app:app_from_env` builds (settings, bundle, metrics middleware, routes) after wrapping
`ModelService.predict_one`, the single-record scoring call, by CANARY_FAULT:

- `error`: every CANARY_FAULT_EVERY-th call raises, so that request is a 500 (a model that fails
  on some inputs);
- `slow`: every call waits CANARY_FAULT_SECONDS first, without blocking the event loop (a heavier
  model, a slow dependency).

The fault sits inside the app, behind the metrics middleware, so /metrics counts it as the real
service would: no product code knows about it and no proxy stands between Prometheus and it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from serving import app as serving_app
from serving.service import ModelService

FAULTS = ("error", "slow")


def _faulty(original: Callable[..., Awaitable[Any]], fault: str) -> Callable[..., Awaitable[Any]]:
    every = int(os.environ.get("CANARY_FAULT_EVERY", "4"))
    seconds = float(os.environ.get("CANARY_FAULT_SECONDS", "0.2"))
    calls = itertools.count(1)

    async def predict_one(self: ModelService, *args: Any, **kwargs: Any) -> Any:
        if fault == "slow":
            await asyncio.sleep(seconds)
        elif next(calls) % every == 0:
            raise RuntimeError("injected canary fault")
        return await original(self, *args, **kwargs)

    return predict_one


def app_from_env() -> FastAPI:
    """Build the service's app with the fault CANARY_FAULT names (none: the app unchanged)."""
    fault = os.environ.get("CANARY_FAULT", "")
    if fault:
        if fault not in FAULTS:
            raise ValueError(f"CANARY_FAULT={fault!r}: one of {FAULTS}")
        ModelService.predict_one = _faulty(ModelService.predict_one, fault)  # type: ignore[method-assign]
    return serving_app.app_from_env()
