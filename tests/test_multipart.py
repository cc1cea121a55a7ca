"""Forms and uploads (issue #5): request.post() on multipart/form-data and request.multipart().

Real clients (aiohttp's FormData, httpx ``files=``) and raw sockets against a real server; where
aiohttp's behaviour is the reference, the same app runs under aiohttp too (tests/compat/harness)
and the answers are compared. The app is tests/compat/apps/forms.py.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import socket
import time
import warnings
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import multipart as aiohttp_multipart

from squall import web
from squall.web import mime
from squall.web.multipart import BodyPartReader, MultipartError, MultipartReader

from .compat.apps import forms
from .compat.harness import AppServer, serve_both
from .conftest import ServerThread, raw_request, serve

BOUNDARY = forms.BOUNDARY
FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[AppServer, AppServer]]:
    """The forms app under aiohttp (reference) and under squall (candidate)."""
    with serve_both(forms.make_app) as servers:
        yield servers


# -- an app that lets errors escape, and one with a larger client_max_size -------------------


async def strict_post(request: web.Request) -> web.Response:
    data = await request.post()
    return web.json_response({key: str(value)[:40] for key, value in data.items()})


async def strict_parts(request: web.Request) -> web.Response:
    names = []
    async for part in await request.multipart():
        assert isinstance(part, BodyPartReader)
        await part.read()
        names.append(part.name)
    return web.json_response(names)


async def count_parts(request: web.Request) -> web.Response:
    """Stream every part, keeping only counts."""
    parts = size = 0
    async for part in await request.multipart():
        assert isinstance(part, BodyPartReader)
        while chunk := await part.read_chunk(65536):
            size += len(chunk)
        parts += 1
    return web.json_response({"parts": parts, "size": size})


async def upload(request: web.Request) -> web.Response:
    data = await request.post()
    out = {}
    for key, value in data.items():
        if isinstance(value, web.FileField):
            content = value.file.read()
            out[key] = {
                "sha": hashlib.sha256(content).hexdigest(),
                "size": len(content),
                "on_disk": value.file._rolled,  # type: ignore[attr-defined]
            }
        else:
            out[key] = value
    return web.json_response(out)


FAILURES: list[BaseException] = []


async def guarded_post(request: web.Request) -> web.Response:
    try:
        await request.post()
    except BaseException as exc:
        FAILURES.append(exc)
        raise
    return web.Response(text="ok")


def strict_app(client_max_size: int = MiB) -> web.Application:
    app = web.Application(client_max_size=client_max_size)
    app.router.add_post("/guarded", guarded_post)
    app.router.add_post("/post", strict_post)
    app.router.add_post("/parts", strict_parts)
    app.router.add_post("/count", count_parts)
    app.router.add_post("/upload", upload)
    return app


@pytest.fixture(scope="module")
def strict() -> Iterator[ServerThread]:
    with serve(strict_app(), keepalive_timeout=5.0, shutdown_timeout=2.0) as srv:
        yield srv


# -- helpers ----------------------------------------------------------------------------------


def http(
    port: int, path: str, body: bytes | list[bytes], ctype: str = FORM_TYPE, **kw: Any
) -> bytes:
    size = len(body) if isinstance(body, bytes) else sum(map(len, body))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    pieces = [head + body] if isinstance(body, bytes) else [head, *body]
    return raw_request(port, pieces, **kw)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def json_of(response: bytes) -> Any:
    return json.loads(response.partition(b"\r\n\r\n")[2])


async def _aio_post(port: int, path: str, data: Any) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"http://127.0.0.1:{port}{path}", data=data) as resp,
    ):
        return resp.status, await resp.json()


def aio_post(port: int, path: str, make_data: Any) -> tuple[int, Any]:
    return asyncio.run(_aio_post(port, path, make_data()))


def sample_formdata() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("title", "Hello")
    form.add_field(
        "file",
        io.BytesIO(b"file body\r\n--not-a-boundary\r\n"),
        filename="a.txt",
        content_type="text/plain",
    )
    form.add_field("city", "Zürich €")
    form.add_field("raw", b"\x00\xff" * 300, filename="raw.bin")
    form.add_field("title", "again")
    form.add_field(
        "photo", io.BytesIO(bytes(range(256)) * 40), filename="photo.png", content_type="image/png"
    )
    return form


# -- real clients, compared with aiohttp ------------------------------------------------------


def test_aiohttp_formdata_post_matches_aiohttp(both: tuple[AppServer, AppServer]) -> None:
    ref, got = (aio_post(server.port, "/post", sample_formdata) for server in both)
    assert got == ref
    status, fields = got
    assert status == 200
    assert [key for key, _ in fields] == ["title", "file", "city", "raw", "title", "photo"]
    assert fields[0][1] == ["str", "Hello"] and fields[4][1] == ["str", "again"]
    assert fields[2][1] == ["str", "Zürich €"]
    upload = fields[1][1]
    assert upload["name"] == "file" and upload["filename"] == "a.txt"
    assert upload["content_type"] == "text/plain"
    assert upload["head"] == "file body\r\n--not-a-bound"
    assert upload["file"] == "SpooledTemporaryFile"
    assert ("Content-Type", "text/plain") in [tuple(h) for h in upload["headers"]]
    assert fields[3][1]["content_type"] == "application/octet-stream"
    assert fields[5][1]["filename"] == "photo.png" and fields[5][1]["size"] == 256 * 40


def test_aiohttp_formdata_streamed_matches_aiohttp(both: tuple[AppServer, AppServer]) -> None:
    ref, got = (aio_post(server.port, "/parts?size=50", sample_formdata) for server in both)
    assert got == ref
    parts = got[1]["parts"]
    assert [p["name"] for p in parts] == ["title", "file", "city", "raw", "title", "photo"]
    assert all(p["eof"] for p in parts) and got[1]["eof"] is True


def _httpx_post(port: int, path: str) -> tuple[int, Any]:
    files = [
        ("upload", ("report.csv", b"a,b\r\n1,2\r\n", "text/csv")),
        ("upload", ("second.bin", io.BytesIO(b"\x01" * 5000), "application/octet-stream")),
        ("nameless_type", ("plain.txt", b"no type given")),
    ]
    data = {"user": "ann", "note": "ünïcode"}
    with httpx.Client(timeout=10) as client:
        resp = client.post(f"http://127.0.0.1:{port}{path}", data=data, files=files)
        return resp.status_code, resp.json()


def test_httpx_files_match_aiohttp(both: tuple[AppServer, AppServer]) -> None:
    for path in ("/post", "/parts"):
        ref, got = (_httpx_post(server.port, path) for server in both)
        assert got == ref, path
    _, fields = _httpx_post(both[1].port, "/post")
    assert [key for key, _ in fields] == ["user", "note", "upload", "upload", "nameless_type"]
    assert fields[2][1]["filename"] == "report.csv" and fields[2][1]["content_type"] == "text/csv"
    assert fields[3][1]["size"] == 5000
    assert fields[4][1]["content_type"] == "text/plain"  # httpx guesses it from the name


def test_formdata_fields_only_is_urlencoded(both: tuple[AppServer, AppServer]) -> None:
    def make() -> aiohttp.FormData:
        return aiohttp.FormData({"a": "1", "b": "two"})

    ref, got = (aio_post(server.port, "/post", make) for server in both)
    assert got == ref == (200, [["a", ["str", "1"]], ["b", ["str", "two"]]])


# -- bodies arriving in tiny pieces -----------------------------------------------------------


SAMPLE = forms.body(
    forms.TEXT,
    forms.FILE,
    forms.B64,
    forms.QP,
    forms.field("crlf", b"\r\n\r\n-\r\n--\r\n" + b"-" * 40 + b"\r"),
    forms.BINARY,
)


@pytest.mark.parametrize("path", ["/post", "/parts?size=45", "/lines"])
def test_body_sent_in_tiny_pieces(both: tuple[AppServer, AppServer], path: str) -> None:
    whole = http(both[1].port, path, SAMPLE)
    pieces = [SAMPLE[i : i + 3] for i in range(0, len(SAMPLE), 3)]
    dripped = http(both[1].port, path, pieces, pause=0.0005, timeout=20)
    assert status_of(whole) == 200
    assert json_of(dripped) == json_of(whole)
    if path != "/lines":  # aiohttp's readline() fails on parts ending in an empty line
        assert json_of(whole) == json_of(http(both[0].port, path, SAMPLE))


class Pieces:
    """A body source giving fixed pieces, to split the body at chosen offsets."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = [piece for piece in pieces if piece]  # b"" would mean the end

    async def read(self, n: int = -1) -> bytes:
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if 0 < n < len(piece):
            self.pieces.insert(0, piece[n:])
            piece = piece[:n]
        return piece


