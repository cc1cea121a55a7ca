"""JSON responses: ``json_response`` and ``json_bytes_response``, as aiohttp's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .jsondumps import dumps as fast_dumps
from .response import KEYWORDS_ONLY, LooseHeaders, Response

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
    _positional: Any = KEYWORDS_ONLY,  # (see KEYWORDS_ONLY)
    text: str | None = None,
    body: bytes | None = None,
    status: int = 200,
    reason: str | None = None,
    headers: LooseHeaders | None = None,
    content_type: str = "application/json",
    dumps: Any = json.dumps,
) -> Response:
    """A JSON response, as aiohttp's ``json_response``."""
    if _positional is not KEYWORDS_ONLY:
        raise TypeError("json_response() takes one positional argument (data)")
    if data is not None:
        if text or body:
            raise ValueError("only one of data, text, or body should be specified")
        text = fast_dumps(data) if dumps is json.dumps else dumps(data)
    if body is None and status == 200 and reason is None and headers is None:
        return Response(text=text, content_type=content_type)  # (fewer names to match)
    return Response(
        text=text,
        body=body,
        status=status,
        reason=reason,
        headers=headers,
        content_type=content_type,
    )
