"""The access log follows its logger as the logger changes, on a running server.

The request path reads ``Logger.isEnabledFor``'s cache directly instead of calling it
(web/handler.py): these tests change the level, ``disabled`` and the class of the logger while
the server runs, and check that each request is logged exactly when the logger says so.
"""

from __future__ import annotations

import datetime
import logging
import time
import urllib.request
from collections.abc import Iterator

import pytest

from squall import web

from .conftest import ServerThread, serve


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text=f"Hello, {request.match_info['name']}!")


def _get(srv: ServerThread, path: str) -> bytes:
    with urllib.request.urlopen(srv.url + path, timeout=5) as resp:
        return bytes(resp.read())


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("squall.tests.access")
    log.propagate = False
    log.setLevel(logging.WARNING)
    yield log
    log.handlers.clear()
    log.disabled = False
    log.setLevel(logging.NOTSET)


def _app() -> web.Application:
    app = web.Application()
    app.add_routes([web.get("/{name}", _hello)])
    return app


def test_level_and_disabled_are_followed_at_run_time(logger: logging.Logger) -> None:
    records = _Records()
    logger.addHandler(records)
    with serve(_app(), access_log=logger, access_log_format="%r %s %b") as srv:
        assert _get(srv, "/off") == b"Hello, off!"
        assert _get(srv, "/off2") == b"Hello, off2!"  # (the cached False answers this one)
        assert records.lines == []
        logger.setLevel(logging.INFO)  # clears the logger's cache
        _get(srv, "/on")
        assert records.lines == ["GET /on HTTP/1.1 200 10"]
        logger.disabled = True  # (leaves the cached True in place)
        _get(srv, "/disabled")
        assert len(records.lines) == 1
        logger.disabled = False
        logging.disable(logging.INFO)  # the manager's switch: clears every cache
        try:
            _get(srv, "/globally-off")
        finally:
            logging.disable(logging.NOTSET)
        assert len(records.lines) == 1
        _get(srv, "/again")
        assert records.lines[-1] == "GET /again HTTP/1.1 200 13"


class _Loud(logging.Logger):
    """A logger class with its own idea of being enabled: its method decides, not a cache."""

    def isEnabledFor(self, level: int) -> bool:
        return True


def test_a_logger_subclass_is_asked_every_time() -> None:
    loud = _Loud("squall.tests.loud", logging.CRITICAL)
    loud.propagate = False
    records = _Records()
    loud.addHandler(records)
    loud._cache[logging.INFO] = False  # type: ignore[attr-defined]  # a cache it ignores
    with serve(_app(), access_log=loud, access_log_format="%r %s") as srv:
        _get(srv, "/x")
    assert records.lines == ["GET /x HTTP/1.1 200"]


def test_time_is_local_and_made_once_a_second(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``%t`` (cached per second) is the request's second in local time, as aiohttp writes it."""
    records = _Records()
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +0530: not the machine's UTC
    time.tzset()
    try:
        time.sleep(1.01 - time.time() % 1.0)  # (a second cached before the TZ change is over)
        with serve(_app(), access_log=logger, access_log_format="%t %r") as srv:
            before = time.time()
            for name in ("a", "b", "c"):
                _get(srv, "/" + name)
            after = time.time()
        seconds = range(int(before), int(after) + 1)
        expected = {
            datetime.datetime.fromtimestamp(second, datetime.UTC)
            .astimezone()
            .strftime("[%d/%b/%Y:%H:%M:%S %z]")
            for second in seconds
        }
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert len(records.lines) == 3
    for line, name in zip(records.lines, "abc", strict=True):
        stamp, _, request = line.partition("] ")
        assert stamp + "]" in expected
        assert stamp.endswith("+0530")
        assert request == f"GET /{name} HTTP/1.1"
