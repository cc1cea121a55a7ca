"""Differential harness: run one app under aiohttp and under squall, send both the same raw bytes.

An app is a function ``make_app(web)`` that uses only the aiohttp.web API, so the very same code
builds an ``aiohttp.web.Application`` and a ``squall.web.Application``. Each is served from its own
thread and event loop through its framework's own ``AppRunner``/``TCPSite``. Requests are raw bytes
over a plain socket (no client normalises anything) and responses are parsed here, so what is
compared is what went over the wire: status, reason, headers (Date and Server aside, names
case-insensitive, order ignored) and the decoded body.

Known, documented differences (docs/compat.md) are handled by the named rules in ``RULES`` below;
each is narrow and cites the line of docs/compat.md it implements. Anything else is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import aiohttp.web as aiohttp_web

from squall import web as squall_web

from ..loop_thread import LoopThread

AppFactory = Callable[[Any], Any]

IGNORED_HEADERS = frozenset({"date", "server"})


# --------------------------------------------------------------------------------------------
# requests


@dataclass(frozen=True)
class Req:
    """One request. ``raw`` (whole request bytes) overrides everything else when given."""

    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    chunked: bool = False
    raw: bytes | None = None
    version: str = "HTTP/1.1"
    note: str = ""
    timeout: float = 5.0  # for the whole exchange; an unframed body is read until close or this

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        lines = [f"{self.method} {self.path} {self.version}", "Host: compat.test"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        names = {name.lower() for name, _ in self.headers}
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
            body = b""
            for i in range(0, len(self.body), 7):  # several chunks of 7 bytes, then the last one
                piece = self.body[i : i + 7]
                body += b"%x\r\n%s\r\n" % (len(piece), piece)
            body += b"0\r\n\r\n"
        else:
            body = self.body
            if body and "content-length" not in names:
                lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    @property
    def is_wire_refusal(self) -> bool:
        """Marked by the app as malformed on the wire (``note`` starts with ``malformed``)."""
        return self.note.startswith("malformed")

    @property
    def expects_continue(self) -> bool:
        return any(
            name.lower() == "expect" and value.lower() == "100-continue"
            for name, value in self.headers
        )

    @property
    def id(self) -> str:
        label = self.note or f"{self.method} {self.path}"
        return label.replace(" ", "_")[:70]


def get(path: str, *headers: tuple[str, str], note: str = "") -> Req:
    return Req("GET", path, tuple(headers), note=note)


def send(
    method: str,
    path: str,
    body: bytes = b"",
    *headers: tuple[str, str],
    chunked: bool = False,
    note: str = "",
) -> Req:
    return Req(method, path, tuple(headers), body, chunked=chunked, note=note)


# --------------------------------------------------------------------------------------------
# responses


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[int] = field(default_factory=list)  # 1xx statuses seen before the final one
    closed: bool = False  # the server closed without any (final) response

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class _Reader:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.buf = b""
        self.deadline = deadline
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        self.sock.settimeout(max(0.05, self.deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def until(self, marker: bytes) -> bytes | None:
        while marker not in self.buf:
            if not self._fill():
                return None
        data, _, self.buf = self.buf.partition(marker)
        return data

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n and self._fill():
            pass
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def rest(self) -> bytes:
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data


def exchange(port: int, req: Req) -> Response:
    """Send ``req`` on a fresh connection and parse one (final) response from the wire."""
    timeout = req.timeout
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(req.encode())
        reader = _Reader(sock, deadline)
        interim: list[int] = []
        while True:
            head = reader.until(b"\r\n\r\n")
            if head is None:
                return Response("", 0, "", [], reader.rest(), interim, closed=True)
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            version, _, rest = status_line.partition(" ")
            code, _, reason = rest.partition(" ")
            status = int(code)
            headers = []
            for line in header_lines:
                name, _, value = line.partition(":")
                headers.append((name, value.strip(" \t")))
            if 100 <= status < 200:
                interim.append(status)
                continue
            break
        resp = Response(version, status, reason, headers, b"", interim)
        method = req.method if req.raw is None else req.raw.split(b" ", 1)[0].decode()
        if method == "HEAD" or status in (204, 304):
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        length = resp.header("content-length")
        if "chunked" in te:
            body = b""
            while True:
                size_line = reader.until(b"\r\n")
                if size_line is None:
                    body += b"<<cut short>>"
                    break
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while reader.until(b"\r\n") not in (b"", None):  # trailers
                        pass
                    break
                body += reader.exactly(size)
                reader.until(b"\r\n")
            resp.body = body
        elif length is not None:
            resp.body = reader.exactly(int(length))
        else:
            resp.body = reader.rest()
        return resp


# --------------------------------------------------------------------------------------------
# servers


class AppServer(LoopThread):
    """Serve ``make_app(web)`` with ``web``'s own AppRunner/TCPSite on a loop in its own thread."""

    stop_timeout = 10.0

    def __init__(self, web: ModuleType, make_app: AppFactory) -> None:
        super().__init__()
        self.web = web
        # Built here, in the caller's thread, as ``run_app(make_app())`` does: aiohttp's AppKey
        # looks up the stack for a module frame, which a bare thread does not have.
        self.app = make_app(web)
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        runner = self.web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = self.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self.ready()
        await stop.wait()
        await runner.cleanup()


