"""The Date and Server header bytes, made once a second, and the standard reason phrases."""

from __future__ import annotations

import sys
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

from .. import __version__

SERVER_SOFTWARE: Final = f"Python/{sys.version_info[0]}.{sys.version_info[1]} squall/{__version__}"

REASONS: Final[dict[int, str]] = {s.value: s.phrase for s in HTTPStatus}


class Clock:
    """Wall-clock second and the Date/Server header bytes for it, refreshed by the server's tick."""

    __slots__ = ("date", "date_server", "second")

    def __init__(self) -> None:
        self.second = 0
        self.date = ""
        self.date_server = b""
        self.update()

    def update(self) -> None:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.date = date = formatdate(now, usegmt=True)
            self.date_server = f"Date: {date}\r\nServer: {SERVER_SOFTWARE}\r\n".encode("ascii")


CLOCK: Final = Clock()
