"""The harness's own rules stay narrow: each documented difference is excused only in its case."""

from __future__ import annotations

import pytest

from .harness import Req, Response, compare


def _resp(version: str = "HTTP/1.1", status: int = 200, **kw: object) -> Response:
    headers = kw.pop("headers", [("Content-Type", "text/plain; charset=utf-8")])
    return Response(version, status, "OK", headers, kw.pop("body", b"x"), **kw)  # type: ignore[arg-type]


def test_identical_answers_pass() -> None:
    compare(Req(), _resp(), _resp())


def test_date_server_case_and_order_ignored() -> None:
    ref = _resp(headers=[("Date", "a"), ("Server", "aiohttp"), ("X-A", "1"), ("x-b", "2")])
    got = _resp(headers=[("x-b", "2"), ("x-a", "1"), ("Server", "squall"), ("Date", "b")])
    compare(Req(), ref, got)


@pytest.mark.parametrize(
    "ref, got",
    [
        (_resp(headers=[("X-A", "1")]), _resp(headers=[("X-A", "2")])),
        (_resp(headers=[("X-A", "1")]), _resp(headers=[("X-A", "1"), ("X-A", "1")])),
        (_resp(body=b"a"), _resp(body=b"b")),
        (_resp(status=200), _resp(status=201)),
    ],
)
def test_differences_fail(ref: Response, got: Response) -> None:
    with pytest.raises(AssertionError):
        compare(Req(), ref, got)


def test_status_line_version_only_for_http10_requests() -> None:
    compare(Req(version="HTTP/1.0"), _resp("HTTP/1.0"), _resp("HTTP/1.1"))
    with pytest.raises(AssertionError):
        compare(Req(), _resp("HTTP/1.0"), _resp("HTTP/1.1"))


def test_wire_refusal_only_for_marked_requests_and_listed_statuses() -> None:
    ref = _resp("HTTP/1.0", 400, body=b"Invalid method")
    close = [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")]
    compare(Req(note="malformed: x"), ref, _resp(status=501, headers=close, body=b"501"))
    with pytest.raises(AssertionError):  # not marked as malformed
        compare(Req(), _resp("HTTP/1.0", 400), _resp(status=501, headers=close))
    with pytest.raises(AssertionError):  # 500 is not a listed refusal
        compare(Req(note="malformed: x"), _resp("HTTP/1.0", 400), _resp(status=500, headers=close))
    with pytest.raises(AssertionError):  # squall must close
        compare(Req(note="malformed: x"), _resp("HTTP/1.0", 400), _resp(status=501))


def test_expect_continue_only_with_expect_header() -> None:
    expect = Req("POST", "/", (("Expect", "100-continue"),), b"x")
    compare(expect, _resp(interim=[100]), _resp(interim=[]))
    with pytest.raises(AssertionError):
        compare(Req("POST", "/", (), b"x"), _resp(interim=[100]), _resp(interim=[]))


def test_crlf_rule_only_for_marked_requests() -> None:
    ref = Response("", 0, "", [], b"", closed=True)
    got = _resp(status=500, headers=[("Connection", "close")])
    compare(Req(note="crlf header"), ref, got)
    ref = Response("", 0, "", [], b"", closed=True)
    with pytest.raises(AssertionError):
        compare(Req(), ref, _resp(status=500, headers=[("Connection", "close")]))