@contextlib.contextmanager
def serve_both(make_app: AppFactory) -> Iterator[tuple[AppServer, AppServer]]:
    reference = AppServer(aiohttp_web, make_app).start()
    try:
        candidate = AppServer(squall_web, make_app).start()
        try:
            yield reference, candidate
        finally:
            candidate.stop()
    finally:
        reference.stop()


# --------------------------------------------------------------------------------------------
# comparison, and the documented differences


Rule = Callable[[Req, Response, Response], None]


def rule_status_line_version(req: Req, ref: Response, got: Response) -> None:
    """docs/compat.md, StreamResponse: "Responses always carry HTTP/1.1 in the status line, also
    to HTTP/1.0 clients (RFC 9110 2.5); aiohttp echoes HTTP/1.0". Only that exact pair is equal."""
    if ref.version == "HTTP/1.0" and got.version == "HTTP/1.1" and req.version == "HTTP/1.0":
        got.version = ref.version


# The statuses docs/compat.md lists for squall's wire-level refusals.
WIRE_REFUSAL_STATUSES = frozenset({400, 408, 413, 414, 417, 431, 501, 505})


def rule_wire_refusal_status(req: Req, ref: Response, got: Response) -> None:
    """docs/compat.md, "Behaviour beyond single names": "Wire-level refusals (malformed requests)
    get a short plain-text answer with the status RFC 9110/9112 names (400, 413, 414, 431, 501,
    505, 408, 417) and the connection closes. aiohttp answers most of them 400."

    Applies only when aiohttp's parser refused the request (its 400 answers come before any
    request exists, so they carry its ``HTTP/1.0`` status line and its parser's message) and
    squall refused it with one of the listed statuses and closed. Then the refusal itself is what
    is compared: both refuse, with a plain-text body; status, reason and text are squall's own.
    """
    if not (ref.status == 400 and ref.version == "HTTP/1.0" and req.is_wire_refusal):
        return
    if got.status not in WIRE_REFUSAL_STATUSES or got.header("connection") != "close":
        return
    for resp in (ref, got):
        resp.version, resp.status, resp.reason, resp.body = "(refused)", 0, "", b""
        resp.headers = [
            (name, value)
            for name, value in resp.headers
            if name.lower() == "content-type"  # both plain text; length and closing differ
        ]