async def parse(pieces: list[bytes], size: int = 8192) -> list[Any]:
    reader = MultipartReader({"Content-Type": FORM_TYPE}, Pieces(pieces))
    out: list[Any] = []
    async for part in reader:
        assert isinstance(part, BodyPartReader)
        data = bytearray()
        while chunk := await part.read_chunk(size):
            data += part.decode(chunk)
        out.append((part.name, part.filename, bytes(data)))
    assert reader.at_eof()
    return out


def test_every_split_point_gives_the_same_parts() -> None:
    async def main() -> None:
        expected = await parse([SAMPLE])
        assert [name for name, _, _ in expected] == ["title", "doc", "b64", "qp", "crlf", "img"]
        assert (
            expected[2][2] == b"Hello, world!" and expected[3][2] == "café softbreak = ok".encode()
        )
        for i in range(len(SAMPLE) + 1):
            assert await parse([SAMPLE[:i], SAMPLE[i:]], size=64) == expected, i
        for step in (1, 2, 5, 71):
            pieces = [SAMPLE[i : i + step] for i in range(0, len(SAMPLE), step)]
            assert await parse(pieces, size=step + 3) == expected, step

    asyncio.run(main())


# -- malformed bodies: 400 from a handler that lets the error out, never a hang ---------------


def headers_block(*lines: bytes) -> bytes:
    return b"\r\n".join([b'Content-Disposition: form-data; name="x"', *lines])


