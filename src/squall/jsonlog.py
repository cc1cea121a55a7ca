"""Structured (JSON) logs: one access record per request, the same fields for both interfaces.

:func:`access_json` makes the line that ``--access-log-format json`` logs (web/access_log.py's
:class:`~squall.web.JsonAccessLogger` for the aiohttp interface, asgi/handler.py for ASGI);
:class:`JsonFormatter` turns squall's other log records into JSON objects too, so that stderr
is one JSON object a line and a log pipeline needs no second parser.
"""

from __future__ import annotations

import json
import json.encoder
import logging
import time
from collections.abc import Callable
from typing import Final

__all__ = ("ACCESS_FIELDS", "REQUEST_ID_HEADER", "JsonFormatter", "access_json", "iso_time")

REQUEST_ID_HEADER: Final = "X-Request-ID"
"""The request header whose value the access record carries as ``request_id`` by default."""

ACCESS_FIELDS: Final = (
    "time",
    "client",
    "method",
    "path",
    "query",
    "protocol",
    "status",
    "bytes",
    "duration",
    "user_agent",
    "request_id",
)
"""The keys of every access record, in their order (docs/guide.md, 'Logging')."""

_encode = json.JSONEncoder(separators=(",", ":")).encode
_esc: Callable[[str], str] = json.encoder.encode_basestring_ascii
_cached = (-1, "")  # (a second, its text): one tuple, so threads never see half of it


def iso_time(now: float) -> str:
    """``now`` (seconds since the epoch) as ISO 8601 in UTC, to the millisecond:
    ``2025-01-31T12:00:00.123+00:00``. The part up to the second is made once per second."""
    global _cached
    second = int(now)
    cached, text = _cached
    if second != cached:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _cached = (second, text)
    return f"{text}.{int((now - second) * 1000):03d}+00:00"


def access_json(
    client: str | None,
    method: str,
    path: str,
    query: str,
    protocol: str,
    status: int | str,
    size: int,
    duration: float,
    user_agent: str | None,
    request_id: str | None,
) -> str:
    """The access record of one request as one line of JSON (keys as :data:`ACCESS_FIELDS`).

    Written out rather than ``json.dumps`` of a dict: a third of the time (each string through
    the json module's C escaper), and ``duration`` in fixed point, never ``1e-05``.
    """
    return (
        f'{{"time":"{iso_time(time.time())}","client":{_text(client)},"method":{_esc(method)},'
        f'"path":{_esc(path)},"query":{_esc(query)},"protocol":{_esc(protocol)},'
        f'"status":{status if type(status) is int else _esc(str(status))},"bytes":{size:d},'
        f'"duration":{duration:.6f},"user_agent":{_text(user_agent)},'
        f'"request_id":{_text(request_id)}}}'
    )


def _text(value: str | None) -> str:
    return "null" if value is None else _esc(value)


class JsonFormatter(logging.Formatter):
    """Every record as one JSON object: ``time``, ``level``, ``logger``, ``message`` (and
    ``exception``, the traceback, if any). An access record's message already is one: it is
    passed on as it is."""

    def __init__(self, access_logger: str = "squall.access") -> None:
        super().__init__()
        self._access = access_logger

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == self._access and message.startswith("{"):
            return message
        data: dict[str, object] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return _encode(data)
