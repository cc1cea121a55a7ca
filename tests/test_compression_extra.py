"""brotli and zstd: squall's own, only with force= (aiohttp's server has neither), when the
packages are installed (the test extra installs them)."""

from __future__ import annotations

import importlib.util

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