MALFORMED = {
    "no closing boundary": forms.body(forms.TEXT)[:-4],
    "cut in the headers": b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-da",
    "headers without end": b"--" + BOUNDARY.encode() + b"\r\n" + headers_block(b"A: b") + b"\r\n",
    "no first boundary": b"just some text\r\n" * 10,
    "long junk line": b"j" * 300_000,
    "empty body": b"",
    "header line too long": forms.body(headers_block(b"X-Long: " + b"y" * 9000) + b"\r\n\r\nv"),
    "too many headers": forms.body(
        headers_block(*[b"X-%d: 1" % i for i in range(200)]) + b"\r\n\r\nv"
    ),
    "header block too large": forms.body(
        headers_block(*[b"X-%d: " % i + b"h" * 8000 for i in range(9)]) + b"\r\n\r\nv"
    ),
    "header without colon": forms.body(headers_block(b"Broken") + b"\r\n\r\nv"),
    "folded header": forms.body(headers_block(b" folded") + b"\r\n\r\nv"),
    "NUL in header": forms.body(headers_block(b"X-A: a\x00b") + b"\r\n\r\nv"),
    "bad boundary line": forms.body(forms.TEXT, forms.TEXT)[::-1].replace(b"\n\rWg", b"\n\rXWg", 1)[
        ::-1
    ],  # the second boundary line only
    "nothing after a boundary": b"--" + BOUNDARY.encode(),
    "unknown transfer encoding": forms.body(
        forms.field("x", b"v", "Content-Transfer-Encoding: uuencode")
    ),
    "bad base64": forms.body(forms.field("x", b"abc", "Content-Transfer-Encoding: base64")),
    "bad charset": forms.body(forms.field("x", b"v", "Content-Type: text/plain; charset=nope")),
    "not utf-8": forms.body(forms.field("x", b"\xff\xfe")),
    "bad _charset_": forms.body(forms.field("_charset_", b"no-such-charset"), forms.TEXT),
    "long _charset_": forms.body(forms.field("_charset_", b"u" * 40), forms.TEXT),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_body_is_400(strict: ServerThread, case: str) -> None:
    started = time.monotonic()
    answer = http(strict.port, "/post", MALFORMED[case])
    assert status_of(answer) == 400, answer[:300]
    assert b"Connection: close" in answer.partition(b"\r\n\r\n")[0]
    assert b"Malformed request body" in answer
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "ctype",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "text/plain",
        "multipart/mixed; boundary=" + "x" * 71,
    ],
)
def test_unusable_content_type_is_400(strict: ServerThread, ctype: str) -> None:
    assert status_of(http(strict.port, "/parts", forms.body(forms.TEXT), ctype)) == 400


