"""JSON responses: ``json_response`` and ``json_bytes_response``, as aiohttp's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .jsondumps import dumps as fast_dumps
from .response import LooseHeaders, Response

__all__ = ("json_bytes_response", "json_response")

_SENTINEL: Any = object()


def json_bytes_response(
    data: Any = _SENTINEL,
    *,
    dumps: Callable[[Any], bytes],
    body: bytes | None = None,
    status: int = 200,
    reason: str | None = None,
    headers: LooseHeaders | None = None,
    content_type: str = "application/json",
) -> Response:
    """A JSON response from an encoder that returns bytes (orjson...), as aiohttp's."""
    if data is not _SENTINEL:
        if body is not None:
            raise ValueError("only one of data or body should be specified")
        body = dumps(data)
    return Response(
        body=body, status=status, reason=reason, headers=headers, content_type=content_type
    )


def json_response(
    data: Any = None,
    *,
    text: str | None = None,
    body: bytes | None = None,
    status: int = 200,
    reason: str | None = None,
    headers: LooseHeaders | None = None,
    content_type: str = "application/json",
    dumps: Any = json.dumps,
) -> Response:
    """A JSON response, as aiohttp's ``json_response``."""
    if data is not None:
        if text or body:
            raise ValueError("only one of data, text, or body should be specified")
        text = fast_dumps(data) if dumps is json.dumps else dumps(data)
    return Response(
        text=text,
        body=body,
        status=status,
        reason=reason,
        headers=headers,
        content_type=content_type,
    )
