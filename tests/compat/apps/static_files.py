"""Static files: add_static, web.static, FileResponse; ranges, conditional requests, pre-compressed
siblings, directory indexes and every way of stepping out of the root we know of.

Both servers serve the same directory (made once, at import), so sizes, mtimes and ETags agree.
"""

from __future__ import annotations

import atexit
import gzip
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..harness import Req, get, send

MTIME_NS = 1_600_000_000_123_456_789  # Sun, 13 Sep 2020 12:26:40 GMT (ceil: :41)
HELLO = b"Hello, static world!\n"


def _make_tree() -> Path:
    base = Path(tempfile.mkdtemp(prefix="squall-compat-static-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    root = base / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    files = {
        "hello.txt": HELLO,
        "style.css": b"body { color: red }\n",
        "data.json": b'{"a": 1}\n',
        "page.html": b"<p>hi</p>\n",
        "blob.zzzunknown": b"\x00\x01\x02",
        "archive.tar.gz": b"not really gzip",
        "empty.txt": b"",
        "with space.txt": b"spaced\n",
        "caf\u00e9.txt": b"unicode name\n",
        "<b>&amp.txt": b"escaped in the index\n",
        "sub/inner.txt": b"inner\n",
        "sub/deeper/leaf.txt": b"leaf\n",
        "app.js": b"console.log('plain');\n" * 20,
        "app.js.gz": gzip.compress(b"console.log('plain');\n" * 20, mtime=0),
        "app.js.br": b"pretend brotli",
        "only-gz.css": b"a{}\n",
        "only-gz.css.gz": gzip.compress(b"a{}\n", mtime=0),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (base / "secret.txt").write_bytes(b"outside the root\n")
    os.symlink(base / "secret.txt", root / "link-out.txt")
    os.symlink(root / "hello.txt", root / "link-in.txt")
    os.symlink(base, root / "dir-out")
    for path in [*root.rglob("*"), root, base / "secret.txt"]:
        if not path.is_symlink():
            os.utime(path, ns=(MTIME_NS, MTIME_NS))
    return root


ROOT = _make_tree()
ETAG = f'"{MTIME_NS:x}-{len(HELLO):x}"'
LAST_MODIFIED = "Sun, 13 Sep 2020 12:26:41 GMT"


def make_app(web: Any) -> Any:
    async def file_response(request: Any) -> Any:
        return web.FileResponse(ROOT / "hello.txt")

    async def file_with_headers(request: Any) -> Any:
        return web.FileResponse(
            ROOT / "data.json",
            status=201,
            headers={"Content-Type": "application/x-custom", "X-Extra": "1"},
        )

    async def file_missing(request: Any) -> Any:
        return web.FileResponse(ROOT / "nope.txt")

    async def file_dir(request: Any) -> Any:
        return web.FileResponse(ROOT / "sub")

    async def file_compressed(request: Any) -> Any:
        resp = web.FileResponse(ROOT / request.match_info["name"])
        resp.enable_compression()
        return resp

    async def urls(request: Any) -> Any:
        static = request.app.router["static"]
        return web.Response(
            text=f"{static.url_for(filename='hello.txt')}\n"
            f"{static.url_for(filename='hello.txt', append_version=True)}\n"
            f"{static.url_for(filename='/sub/inner.txt')}\n"
            f"{static.url_for(filename='with space.txt')}\n"
            f"{static.url_for(filename='missing.txt', append_version=True)}\n"
            f"{static.url_for(filename='../secret.txt', append_version=True)}\n"
            f"{request.app.router['versioned'].url_for(filename='hello.txt')}\n"
            f"{sub.router['files'].url_for(filename='inner.txt')}\n"
        )

    sub = web.Application()
    sub.router.add_static("/files", ROOT / "sub", name="files")
    app = web.Application()
    app.router.add_static("/static", ROOT, name="static")
    app.router.add_static("/index/", ROOT, show_index=True)
    app.router.add_static("/follow", ROOT, follow_symlinks=True)
    app.router.add_static("/versioned", ROOT, append_version=True, name="versioned")
    app.add_routes([web.static("/defs", ROOT / "sub")])
    app.router.add_get("/file", file_response)
    app.router.add_get("/file-headers", file_with_headers)
    app.router.add_get("/file-missing", file_missing)
    app.router.add_get("/file-dir", file_dir)
    app.router.add_get("/urls", urls)
    app.router.add_get("/compressed/{name}", file_compressed)
    app.add_subapp("/sub-app", sub)
    return app


def _range(value: str, path: str = "/static/hello.txt", *more: tuple[str, str]) -> Req:
    return get(path, ("Range", value), *more, note=f"range {value} {path}")


REQUESTS: list[Req] = [
    # plain files and their types
    get("/static/hello.txt"),
    Req("HEAD", "/static/hello.txt", note="head"),
    get("/static/style.css"),
    get("/static/data.json"),
    get("/static/page.html"),
    get("/static/blob.zzzunknown"),
    get("/static/archive.tar.gz"),
    get("/static/empty.txt"),
    get("/static/with%20space.txt"),
    get("/static/caf%C3%A9.txt"),
    get("/static/sub/deeper/leaf.txt"),
    get("/static/hello.txt?v=abc", note="query string ignored"),
    get("/file"),
    get("/file-headers"),
    get("/file-missing"),
    get("/file-dir"),
    get("/defs/inner.txt", note="web.static"),
    # missing, directories, methods
    get("/static/missing.txt"),
    get("/static/sub/missing/deeper.txt"),
    get("/static/sub"),
    get("/static/sub/"),
    get("/static"),
    get("/static/"),
    get("/staticx/hello.txt", note="prefix is a whole segment"),
    send("POST", "/static/hello.txt", note="405 on a static file"),
    Req("OPTIONS", "/static/hello.txt", note="options"),
    # directory index
    get("/index/"),
    get("/index"),
    get("/index/sub"),
    get("/index/sub/"),
    get("/index/empty-dir"),
    get("/index/hello.txt"),
    # traversal and other escapes: every one stays inside the root
    get("/static/../secret.txt", note="dotdot"),
    get("/static/sub/../../secret.txt", note="dotdot deeper"),
    get("/static/%2e%2e/secret.txt", note="encoded dotdot"),
    get("/static/%2E%2e/secret.txt", note="mixed-case encoded dotdot"),
    get("/static/..%2fsecret.txt", note="encoded slash"),
    get("/static/..%2Fsecret.txt", note="encoded upper slash"),
    get("/static/%2e%2e%2fsecret.txt", note="all encoded"),
    get("/static/sub/..%2f..%2fsecret.txt", note="encoded slash deeper"),
    get("/static/..\\secret.txt", note="backslash"),
    get("/static/%5c..%5csecret.txt", note="encoded backslash"),
    get("/static/..%5csecret.txt", note="dotdot encoded backslash"),
    get("/static//etc/passwd", note="absolute path"),
    get("/static/%2fetc%2fpasswd", note="encoded absolute path"),
    get("/static/hello.txt%00.png", note="NUL byte"),
    get("/static/%00", note="only NUL"),
    get("/static/link-out.txt", note="symlink out, not followed"),
    get("/static/link-in.txt", note="symlink in, not followed"),
    get("/static/dir-out/secret.txt", note="dir symlink out, not followed"),
    get("/follow/link-out.txt", note="symlink out, followed"),
    get("/follow/link-in.txt", note="symlink in, followed"),
    get("/follow/dir-out/secret.txt", note="dir symlink out, followed"),
    get("/follow/../secret.txt", note="follow dotdot"),
    get("/follow/%2e%2e/secret.txt", note="follow encoded dotdot"),
    get("/follow/..%2fsecret.txt", note="follow encoded slash"),
    # ranges
    _range("bytes=0-4"),
    _range("bytes=7-"),
    _range("bytes=-7"),
    _range("bytes=-100"),
    _range("bytes=0-1000"),
    _range("bytes=20-20"),
    _range("bytes=21-"),
    _range("bytes=100-200"),
    _range("bytes=5-2"),
    _range("bytes=0-1,3-4"),
    _range("bytes=-"),
    _range("bytes=-0"),
    _range("items=0-4"),
    _range("BYTES=0-4"),
    _range("bytes=0-4", "/static/empty.txt"),
    _range("bytes=0-", "/static/empty.txt"),
    Req("HEAD", "/static/hello.txt", (("Range", "bytes=0-4"),), note="head range"),
    _range("bytes=0-4", "/static/hello.txt", ("If-Range", LAST_MODIFIED)),
    _range("bytes=0-4", "/static/hello.txt", ("If-Range", "Sun, 13 Sep 2020 12:00:00 GMT")),
    _range("bytes=0-4", "/static/hello.txt", ("If-Range", "Mon, 14 Sep 2020 00:00:00 GMT")),
    # conditional requests
    get("/static/hello.txt", ("If-None-Match", ETAG), note="inm match"),
    get("/static/hello.txt", ("If-None-Match", f"W/{ETAG}"), note="inm weak match"),
    get("/static/hello.txt", ("If-None-Match", f'"x", {ETAG}'), note="inm list"),
    get("/static/hello.txt", ("If-None-Match", '"other"'), note="inm other"),
    get("/static/hello.txt", ("If-None-Match", "*"), note="inm star"),
    Req("HEAD", "/static/hello.txt", (("If-None-Match", ETAG),), note="head inm"),
    get("/static/hello.txt", ("If-Modified-Since", LAST_MODIFIED), note="ims equal"),
    get("/static/hello.txt", ("If-Modified-Since", "Sat, 12 Sep 2020 00:00:00 GMT"), note="ims"),
    get("/static/hello.txt", ("If-Modified-Since", "garbage"), note="ims garbage"),
    get(
        "/static/hello.txt",
        ("If-None-Match", '"other"'),
        ("If-Modified-Since", LAST_MODIFIED),
        note="inm wins over ims",
    ),
    get("/static/hello.txt", ("If-Match", ETAG), note="if-match"),
    get("/static/hello.txt", ("If-Match", f"W/{ETAG}"), note="if-match weak"),
    get("/static/hello.txt", ("If-Match", '"other"'), note="if-match other"),
    get("/static/hello.txt", ("If-Match", "*"), note="if-match star"),
    get("/static/hello.txt", ("If-Unmodified-Since", "Sat, 12 Sep 2020 00:00:00 GMT"), note="ius"),
    get("/static/hello.txt", ("If-Unmodified-Since", LAST_MODIFIED), note="ius equal"),
    get(
        "/static/hello.txt",
        ("If-Match", ETAG),
        ("If-Unmodified-Since", "Sat, 12 Sep 2020 00:00:00 GMT"),
        note="if-match wins over ius",
    ),
    get("/file", ("If-None-Match", ETAG), note="FileResponse inm"),
    # pre-compressed siblings
    get("/static/app.js", ("Accept-Encoding", "gzip"), note="gz sibling"),
    get("/static/app.js", ("Accept-Encoding", "br"), note="br sibling"),
    get("/static/app.js", ("Accept-Encoding", "gzip, deflate, br"), note="br preferred"),
    get("/static/app.js", ("Accept-Encoding", "GZIP"), note="gz uppercase"),
    get("/static/app.js", ("Accept-Encoding", "deflate"), note="no sibling"),
    get("/static/app.js", note="no accept-encoding"),
    get("/static/only-gz.css", ("Accept-Encoding", "br, gzip"), note="gz only sibling"),
    Req("HEAD", "/static/app.js", (("Accept-Encoding", "gzip"),), note="head gz"),
    get("/static/app.js.gz", note="the sibling itself"),
    get("/static/app.js", ("Accept-Encoding", "gzip"), ("Range", "bytes=0-3"), note="gz range"),
    # enable_compression() on a FileResponse: the file is compressed as it is read (unless a
    # pre-compressed sibling is sent)
    get("/compressed/hello.txt", ("Accept-Encoding", "gzip"), note="negotiated gzip"),
    get("/compressed/hello.txt", ("Accept-Encoding", "gzip, deflate"), note="negotiated deflate"),
    get("/compressed/hello.txt", note="negotiated: none accepted"),
    get("/compressed/app.js", ("Accept-Encoding", "gzip"), note="negotiated, but a sibling"),
    get("/compressed/empty.txt", ("Accept-Encoding", "gzip"), note="negotiated, empty file"),
    # in a sub-application
    get("/sub-app/files/inner.txt"),
    get("/sub-app/files/deeper/leaf.txt"),
    get("/sub-app/files/../hello.txt", note="sub-app dotdot"),
    get("/sub-app/files/%2e%2e/hello.txt", note="sub-app encoded dotdot"),
    get("/sub-app/files/..%2fhello.txt", note="sub-app encoded slash"),
    get("/sub-app/files", note="sub-app root dir"),
    # url_for
    get("/urls"),
    get("/versioned/hello.txt"),
]
