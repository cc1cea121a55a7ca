"""AccessLogger: aiohttp's access-log format strings (``%a %t "%r" %s %b`` ...); and
JsonAccessLogger: one JSON object a request (``--access-log-format json``)."""

from __future__ import annotations

import datetime
import logging
import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from ..jsonlog import REQUEST_ID_HEADER, access_json

if TYPE_CHECKING:
    from .request import BaseRequest
    from .response import StreamResponse

__all__ = ("AccessLogger", "JsonAccessLogger")

access_logger = logging.getLogger("squall.access")

_Item = Callable[["BaseRequest", "StreamResponse", float], str]


class AccessLogger:
    """Formats one line per request with aiohttp's (Apache-like) directives.

    Supported: ``%%``, ``%a`` remote address, ``%t`` time, ``%P`` pid, ``%r`` request line, ``%s``
    status, ``%b`` body bytes, ``%T`` seconds, ``%Tf`` seconds with fraction, ``%D`` microseconds,
    ``%{H}i`` request header, ``%{H}o`` response header.
    """

    LOG_FORMAT = '%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"'
    FORMAT_RE = re.compile(r"%(\{([A-Za-z0-9\-_]+)\}([ioe])|[atPrsbOD]|Tf?)")

    def __init__(
        self, logger: logging.Logger = access_logger, log_format: str = LOG_FORMAT
    ) -> None:
        self.logger = logger
        self._items: list[_Item] = []
        pos = 0
        for match in self.FORMAT_RE.finditer(log_format):
            literal = log_format[pos : match.start()].replace("%%", "%")
            if literal:
                self._items.append(_constant(literal))
            self._items.append(self._item(match))
            pos = match.end()
        tail = log_format[pos:].replace("%%", "%")
        if tail:
            self._items.append(_constant(tail))

    @staticmethod
    def _item(match: re.Match[str]) -> _Item:
        if match.group(2):
            key, kind = match.group(2), match.group(3)
            if kind == "i":
                return lambda r, s, t: r.headers.get(key, "-")
            if kind == "o":
                return lambda r, s, t: s.headers.get(key, "-") if s._headers is not None else "-"
            return lambda r, s, t: os.environ.get(key, "-")
        code = match.group(1)
        items: dict[str, _Item] = {
            "a": lambda r, s, t: r.remote or "-",
            "t": lambda r, s, t: _local_time(time.time()),
            "P": lambda r, s, t: f"<{os.getpid()}>",
            "r": lambda r, s, t: f"{r.method} {r.path_qs} HTTP/{r.version.major}.{r.version.minor}",
            "s": lambda r, s, t: str(s.status),
            "b": lambda r, s, t: str(s.body_length),
            "O": lambda r, s, t: str(s.body_length),
            "T": lambda r, s, t: str(round(t)),
            "Tf": lambda r, s, t: f"{t:06f}",
            "D": lambda r, s, t: str(round(t * 1_000_000)),
        }
        return items[code]

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, elapsed: float) -> None:
        try:
            line = "".join(item(request, response, elapsed) for item in self._items)
            self.logger.info(line)
        except Exception:
            self.logger.exception("Error in logging")


_cached = (-1, "")  # (a second, its text): one tuple, so threads never see half of it


def _local_time(now: float) -> str:
    """``%t``: ``now`` in local time, ``[07/Dec/2026:19:01:40 +0000]``, made once per second
    (formatting it for each request cost more than the rest of a hello request)."""
    global _cached
    second = int(now)
    cached, text = _cached
    if second != cached:
        local = datetime.datetime.fromtimestamp(second, datetime.UTC).astimezone()
        text = local.strftime("[%d/%b/%Y:%H:%M:%S %z]")
        _cached = (second, text)
    return text


def _constant(value: str) -> _Item:
    return lambda r, s, t: value


class JsonAccessLogger(AccessLogger):
    """One JSON object a request, the fields of ``--access-log-format json`` (docs/guide.md,
    'Logging'): pass it as ``access_log_class`` to ``web.run_app`` or ``AppRunner``.

    ``log_format`` is ignored: the fields are fixed, so that every line parses the same way.
    The ``request_id`` field is the value of the header :attr:`request_id_header` (a subclass
    may name another, or None for no request id).
    """

    request_id_header: ClassVar[str | None] = REQUEST_ID_HEADER

    def __init__(
        self, logger: logging.Logger = access_logger, log_format: str = AccessLogger.LOG_FORMAT
    ) -> None:
        self.logger = logger
        self._items = []

    def log(self, request: BaseRequest, response: StreamResponse, elapsed: float) -> None:
        try:
            headers = request.headers
            version = request.version
            id_header = self.request_id_header
            method = request.method
            status = response.status
            # the body bytes on the wire: none to HEAD, nor with 1xx, 204 and 304
            if method == "HEAD" or status < 200 or status == 204 or status == 304:
                size = 0
            else:
                size = response.body_length
            line = access_json(
                request.remote,
                method,
                request.path,
                request.raw_path.partition("?")[2],  # as sent, as ASGI's query_string
                f"HTTP/{version.major}.{version.minor}",
                status,
                size,
                elapsed,
                headers.get("User-Agent"),
                headers.get(id_header) if id_header is not None else None,
            )
            self.logger.info(line)
        except Exception:
            self.logger.exception("Error in logging")


def json_access_logger(request_id_header: str | None) -> type[JsonAccessLogger]:
    """:class:`JsonAccessLogger`, with the request id taken from ``request_id_header``."""
    if request_id_header == JsonAccessLogger.request_id_header:
        return JsonAccessLogger
    return type("JsonAccessLogger", (JsonAccessLogger,), {"request_id_header": request_id_header})
