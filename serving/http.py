"""What both HTTP APIs (ours in serving/app.py, V2 in serving/v2.py) read and answer with."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import HTTPException, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

JSON = "application/json"


def json_response(
    content: Any, status: int = 200, background: BackgroundTask | None = None
) -> Response:
    """`content` as JSON bytes (orjson), no intermediate encoder pass."""
    return Response(
        orjson.dumps(content), status_code=status, media_type=JSON, background=background
    )


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body is larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing with 413 as soon as it is larger than `limit` bytes.

    A declared Content-Length over the limit is refused before a byte is read; a body sent
    without one (chunked) is refused once the bytes read pass the limit.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
