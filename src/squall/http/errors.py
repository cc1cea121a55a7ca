"""Bad input: the status each parse failure earns, and the short response that says so."""

from __future__ import annotations

import re

from .writer import CLOCK, REASONS, status_line


class BadRequest(Exception):
    """A request the server refuses at the wire level; the connection closes after the answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RequestPayloadError(Exception):
    """The request body was malformed or cut short; raised to the handler reading it."""


_TCHAR = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")


def classify_parse_error(message: str, data: bytes) -> BadRequest:
    """Map an httptools/llhttp error to the status RFC 9110/9112 calls for.

    ``data`` is the chunk that failed; it is only used to tell a well-formed but unsupported
    method or version (501/505) from a malformed one (400).
    """
    lower = message.lower()
    if "invalid method" in lower:
        method, sep, _ = data.lstrip(b"\r\n").partition(b" ")
        if sep and _TCHAR.fullmatch(method):
            return BadRequest(501, "Method not implemented")
        return BadRequest(400, "Invalid method")
    if "http version" in lower or "invalid version" in lower:
        line = data.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r")
        version = line.rsplit(b" ", 1)[-1]
        if _VERSION.fullmatch(version):
            return BadRequest(505, "HTTP version not supported")
        return BadRequest(400, "Invalid HTTP version")
    if "pri/upgrade" in lower:
        return BadRequest(505, "HTTP/2 is not supported")
    if "overflow" in lower:
        return BadRequest(413, "Request body too large")
    if "invalid `transfer-encoding`" in lower and "request has" in lower:
        return BadRequest(501, "Transfer coding not implemented")
    if "transfer-encoding" in lower:
        return BadRequest(400, "Invalid Transfer-Encoding")
    if "content-length" in lower:
        return BadRequest(400, "Invalid Content-Length")
    if "chunk" in lower:
        return BadRequest(400, "Invalid chunked body")
    if "header" in lower:
        return BadRequest(400, "Invalid header")
    if "url" in lower or "target" in lower:
        return BadRequest(400, "Invalid request target")
    return BadRequest(400, "Malformed request")


def error_response(status: int, detail: str) -> bytes:
    """A complete, closing, plain-text response for a wire-level refusal."""
    body = f"{status} {REASONS.get(status, '')}: {detail}\n".encode()
    return b"".join(
        (
            status_line("1.1", status),
            CLOCK.date_server,
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Length: ",
            str(len(body)).encode(),
            b"\r\nConnection: close\r\n\r\n",
            body,
        )
    )