def rule_expect_continue_timing(req: Req, ref: Response, got: Response) -> None:
    """docs/compat.md, UrlMappingMatchInfo: squall's default expect handler does not write
    ``100 Continue`` itself; squall sends it when the handler first reads the body, "so a handler
    that answers without reading never invites the body". aiohttp sends it before the handler
    runs. Only the presence of that one interim 100 may differ, and only for such a request."""
    if req.expects_continue and ref.interim == [100] and got.interim in ([], [100]):
        got.interim = ref.interim


def rule_crlf_header_is_500(req: Req, ref: Response, got: Response) -> None:
    """docs/compat.md: "A header value set by a handler that contains CR, LF or NUL is an error:
    the client gets a 500 (aiohttp drops the connection)". Only for requests the app marks as
    setting such a header (``Req.note`` starts with ``crlf``)."""
    if not req.note.startswith("crlf"):
        return
    if ref.closed and ref.status == 0 and got.status == 500 and got.header("connection") == "close":
        got.closed, got.version, got.status, got.reason = True, "", 0, ""
        got.headers, got.body = [], b""


def rule_unsupported_version_505(req: Req, ref: Response, got: Response) -> None:
    """docs/compat.md: "A request with a well-formed HTTP version other than 1.0 and 1.1
    (HTTP/2.0, HTTP/0.9) is answered 505 and closed; aiohttp answers it as HTTP/1.x." Only for
    requests the app marks as such (``Req.note`` starts with ``malformed: version``)."""
    if not req.note.startswith("malformed: version"):
        return
    if got.status == 505 and got.header("connection") == "close" and ref.status != 505:
        for resp in (ref, got):
            resp.version, resp.status, resp.reason, resp.body = "(version)", 0, "", b""
            resp.headers = []


def rule_413_closes(req: Req, ref: Response, got: Response) -> None:
    """docs/compat.md: "After a 413 from read()/text()/json()/post() squall closes the connection
    (the rest of the refused body is never read); aiohttp keeps it open." Only the
    ``Connection: close`` header of a 413 both servers sent may differ."""
    if ref.status == got.status == 413 and got.header("connection") == "close":
        got.headers = [(n, v) for n, v in got.headers if n.lower() != "connection"]


def rule_vary_accept_encoding(req: Req, ref: Response, got: Response) -> None:
    """docs/compat.md, StreamResponse: "enable_compression() without force adds Accept-Encoding
    to Vary (aiohttp does not)". Only for requests the app marks as reaching such a response
    (``Req.note`` starts with ``negotiated``), and only that one token may differ."""
    if not req.note.startswith("negotiated"):
        return
    vary = got.header("vary")
    if vary is None or ref.header("vary") == vary:
        return
    tokens = [token.strip() for token in vary.split(",")]
    if tokens[-1] != "Accept-Encoding":
        return
    rest = ", ".join(tokens[:-1])
    got.headers = [(n, v) for n, v in got.headers if n.lower() != "vary"]
    if rest:
        got.headers.append(("Vary", rest))


RULES: list[Rule] = [
    rule_status_line_version,
    rule_wire_refusal_status,
    rule_expect_continue_timing,
    rule_crlf_header_is_500,
    rule_unsupported_version_505,
    rule_413_closes,
    rule_vary_accept_encoding,
]


def normalised(resp: Response) -> dict[str, Any]:
    headers = sorted(
        (name.lower(), value) for name, value in resp.headers if name.lower() not in IGNORED_HEADERS
    )
    return {
        "closed": resp.closed,
        "interim": resp.interim,
        "status": f"{resp.version} {resp.status} {resp.reason}",
        "headers": headers,
        "body": resp.body,
    }


def compare(req: Req, ref: Response, got: Response) -> None:
    for rule in RULES:
        rule(req, ref, got)
    expected, actual = normalised(ref), normalised(got)
    assert actual == expected, (
        f"\nrequest: {req.encode()!r}\naiohttp: {_show(expected)}\nsquall:  {_show(actual)}"
    )


def _show(resp: dict[str, Any]) -> str:
    return "\n         ".join(f"{key}={value!r}" for key, value in resp.items())
