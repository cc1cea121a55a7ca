"""Serialising response heads: pre-encoded status lines, a per-second Date header, validation."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

from .. import __version__

SERVER_SOFTWARE: Final = f"Python/{sys.version_info[0]}.{sys.version_info[1]} squall/{__version__}"

REASONS: Final[dict[int, str]] = {s.value: s.phrase for s in HTTPStatus}

_STATUS_LINES: Final[dict[tuple[str, int], bytes]] = {}


def status_line(version: str, status: int, reason: str | None = None) -> bytes:
    """``b"HTTP/1.1 200 OK\\r\\n"``, cached for the standard reason phrases.

    Raises ValueError for a status that is not three digits or a reason with CR, LF or NUL:
    either would make the response unreadable or split it.
    """
    if reason is None:
        key = (version, status)
        line = _STATUS_LINES.get(key)
        if line is None:
            _check_status(status)
            phrase = REASONS.get(status, "")
            line = f"HTTP/{version} {status} {phrase}\r\n".encode("latin-1")
            _STATUS_LINES[key] = line
        return line
    _check_status(status)
    if "\r" in reason or "\n" in reason or "\x00" in reason:
        raise ValueError("Reason cannot contain \\r, \\n or NUL")
    return f"HTTP/{version} {status} {reason}\r\n".encode()


def _check_status(status: int) -> None:
    if type(status) is not int or not 100 <= status <= 999:
        raise ValueError(f"Invalid HTTP status {status!r}: three digits, 100 to 999")


class Clock:
    """Wall-clock second and the Date/Server header bytes for it, refreshed by the server's tick."""

    __slots__ = ("date_server", "second")

    def __init__(self) -> None:
        self.second = 0
        self.date_server = b""
        self.update()

    def update(self) -> None:
        now = int(time.time())
        if now != self.second:
            self.second = now
            date = formatdate(now, usegmt=True)
            self.date_server = f"Date: {date}\r\nServer: {SERVER_SOFTWARE}\r\n".encode("ascii")


CLOCK: Final = Clock()

_bad_header_char = re.compile(r"[\x00\r\n]").search
_bad_name_char = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]").search


def encode_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    """Serialise header fields, refusing names or values that would split the response."""
    parts = []
    for name, value in headers:
        if not name or _bad_name_char(name) or _bad_header_char(value):
            raise ValueError(f"Invalid character in response header {name!r}")
        parts.append(f"{name}: {value}\r\n")
    return "".join(parts).encode("utf-8")