def test_nested_multipart_and_missing_name_refused_by_post(strict: ServerThread) -> None:
    assert status_of(http(strict.port, "/post", forms.body(forms.NESTED))) == 400
    nameless = forms.body(b"Content-Type: text/plain\r\n\r\nx")
    assert status_of(http(strict.port, "/post", nameless)) == 400


def test_buffer_stays_bounded() -> None:
    """However the junk comes (one endless line, a huge part), the parser keeps about one pull."""

    async def main() -> None:
        peak = 0

        class Watch(Pieces):
            async def read(self, n: int = -1) -> bytes:
                nonlocal peak
                peak = max(peak, len(reader._feed._buf))
                return await super().read(n)

        junk = [b"j" * 100_000] * 30
        reader = MultipartReader({"Content-Type": FORM_TYPE}, Watch(junk))
        with pytest.raises(MultipartError, match="starting boundary"):
            await reader.next()
        assert peak <= 2 * 65536
        big = forms.body(forms.field("big", b"B" * 3_000_000))
        reader = MultipartReader({"Content-Type": FORM_TYPE}, Watch([big]))
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        total = 0
        while chunk := await part.read_chunk(100_000):
            total += len(chunk)
        assert total == 3_000_000 and peak <= 2 * 65536 + 100

    asyncio.run(main())


def test_malformed_error_is_a_value_error() -> None:
    async def main() -> None:
        reader = MultipartReader({"Content-Type": FORM_TYPE}, Pieces([b"nothing"]))
        with pytest.raises(ValueError, match="Could not find starting boundary"):
            await reader.next()
        with pytest.raises(ValueError, match="boundary missed"):
            MultipartReader({"Content-Type": "multipart/form-data"}, Pieces([]))

    asyncio.run(main())


