"""Forms and uploads: post() on multipart/form-data (fields in order, FileField attributes, text
charsets, base64/quoted-printable parts, 413), and the streaming reader of request.multipart()
(read_chunk + decode, text/json/form, readline, nested multipart, release).

A malformed body makes aiohttp raise ValueError or one of its own parser errors (500 when a handler
lets it out) and squall raise MultipartError (400 when let out): the handlers here catch both and
answer ``malformed``, so what is compared is that both refuse the same bodies.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..harness import Req, send

BOUNDARY = "----squallFormBoundary7MA4YWxkTrZu0gW"


def make_app(web: Any) -> Any:
    def describe(value: Any) -> Any:
        if isinstance(value, web.FileField):
            data = value.file.read()
            return {
                "name": value.name,
                "filename": value.filename,
                "content_type": value.content_type,
                "headers": list(value.headers.items()),
                "size": len(data),
                "sha": hashlib.sha256(data).hexdigest()[:16],
                "head": data[:24].decode("latin-1"),
                "file": type(value.file).__name__,
            }
        if isinstance(value, str):
            return ["str", value]
        return [type(value).__name__, bytes(value).decode("latin-1")]

    async def post(request: Any) -> Any:
        try:
            data = await request.post()
        except web.HTTPException:
            raise
        except Exception:
            return web.Response(status=400, text="malformed")
        return web.json_response([[key, describe(value)] for key, value in data.items()])

    async def describe_parts(reader: Any, size: int) -> list[Any]:
        out: list[Any] = []
        async for part in reader:
            if hasattr(part, "fetch_next_part"):  # a nested multipart
                out.append({"nested": await describe_parts(part, size), "eof": part.at_eof()})
                continue
            content = bytearray()
            chunks = 0
            while chunk := await part.read_chunk(size):
                content += part.decode(chunk)
                chunks += 1
            out.append(
                {
                    "name": part.name,
                    "filename": part.filename,
                    "headers": list(part.headers.items()),
                    "content": bytes(content).decode("latin-1"),
                    "eof": part.at_eof(),
                    "some_chunks": chunks > 0,
                }
            )
        return out

    async def parts(request: Any) -> Any:
        size = int(request.query.get("size", "8192"))
        try:
            reader = await request.multipart()
            out = await describe_parts(reader, size)
        except web.HTTPException:
            raise
        except Exception:
            return web.Response(status=400, text="malformed")
        return web.json_response({"parts": out, "eof": reader.at_eof()})

    async def typed(request: Any) -> Any:
        reader = await request.multipart()
        out = []
        async for part in reader:
            ctype = part.headers.get("Content-Type", "")
            if ctype.startswith("application/json"):
                out.append(["json", await part.json()])
            elif ctype.startswith("application/x-www-form-urlencoded"):
                out.append(["form", await part.form()])
            elif ctype == "application/octet-stream":
                out.append(["bytes", len(await part.read())])
            else:
                out.append(["text", await part.text()])
        return web.json_response(out)

    async def lines(request: Any) -> Any:
        reader = await request.multipart()
        out = []
        async for part in reader:
            got = []
            while line := await part.readline():
                got.append(line.decode("latin-1"))
            out.append(got)
        return web.json_response(out)

    async def first_only(request: Any) -> Any:
        reader = await request.multipart()
        part = await reader.next()
        first = await part.read(decode=True)
        await reader.release()
        return web.json_response([first.decode(), reader.at_eof(), await reader.next()])

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/post", post)
    app.router.add_post("/parts", parts)
    app.router.add_post("/typed", typed)
    app.router.add_post("/lines", lines)
    app.router.add_post("/first", first_only)
    return app


def field(name: str, value: bytes, *headers: str) -> bytes:
    head = f'Content-Disposition: form-data; name="{name}"'
    return "\r\n".join([head, *headers]).encode() + b"\r\n\r\n" + value


def upload(name: str, filename: str, value: bytes, *headers: str) -> bytes:
    head = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
    return "\r\n".join([head, *headers]).encode() + b"\r\n\r\n" + value


def body(
    *parts: bytes, boundary: str = BOUNDARY, preamble: bytes = b"", epilogue: bytes = b""
) -> bytes:
    delim = b"--" + boundary.encode()
    out = preamble
    for part in parts:
        out += delim + b"\r\n" + part + b"\r\n"
    return out + delim + b"--\r\n" + epilogue


def form(path: str, data: bytes, note: str, boundary: str = BOUNDARY, chunked: bool = False) -> Req:
    ctype = ("Content-Type", f"multipart/form-data; boundary={boundary}")
    return send("POST", path, data, ctype, chunked=chunked, note=note)


def mixed(path: str, data: bytes, note: str, subtype: str = "mixed") -> Req:
    ctype = ("Content-Type", f"multipart/{subtype}; boundary={BOUNDARY}")
    return send("POST", path, data, ctype, note=note)


TEXT = field("title", b"Hello, world")
UTF8 = field("city", "Zürich €".encode())
FILE = upload("doc", "notes.txt", b"line one\r\nline two\r\n", "Content-Type: text/plain")
BINARY = upload("img", "pixel.png", bytes(range(256)) * 4, "Content-Type: image/png")
NO_TYPE = upload("blob", "data.bin", b"\x00\x01\x02")
B64 = field("b64", b"SGVsbG8s\r\nIHdvcmxk\r\nIQ==", "Content-Transfer-Encoding: base64")
QP = field("qp", b"caf=C3=A9 soft=\r\nbreak =3D ok", "Content-Transfer-Encoding: quoted-printable")
NESTED = (
    b'Content-Disposition: form-data; name="files"\r\n'
    b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n"
    b"inner preamble\r\n--inner\r\n"
    b'Content-Disposition: file; filename="a.txt"\r\n\r\nAAA\r\n'
    b"--inner\r\n"
    b'Content-Disposition: file; filename="b.txt"\r\nContent-Type: text/plain\r\n\r\nBBB\r\n'
    b"--inner--\r\ninner epilogue"
)

REQUESTS: list[Req] = [
    form("/post", body(TEXT, UTF8, FILE, BINARY, NO_TYPE), "post fields and files"),
    form("/post", body(TEXT, FILE), "post chunked", chunked=True),
    form("/post", body(field("a", b"1"), field("a", b"2"), field("b", b"")), "post repeated names"),
    form(
        "/post",
        body(TEXT, preamble=b"This is a preamble\r\n", epilogue=b"and an epilogue\r\n"),
        "post preamble epilogue",
    ),
    form("/post", body(field("json", b'{"a": 1}', "Content-Type: application/json")), "post bytes"),
    form(
        "/post",
        body(field("t", "caf\xe9".encode("latin-1"), "Content-Type: text/plain; charset=latin-1")),
        "post part charset",
    ),
    form("/post", body(B64, QP), "post base64 quoted-printable"),
    form(
        "/post",
        body(
            upload("f", "x", b"aGVsbG8g\r\nd29ybGQ=", "Content-Transfer-Encoding: base64"),
            upload("g", "y", b"a=3Db", "Content-Transfer-Encoding: quoted-printable"),
        ),
        "post encoded files",
    ),
    form(
        "/post",
        body(
            b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''na%C3%AFve.txt\r\n\r\nx",
            b'Content-Disposition: form-data; name="g"; filename="a b;c.txt"\r\n\r\ny',
            b"Content-Disposition: form-data; name=g2; filename=plain.txt\r\n\r\nz",
            b'Content-Disposition: form-data; name*0="lo"; name*1="ng"\r\n\r\nw',
        ),
        "post disposition forms",
    ),
    form("/post", body(upload("f", "", b"not a file")), "post empty filename is a field"),
    form("/post", body(field("empty", b"")), "post empty field"),
    form("/post", b"--" + BOUNDARY.encode() + b"--\r\n", "post no parts"),
    form(
        "/post",
        body(TEXT, boundary='"quoted boundary"'),
        "post quoted boundary",
        '"quoted boundary"',
    ),
    form("/post", body(upload("big", "big.bin", b"z" * 70000)), "413 post file"),
    form("/post", body(field("big", b"z" * 70000)), "413 post field"),
    form("/post", body(field("big", b"z" * 70000)), "413 post chunked", chunked=True),
    form("/post", body(b"Content-Type: text/plain\r\n\r\nx"), "malformed post missing name"),
    form("/post", body(NESTED), "malformed post nested"),
    form("/post", body(TEXT)[:-4], "malformed post no closing boundary"),
    form("/post", body(TEXT).replace(b"\r\n\r\n", b"\r\n", 1)[:60], "malformed post cut headers"),
    form("/post", b"no boundary anywhere\r\n", "malformed post no first boundary"),
    form("/post", b"", "malformed post empty body"),
    form("/post", body(field("x", b"1", "Bad Header: yes")), "malformed post bad header"),
    form("/post", body(field("x", b"1", " folded")), "malformed post folded header"),
    send(
        "POST",
        "/post",
        body(TEXT),
        ("Content-Type", "multipart/form-data"),
        note="malformed post no boundary param",
    ),
    form(
        "/post",
        body(field("x", b"1", "Content-Transfer-Encoding: rot13")),
        "malformed post unknown transfer encoding",
    ),
    form("/parts", body(TEXT, UTF8, FILE, BINARY, NO_TYPE), "parts fields and files"),
    form("/parts?size=100", body(BINARY, B64, QP), "parts small chunks"),
    form("/parts?size=45", body(B64), "parts small chunks base64"),
    form("/parts", body(TEXT, NESTED, FILE), "parts nested"),
    mixed("/parts", body(TEXT, FILE), "parts multipart/mixed"),
    mixed("/post", body(TEXT, FILE), "post multipart/mixed is no form"),
    form("/parts", body(field("big", b"y" * 70000)), "parts stream past client_max_size"),
    form("/parts", body(TEXT)[:-4], "malformed parts no closing boundary"),
    form("/parts", body(TEXT, FILE).replace(b"--\r\n", b"XX\r\n"), "malformed parts bad boundary"),
    form(
        "/typed",
        body(
            field("j", b'{"k": [1, 2]}', "Content-Type: application/json"),
            field("f", b"a=1&b=caf%C3%A9&c=", "Content-Type: application/x-www-form-urlencoded"),
            field("t", "ünï".encode()),
            field("b", b"\x00" * 10, "Content-Type: application/octet-stream"),
        ),
        "typed text json form read",
    ),
    form(
        "/typed",
        body(field("big", b"y" * 70000, "Content-Type: application/octet-stream")),
        "413 part read",
    ),
    form("/lines", body(field("l", b"one\r\ntwo\nthree"), field("m", b"single")), "readline"),
    form("/first", body(TEXT, FILE, BINARY), "release the rest"),
]
