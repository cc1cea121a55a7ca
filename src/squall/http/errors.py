"""Bad input: the status each parse failure earns, and the short response that says so."""

from __future__ import annotations

import re

import httptools


class BadRequest(Exception):
    """A request the server refuses at the wire level; the connection closes after the answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RequestPayloadError(Exception):
    """The request body was malformed or cut short; raised to the handler reading it.

    ``status`` is the answer the wire layer would give (400; 408 when the body stopped coming
    within ``Limits.body_timeout`` or came slower than ``Limits.min_body_rate``).
    """

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.status = status


_TCHAR = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


_REQUEST_LINE = re.compile(rb"(?:^|(?<=\n))[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ HTTP/")


def failing_request(data: bytes, completed: int) -> bytes:
    """The bytes of the request that failed, when ``completed`` requests preceded it in ``data``.

    The parser gives no error offset: after ``completed`` earlier requests, the failing one is
    taken to start at the next request line. Only used to choose 501 over 400 for a method.
    """
    if not completed:
        return data
    for n, match in enumerate(_REQUEST_LINE.finditer(data)):
        if n == completed:
            return data[match.start() :]
    return b""


def classify_parse_error(exc: Exception, start: bytes) -> BadRequest:
    """Map an httptools/llhttp error to the status RFC 9110/9112 calls for.

    ``start`` is the failing request's first bytes when they are known (else empty); it tells a
    well-formed but unknown method (501) from a malformed one (400).
    """
    lower = str(exc).lower()
    if isinstance(exc, httptools.HttpParserInvalidMethodError) or "invalid method" in lower:
        method, sep, _ = start.lstrip(b"\r\n").partition(b" ")
        if sep and _TCHAR.fullmatch(method):
            return BadRequest(501, "Method not implemented")
        return BadRequest(400, "Invalid method")
    if isinstance(exc, httptools.HttpParserInvalidURLError):
        return BadRequest(400, "Invalid request target")
    if "invalid http version" in lower:  # a well-formed HTTP/x.y that llhttp does not take
        return BadRequest(505, "HTTP version not supported")
    if "pri/upgrade" in lower:
        return BadRequest(505, "HTTP/2 is not supported")
    if "overflow" in lower and "chunk" not in lower:  # a Content-Length past 64 bits
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
    return BadRequest(400, "Malformed request")