def test_client_gone_mid_upload_ends_the_handler(strict: ServerThread) -> None:
    body = forms.body(forms.upload("f", "f.bin", b"x" * 200_000))
    head = (
        f"POST /guarded HTTP/1.1\r\nHost: t\r\nContent-Type: {FORM_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    FAILURES.clear()
    with socket.create_connection(("127.0.0.1", strict.port), timeout=5) as sock:
        sock.sendall(head + body[:100_000])
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while not FAILURES and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(FAILURES) == 1 and isinstance(FAILURES[0], web.RequestPayloadError)


# -- limits ------------------------------------------------------------------------------------


def test_post_past_client_max_size_is_413_and_closes(strict: ServerThread) -> None:
    big = forms.body(forms.upload("f", "big.bin", b"x" * (MiB + 10)))
    answer = http(strict.port, "/post", big)
    assert status_of(answer) == 413
    assert b"Maximum request body size 1048576 exceeded." in answer
    assert b"Connection: close" in answer


def test_chunked_post_past_client_max_size_is_413(strict: ServerThread) -> None:
    body = forms.body(forms.upload("f", "big.bin", b"x" * (2 * MiB)))
    head = (
        f"POST /post HTTP/1.1\r\nHost: t\r\nContent-Type: {FORM_TYPE}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunks = [
        b"%x\r\n%s\r\n" % (len(body[i : i + 65536]), body[i : i + 65536])
        for i in range(0, len(body), 65536)
    ]
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end, as it should be
        answer = sock.recv(65536)
    assert status_of(answer) == 413


def test_field_count_limit(both: tuple[AppServer, AppServer]) -> None:
    def fields(n: int) -> bytes:
        return forms.body(*[b'Content-Disposition: form-data; name="f"\r\n\r\n'] * n, boundary="b")

    for n, expected in ((1000, 200), (1001, 413)):
        answers = [
            http(s.port, "/post", fields(n), "multipart/form-data; boundary=b") for s in both
        ]
        assert [status_of(a) for a in answers] == [expected, expected]
    answer = http(both[1].port, "/post", fields(1001), "multipart/form-data; boundary=b")
    assert answer.endswith(b"Maximum number of form fields 1000 exceeded.")
    for n, expected in ((1000, 200), (1001, 413)):
        query = b"&".join([b"k=v"] * n)
        answers = [http(s.port, "/post", query, "application/x-www-form-urlencoded") for s in both]
        assert [status_of(a) for a in answers] == [expected, expected]


def test_thousands_of_tiny_parts_stream_in_bounded_time(strict: ServerThread) -> None:
    one = b'--b\r\nContent-Disposition: form-data; name="p"\r\n\r\nv\r\n'
    body = one * 20_000 + b"--b--\r\n"
    started = time.monotonic()
    answer = http(strict.port, "/count", body, "multipart/form-data; boundary=b", timeout=20)
    assert json_of(answer) == {"parts": 20_000, "size": 20_000}
    assert time.monotonic() - started < 10


def test_part_read_past_client_max_size_is_413_but_read_chunk_streams() -> None:
    app = strict_app(client_max_size=1000)
    with serve(app) as srv:
        body = forms.body(forms.field("big", b"x" * 5000))
        assert status_of(http(srv.port, "/parts", body)) == 413
        assert json_of(http(srv.port, "/count", body)) == {"parts": 1, "size": 5000}


# -- files: spooled to disk past 1 MiB ----------------------------------------------------------


def test_large_upload_spools_to_disk_small_ones_stay_in_memory() -> None:
    big = bytes(range(256)) * (12 * 1024)  # 3 MiB
    with serve(strict_app(client_max_size=8 * MiB)) as srv:
        files = {"big": ("big.bin", big), "small": ("small.txt", b"tiny")}
        with httpx.Client(timeout=20) as client:
            got = client.post(f"{srv.url}/upload", files=files, data={"k": "v"}).json()
    assert got["big"] == {"sha": hashlib.sha256(big).hexdigest(), "size": len(big), "on_disk": True}
    assert got["small"]["on_disk"] is False and got["small"]["size"] == 4
    assert got["k"] == "v"


def test_file_field_is_exported_and_frozen() -> None:
    assert web.FileField is not None
    field = web.FileField("n", "f.txt", io.BytesIO(b""), "text/plain", None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        field.name = "other"  # type: ignore[misc]


# -- charset handling ---------------------------------------------------------------------------


def test_charset_field_sets_the_default_charset(strict: ServerThread) -> None:
    """RFC 7578 4.6. aiohttp 3.14 means to do this but fails on such a form (docs/compat.md)."""
    body = forms.body(
        forms.field("_charset_", b"latin-1"),
        forms.field("a", "café".encode("latin-1")),
        forms.field("b", "naïve".encode(), "Content-Type: text/plain; charset=utf-8"),
    )
    assert json_of(http(strict.port, "/post", body)) == {"a": "café", "b": "naïve"}


# -- the streaming reader API -------------------------------------------------------------------


def test_reader_api_nested_and_release() -> None:
    async def main() -> None:
        body = forms.body(forms.TEXT, forms.NESTED, forms.FILE, epilogue=b"outer epilogue")
        reader = MultipartReader({"Content-Type": FORM_TYPE}, Pieces([body]))
        first = await reader.next()
        assert isinstance(first, BodyPartReader)
        assert await first.text() == "Hello, world" and first.at_eof()
        assert await first.read() == b"" and await first.next() is None
        nested = await reader.next()
        assert isinstance(nested, MultipartReader)
        assert nested.headers["Content-Type"] == "multipart/mixed; boundary=inner"
        inner = await nested.next()
        assert isinstance(inner, BodyPartReader) and inner.filename == "a.txt"
        # the outer reader skips what is left of the nested one, epilogue included
        third = await reader.next()
        assert isinstance(third, BodyPartReader) and third.name == "doc"
        assert [chunk async for chunk in third] == [b"line one\r\nline two\r\n"]
        assert await reader.next() is None and reader.at_eof()

        reader = MultipartReader({"Content-Type": FORM_TYPE}, Pieces([body]))
        await reader.release()
        assert reader.at_eof() and await reader.next() is None

    asyncio.run(main())


def test_content_encoding_applies_outside_form_data() -> None:
    packed = gzip.compress(b"compressed text " * 100)
    part = forms.field(
        "z", packed, "Content-Encoding: gzip", "Content-Type: application/octet-stream"
    )
    body = forms.body(part)

    async def main() -> tuple[bytes, bytes]:
        headers = {"Content-Type": f"multipart/mixed; boundary={BOUNDARY}"}
        mixed = await MultipartReader(headers, Pieces([body])).next()
        form = await MultipartReader({"Content-Type": FORM_TYPE}, Pieces([body])).next()
        assert isinstance(mixed, BodyPartReader) and isinstance(form, BodyPartReader)
        raw = await mixed.read()
        assert raw == packed
        unpacked = b"".join([piece async for piece in mixed.decode_iter(raw)])
        return unpacked, await form.read(decode=True)

    unpacked, untouched = asyncio.run(main())
    assert unpacked == b"compressed text " * 100
    assert untouched == packed  # RFC 7578 4.8: no Content-Encoding in form-data


def test_expect_continue_upload(strict: ServerThread) -> None:
    body = forms.body(forms.TEXT, forms.FILE)
    head = (
        f"POST /post HTTP/1.1\r\nHost: t\r\nContent-Type: {FORM_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", strict.port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert status_of(answer) == 200
    assert json_of(answer)["title"] == "Hello, world"


# -- Content-Disposition, compared with aiohttp's own functions ----------------------------------


DISPOSITIONS = [
    'form-data; name="field"',
    'form-data; name="f"; filename="a.txt"',
    "form-data; name=plain; filename=plain.txt",
    "attachment; filename*=UTF-8''%E2%82%AC%20rates.txt",
    "attachment; filename=\"fallback.txt\"; filename*=UTF-8''caf%C3%A9.txt",
    "attachment; filename*=iso-8859-1'en'caf%E9.txt",
    'attachment; filename*0="long"; filename*1="name.txt"',
    "attachment; filename*0*=UTF-8''caf%C3; filename*1*=%A9.txt",
    'form-data; name="a;b"; filename="x;y.txt"',
    'form-data; name="quote\\"d"; filename="back\\\\slash"',
    'form-data; name="f"; filename="/etc/passwd"',
    "INLINE; FILENAME=upper.txt",
    'form-data; name="a"; name="b"',
    "form-data; name=a b",
    'form-data; name="f" trailing',
    "form-data; name",
    "form-data;; name=x",
    "form-data; name=x;",
    'form-data; bad/key="v"; name="kept"',
    "form-data; filename*=nope",
    "form-data; filename*=no-such-charset''x",
    "form data",
    "",
]


@pytest.mark.parametrize("header", DISPOSITIONS)
def test_content_disposition_matches_aiohttp(header: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = mime.parse_content_disposition(header)
        theirs = aiohttp_multipart.parse_content_disposition(header)
        assert ours == theirs
        for name in ("name", "filename"):
            assert mime.content_disposition_filename(ours[1], name) == (
                aiohttp_multipart.content_disposition_filename(theirs[1], name)
            )


def test_content_disposition_warnings() -> None:
    with pytest.warns(mime.BadContentDispositionHeader):
        assert mime.parse_content_disposition("form-data; name=a b") == (None, {})
    with pytest.warns(mime.BadContentDispositionParam):
        assert mime.parse_content_disposition("form-data; filename*=x") == ("form-data", {})


def test_content_type_parameters() -> None:
    assert mime.parse_content_type('Multipart/Form-Data; Boundary="a;b c"; charset=utf-8') == (
        "multipart/form-data",
        {"boundary": "a;b c", "charset": "utf-8"},
    )
    assert mime.parse_content_type("text/plain;;novalue; x = y ") == ("text/plain", {"x": "y"})
