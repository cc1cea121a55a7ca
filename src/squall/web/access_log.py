"""AccessLogger: aiohttp's access-log format strings (``%a %t "%r" %s %b`` ...)."""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .request import BaseRequest
    from .response import StreamResponse

__all__ = ("AccessLogger",)

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
            "t": lambda r, s, t: (
                datetime.datetime.now(datetime.UTC).astimezone().strftime("[%d/%b/%Y:%H:%M:%S %z]")
            ),
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


def _constant(value: str) -> _Item:
    return lambda r, s, t: value
