"""brotli and zstd: squall's own, only with force= (aiohttp's server has neither), when the
packages are installed (the test extra installs them)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from squall import web

from .conftest import raw_request, serve

BODY = b"squall compresses this body " * 200


def _app(coding: web.ContentCoding, stream: bool) -> web.Application:
    async def whole(request: web.Request) -> web.Response:
        resp = web.Response(body=BODY, content_type="text/plain")
        resp.enable_compression(force=coding)
        return resp

    async def streamed(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "text/plain"
        resp.enable_compression(force=coding)
        await resp.prepare(request)
        for i in range(0, len(BODY), 1000):
            await resp.write(BODY[i : i + 1000])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/", streamed if stream else whole)
    return app


def _dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size, _, rest = body.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return out
        out += rest[:n]
        body = rest[n + 2 :]


def _decompress(coding: str, data: bytes) -> bytes:
    if coding == "br":
        brotli = importlib.import_module("brotli")
        return bytes(brotli.decompress(data))
    zstandard = importlib.import_module("zstandard")
    return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("coding", "module"), [("br", "brotli"), ("zstd", "zstandard")])
def test_forced_coding(coding: str, module: str, stream: bool) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    with serve(_app(web.ContentCoding(coding), stream)) as srv:
        answer = raw_request(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\nContent-Encoding: %b\r\n" % coding.encode() in head
    if stream:
        assert b"Transfer-Encoding: chunked" in head
        body = _dechunk(body)
    assert len(body) < len(BODY) // 5
    assert _decompress(coding, body) == BODY


def test_negotiation_never_picks_them() -> None:
    """As aiohttp: Accept-Encoding with br first still gets deflate (or gzip)."""
    from squall.web.compression import negotiate

    assert negotiate("br, zstd, gzip, deflate") is web.ContentCoding.deflate
    assert negotiate("br, zstd") is None


def test_forcing_a_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from squall.web import compression

    monkeypatch.setattr(compression, "_brotli", lambda: None)
    with pytest.raises(RuntimeError, match="install brotli"):
        web.Response(text="x").enable_compression(force=web.ContentCoding.br)


# -- COMPRESSION_PREFERENCE: negotiation that prefers zstd, br, gzip -------------------------

PREFERRED = ("zstd", "br", "gzip", "deflate")


def _preferring_app(preference: tuple[str, ...] | None, sub: bool = False) -> web.Application:
    async def whole(request: web.Request) -> web.Response:
        resp = web.Response(body=BODY, content_type="text/plain")
        resp.enable_compression()
        return resp

    async def streamed(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "text/plain"
        resp.enable_compression()
        await resp.prepare(request)
        for i in range(0, len(BODY), 1000):
            await resp.write(BODY[i : i + 1000])
        await resp.write_eof()
        return resp

    async def plain(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    if preference is not None:
        app[web.COMPRESSION_PREFERENCE] = preference
    routes = [web.get("/", whole), web.get("/stream", streamed), web.get("/plain", plain)]
    if sub:  # the setting is the parent's: a sub-application's responses follow it
        child = web.Application()
        child.add_routes(routes)
        app.add_subapp("/sub", child)
    else:
        app.add_routes(routes)
    return app


def _get(port: int, path: str, accept: bytes | None) -> tuple[bytes, bytes]:
    field = b"" if accept is None else b"Accept-Encoding: %b\r\n" % accept
    request = b"GET %b HTTP/1.1\r\nHost: x\r\n%bConnection: close\r\n\r\n"
    head, _, body = raw_request(port, request % (path.encode(), field)).partition(b"\r\n\r\n")
    return head, body


def _coding_of(head: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-encoding":
            return value.strip().decode()
    return None


def _inflate(coding: str | None, body: bytes) -> bytes:
    import gzip
    import zlib

    if coding is None:
        return body
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "deflate":
        return zlib.decompress(body)
    return _decompress(coding, body)


def _need(*codings: str) -> None:
    for coding in codings:
        module = {"br": "brotli", "zstd": "zstandard"}.get(coding)
        if module is not None and importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")


@pytest.fixture(scope="module")
def preferring() -> Any:
    with serve(_preferring_app(PREFERRED)) as srv:
        yield srv


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (b"gzip, deflate, br, zstd", "zstd"),  # curl's offer: the application's first
        (b"gzip, deflate, br", "br"),  # a browser's
        (b"gzip, deflate", "gzip"),  # httpx's: gzip before deflate, unlike aiohttp
        (b"deflate", "deflate"),
        (b"br;q=0, zstd;q=0, gzip", "gzip"),  # q=0 refuses
        (b"zstd;q=0.5, br;q=0.8, gzip;q=0.8", "br"),  # the client's q ranks, then our order
        (b"x-gzip", "gzip"),
        (b"identity, *", None),  # neither names a compression
        (b"compress", None),
        (None, None),
    ],
)
def test_preference_negotiates(preferring: Any, accept: bytes | None, chosen: str | None) -> None:
    _need(*(c for c in ("br", "zstd") if accept is not None and c.encode() in accept))
    for path in ("/", "/stream"):
        head, body = _get(preferring.port, path, accept)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert _coding_of(head) == chosen
        assert b"\r\nVary: Accept-Encoding" in head
        if b"Transfer-Encoding: chunked" in head:
            body = _dechunk(body)
        assert _inflate(chosen, body) == BODY
        if chosen is not None:
            assert len(body) < len(BODY) // 5


def test_preference_leaves_other_responses_alone(preferring: Any) -> None:
    """Only responses that call enable_compression() are compressed, as without it."""
    head, body = _get(preferring.port, "/plain", b"gzip, br, zstd")
    assert _coding_of(head) is None and b"Vary" not in head and body == BODY


def test_preference_skips_codings_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from squall.web import compression

    monkeypatch.setattr(compression, "_zstandard", lambda: None)
    monkeypatch.setattr(compression, "_PREFERRED", {})
    with serve(_preferring_app(PREFERRED)) as srv:
        head, body = _get(srv.port, "/", b"zstd, gzip")
    assert _coding_of(head) == "gzip"
    assert _inflate("gzip", body) == BODY


@pytest.mark.parametrize(
    ("preference", "accept", "chosen"),
    [
        (None, b"zstd, br, gzip, deflate", "deflate"),  # unset: aiohttp's choice
        (("gzip",), b"zstd, br, deflate", None),  # codings not listed are never used
        (("br", "gzip"), b"zstd, br, gzip", "br"),
    ],
)
def test_preference_from_the_parent_application(
    preference: tuple[str, ...] | None, accept: bytes, chosen: str | None
) -> None:
    _need("br")
    with serve(_preferring_app(preference, sub=True)) as srv:
        head, body = _get(srv.port, "/sub/", accept)
    assert _coding_of(head) == chosen
    assert _inflate(chosen, body) == BODY


def test_unknown_coding_in_the_preference_is_an_error() -> None:
    from squall.web.compression import negotiate

    with pytest.raises(ValueError, match="COMPRESSION_PREFERENCE"):
        negotiate("gzip", ("xz", "gzip"))
