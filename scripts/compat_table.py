"""Write docs/compat.md: every name in aiohttp.web.__all__ and where squall stands on it.

Run with the test venv (aiohttp installed): ``.venv/bin/python scripts/compat_table.py``.
tests/test_compat_doc.py fails when the committed file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aiohttp
import aiohttp.web

import squall.web

OUT = Path(__file__).resolve().parent.parent / "docs" / "compat.md"

# Names squall has but where behaviour differs from aiohttp, and why.
DIFFERS: dict[str, str] = {
    "Application": "adding one sub-application twice raises `RuntimeError` (aiohttp accepts it "
    "and prefixes its routes a second time); `add_domain()` inside a sub-application that is "
    "then added with `add_subapp()` works (aiohttp raises `KeyError`). A custom "
    "`AbstractRuleMatching.match()` must not suspend: routing is synchronous.",
    "normalize_path_middleware": "with `remove_slash=True` and `merge_slashes=True` it only "
    "tries the path without its last character when that character is a slash, as documented; "
    "aiohttp also tries it otherwise (`/itemx` redirects to `/item`).",
    "Request": "a malformed multipart body raises `MultipartError` from `post()`/`multipart()`, "
    "a `ValueError` as in aiohttp that answers 400 if the handler lets it out (aiohttp: 500); "
    "`post()` honours a `_charset_` field (aiohttp 3.14 fails on such a form); a part's "
    "`Content-Length` is ignored; `post()` takes at most `client_max_fields` fields as aiohttp. "
    "A body sent with `Content-Encoding: gzip` or `deflate` is decompressed as aiohttp does "
    "(on demand, 64 KiB per step, so `client_max_size` stops a bomb); `br` and `zstd` bodies, "
    "which aiohttp decodes when their packages are installed, reach the handler as sent (their "
    "streaming decoders cannot bound one step's output). `request.task` is the connection's "
    "task, as in aiohttp. `request.writer` of a served request takes only the "
    "`HTTP/1.1 100 Continue` line a custom `expect_handler` writes (sent then, over HTTP/2 "
    "as its frame) and raises `RuntimeError` for other bytes (squall's connection frames the "
    "response; aiohttp's `StreamWriter` is internal to its server); a request from "
    "`make_mocked_request(writer=...)` has that writer, which gets the response.",
    "BaseRequest": "as `Request`. Requests and responses are `MutableMapping`s by registration "
    "(`isinstance(request, MutableMapping)` holds), not by inheritance: their metaclass is "
    "`type`, not `ABCMeta`, so `isinstance()` against their classes costs no Python call.",
    "middleware": "the handler a middleware is given is a function that calls "
    "`middleware(request, handler=inner)`, not aiohttp's `functools.partial` (which copies its "
    "keyword into a new dict on every call); `functools.update_wrapper` gives it the wrapped "
    "handler's `__name__`, `__doc__`, attributes and `__wrapped__` as aiohttp does, so "
    "`inspect.unwrap(handler)` and marks set on the handler read the same.",
    "StreamResponse": "`enable_compression()` without force adds Accept-Encoding to `Vary` "
    "(aiohttp does not) and never uses a coding the client refused with `q=0` (aiohttp "
    "matches the name only); a response without a body (`body=None`, 1xx, 204, 304) is not "
    "compressed (aiohttp fails on a `Response` without a body and drops the connection). "
    "Responses always carry `HTTP/1.1` in the status line, also to HTTP/1.0 clients "
    "(RFC 9110 2.5); aiohttp echoes `HTTP/1.0`. After an explicit `prepare()`, `headers` are "
    "the head as sent, as in aiohttp (Content-Length or Transfer-Encoding as framed, Date, "
    "Server, Connection, Set-Cookie); a response returned from a handler and sent whole keeps "
    "the headers it was given (nothing is spent rewriting them), and `on_response_prepare` "
    "receivers see the headers before Date and Server are added (aiohttp 3.14 adds them first);"
    " the chunked-over-HTTP/1.0 `RuntimeError` is raised by `prepare()` only.",
    "json_response": "the keyword arguments are keyword-only as in aiohttp (a second "
    "positional argument is a TypeError), but declared as positional-or-keyword behind a "
    "guard parameter `_positional`, so `inspect.signature` shows them so: Python fills "
    "omitted keyword-only arguments from a dict, one lookup each, on every call "
    "(`response.KEYWORDS_ONLY`).",
    "Response": "as `StreamResponse`; headers are built only when `.headers` is touched. The "
    "constructor refuses positional arguments as aiohttp's does, with a positional-only "
    "guard (`inspect.signature` shows one) instead of `*`: ~45 ns less per "
    "`Response(text=...)` (see `json_response`). `enable_compression(strategy=)` applies to"
    " whole bodies too (aiohttp uses it only for chunked and streamed ones).",
    "UrlMappingMatchInfo": "`expect_handler` is called as in aiohttp, but the default one does"
    " not write `100 Continue` itself: squall sends it when the handler first reads the "
    "body, so a handler that answers without reading never invites the body. A request's "
    "match info is an instance of a subclass (for a remembered target, one made for its "
    'route: see the guide, "Sub-applications and URL building"), so `isinstance` holds but '
    "`type(match_info) is UrlMappingMatchInfo` does not.",
    "AppRunner": "also takes `header_timeout` (seconds to receive a request head, 10 by "
    "default; aiohttp has no such timeout) and `forwarded_allow_ips` (trusted proxies whose "
    "`Forwarded`/`X-Forwarded-*` headers set `request.remote`, `scheme` and `host`; off by "
    "default, as aiohttp, which leaves this to aiohttp-remotes). `runner.server` is squall's "
    "`HttpServer`, whose `requests_count` counts from the first time it is read (nothing is "
    "counted per request unless asked; aiohttp's `web.Server` counts from the start).",
    "run_app": "runs on uvloop when it is installed (`squall.new_event_loop()`; aiohttp's "
    "makes asyncio's loop), without changing the event loop policy.",
    "RequestPayloadError": "raised to the handler for a malformed or cut-short body; a handler "
    "that lets it escape answers 400.",
    "StreamReader": "aiohttp's reading API (`read`, `readany`, `readexactly`, `readline`, "
    "`readchunk`, `iter_chunked`, `iter_any`, `iter_chunks`); `readchunk` never reports "
    "HTTP chunk boundaries (always `False`).",
    "PayloadAccessError": "exported, never raised: a body read after the response was sent "
    "gets what the handler left, then EOF (aiohttp raises this).",
    "Server": "the low-level server (no routing) on squall's own protocol; `request_factory` "
    "is refused (it builds aiohttp's protocol objects) and there is no access log.",
    "ContentCoding": "aiohttp's three members plus `br` and `zstd`, usable with "
    "`enable_compression(force=...)` when brotli/zstandard are installed; negotiation picks "
    "them only when the application sets squall's `COMPRESSION_PREFERENCE` (aiohttp's server "
    "has neither).",
    "AccessLogger": "supports `%a %t %P %r %s %b %O %T %Tf %D %{H}i %{H}o %{E}e`; the default "
    "logger is `squall.access` (`aiohttp.access` under `install_as_aiohttp()`).",
    "WebSocketResponse": "the handshake answers 426 with `Sec-WebSocket-Version: 13` to other "
    "versions (aiohttp: 400, and it also accepts 7 and 8); an autoclose echoes the client's "
    "close code (aiohttp answers 1000); pings are answered as they arrive, not when the handler "
    "next calls `receive()`; messages under 128 bytes are sent uncompressed; `writer_limit` is "
    "accepted and the transport's write buffer limits apply.",
    "FileResponse": "an `If-Range` entity tag is honoured (the range is sent only if it "
    "matches the file's ETag; aiohttp sends the range whatever the tag); a `.br`/`.gz` sibling "
    "refused with `q=0` is not sent (aiohttp matches the coding name only). The body goes with "
    "`os.sendfile` also under uvloop (aiohttp reads and writes there); `SQUALL_NOSENDFILE=1` "
    "turns it off, as `AIOHTTP_NOSENDFILE` does for aiohttp.",
    "StaticResource": "a file name the file system refuses (too long) answers 404; aiohttp "
    "answers 500.",
}

# Names squall does not have yet, and why (the rest of aiohttp.web is issue #5).
NOT_YET: dict[str, str] = {
    "RequestHandler": "aiohttp's protocol class, internal to its server; squall's protocol is "
    "`squall.http.HttpProtocol` with another interface, so no alias is offered.",
    "NamedPipeSite": "Windows only; squall targets Unix.",
}


# `make aiohttp-suite`'s last count (scripts/aiohttp_suite.py; update it from report.md after a
# run): aiohttp's own server-side tests that pass on aiohttp, and how many of them pass on squall.
SUITE = """\
## aiohttp's own tests on squall

`make aiohttp-suite` runs aiohttp 3.14.5's server-side test files unmodified on aiohttp and on
squall through `install_as_aiohttp()` ([migrating.md](migrating.md)). Last run: **1,001 of the
1,051 tests that pass on aiohttp pass on squall**.

| file | passed on aiohttp | passed on squall |
| --- | --- | --- |
| test_multipart | 142 | 142 |
| test_web_app | 44 | 38 |
| test_web_cli | 12 | 12 |
| test_web_exceptions | 25 | 25 |
| test_web_functional | 153 | 135 |
| test_web_middleware | 116 | 115 |
| test_web_request | 147 | 142 |
| test_web_response | 182 | 177 |
| test_web_runner | 18 | 13 |
| test_web_sendfile_functional | 105 | 104 |
| test_web_urldispatcher | 47 | 46 |
| test_web_websocket_functional | 60 | 52 |

The 50 others, each listed under its cause in scripts/aiohttp_suite_known.txt (CI runs the suite
on squall with `ARGS="--squall-only --check"`, which fails on any failure that list lacks):

| tests | cause |
| --- | --- |
"""

# The remaining failures by cause: (tests, cause), rows of the table SUITE ends with.
SUITE_CAUSES: tuple[tuple[int, str], ...] = (
    (
        36,
        "aiohttp internals: private attributes and methods of aiohttp's classes "
        "(`app._make_handler`, `_run_middlewares`, `request._protocol`, assigning "
        "`request._message`, `resp._send_headers_immediately`, "
        "`ws._reader`/`_parser`/`_writer`/`_loop`, `request.protocol._keepalive`, "
        "`_timeout_ceil_threshold`, `server._kwargs`), aiohttp classes patched in place "
        "(`RequestHandler.data_received`, `StreamReader.readany`, "
        "`web_app._cached_build_middleware`, `pathlib.Path.open`), aiohttp's private constants. "
        "They test aiohttp's implementation, and may stay"
    ),
    (
        5,
        "deliberate: 501 for an unknown method and 431 for a too-large header (aiohttp: 400), "
        "as RFC 9110 15.6.2 and RFC 6585 5 have them; HTTP/1.0 keep-alive answered as HTTP/1.1 "
        "(RFC 9110 2.5)"
    ),
    (
        4,
        "`isinstance(part, aiohttp.multipart.BodyPartReader)` in a handler: under the alias "
        "`aiohttp.multipart` stays aiohttp's (its client uses it), and `request.multipart()` "
        "gives squall's reader"
    ),
    (
        2,
        "header order on the wire: squall sends Content-Type, the fields, Content-Length, Date, "
        "Server; aiohttp puts Content-Length before Set-Cookie and before its default "
        "Content-Type. Field order carries no meaning (RFC 9110 5.3)"
    ),
    (
        2,
        "multipart header limits raise squall's `MultipartError`, a `ValueError` answered 400 "
        "(aiohttp: its `BadHttpMessage`/`LineTooLong`, which squall cannot subclass without "
        "importing aiohttp)"
    ),
    (
        1,
        "`test_sendfile_after_client_disconnect` is skipped on squall: it is marked to skip "
        "without aiohttp's `web_fileresponse.NOSENDFILE`, and run it reads `request._protocol`"
    ),
)

# After the table.
SUITE_AFTER = """\
Four more tests of these files fail on aiohttp too where the suite runs (as root, so file
permissions deny nothing; and the sdist's tests miss README.rst), and are in the list as well.
"""


def main() -> int:
    names = sorted(aiohttp.web.__all__, key=str.lower)
    rows = []
    counts = {"supported": 0, "differs": 0, "not yet": 0}
    for name in names:
        if hasattr(squall.web, name):
            status = "differs" if name in DIFFERS else "supported"
            note = DIFFERS.get(name, "")
        else:
            status = "not yet"
            note = NOT_YET.get(name, "")
        counts[status] += 1
        rows.append(f"| `{name}` | {status} | {note} |")
    text = "\n".join(
        [
            "# aiohttp.web compatibility",
            "",
            f"Every public name of `aiohttp.web` (aiohttp {aiohttp.__version__}'s `__all__`) and "
            "where `squall.web` stands on it. Generated by `scripts/compat_table.py`; "
            "a test keeps it current.",
            "",
            f"{counts['supported']} supported, {counts['differs']} supported with a difference, "
            f"{counts['not yet']} not yet.",
            "",
            "| name | status | notes |",
            "| --- | --- | --- |",
            *rows,
            "",
            "## Behaviour beyond single names",
            "",
            "- `import squall` makes `squall.web` available (`import aiohttp` does not import "
            "`aiohttp.web`); like `import aiohttp`, it leaves the event loop policy alone.",
            "- Wire-level refusals (malformed requests) get a short plain-text answer with the "
            "status RFC 9110/9112 names (400, 413, 414, 431, 501, 505, 408, 417) and the "
            "connection closes. aiohttp answers most of them 400.",
            "- Default limits: request line and each header field 8190 bytes (as aiohttp), at "
            "most 128 header fields (aiohttp: 32768) and 64 KiB of head in total.",
            "- A request head must arrive within `header_timeout` (10 s); aiohttp waits forever.",
            "- A header value set by a handler that contains CR, LF or NUL is an error: the "
            "client gets a 500 (aiohttp drops the connection).",
            "- HEAD responses never carry a body, also from a `StreamResponse` that writes one.",
            "- A request with a well-formed HTTP version other than 1.0 and 1.1 (HTTP/2.0, "
            "HTTP/0.9) is answered 505 and closed; aiohttp answers it as HTTP/1.x.",
            "- After a 413 from read()/text()/json()/post() squall closes the connection (the "
            "rest of the refused body is never read); aiohttp keeps it open.",
            "- A body longer than its declared Content-Length (`StreamResponse.content_length`, or "
            "the header) is cut at that length, logged as an error, and the connection closed "
            "after the response; one that ends short of it closes the connection (aiohttp leaves "
            "that connection open and out of step). A `web.Response`'s whole body sets its own "
            "Content-Length, whatever header the handler set.",
            "- A Connection header set by the handler is sent as given (`keep-alive` included) "
            "unless the connection closes after the response, then `close` is sent; `close` from "
            "the handler closes it.",
            "- A client that leaves (closes or resets its connection) is seen at once: "
            "`request.transport` and `request.protocol.transport` are None and streamed writes "
            "raise `ConnectionResetError`, as on "
            "aiohttp; a response returned whole is still written to a client that only "
            "half-closed (aiohttp closes at once). See the guide, 'Detecting a client that left'.",
            "- HTTP/2 (squall's own; aiohttp has none) on the same port, prior knowledge in "
            "cleartext and ALPN `h2` over TLS (squall sets ALPN `h2`, `http/1.1` on the "
            "`ssl_context` it is given, which aiohttp leaves alone); `http2=False` on `run_app` "
            "and `AppRunner` (or "
            "`squall --no-http2`) serves HTTP/1.1 only; see the guide, 'HTTP/2'. "
            "`StreamResponse.write_eof()` takes squall's `trailers=` (fields after the body: "
            "HTTP/2, or a chunked HTTP/1.1 body).",
            "- The PROXY protocol (v1 and v2; squall's own; aiohttp has none): opt-in with "
            "`proxy_protocol=True` on `run_app` and `AppRunner` (or `squall --proxy-protocol`), "
            "from the peers in `forwarded_allow_ips`; see the guide, 'Behind a reverse proxy'.",
            "- `web.COMPRESSION_PREFERENCE` (squall's own `AppKey`; aiohttp has none): "
            "`app[web.COMPRESSION_PREFERENCE] = (\"zstd\", \"br\", \"gzip\", \"deflate\")` "
            "lets `enable_compression()` negotiate those codings in that order (the client's "
            "q-values first, `q=0` refuses); unset, negotiation is aiohttp's. Set it under "
            "`if hasattr(web, \"COMPRESSION_PREFERENCE\")` to keep the file running on aiohttp; "
            "see the guide, 'Compression'.",
            "- `squall.install_as_aiohttp()` makes `aiohttp.web` and aiohttp's other server-side "
            "modules squall's, for unmodified apps and plugins, keeping aiohttp's client: what it "
            "maps and why, `make aiohttp-suite` (aiohttp's own tests on squall), `make plugins` "
            "(five plugins' own tests: none passes on aiohttp and fails on squall) and `make "
            "aiohttp-examples` (aiohttp's example programs: clients see the same but the `Server` "
            "header) are in [migrating.md](migrating.md).",
            "",
            SUITE.rstrip("\n"),
            *(f"| {count} | {cause} |" for count, cause in SUITE_CAUSES),
            "",
            SUITE_AFTER.rstrip("\n"),
            "",
        ]
    )
    if "--check" in sys.argv:
        return 0 if OUT.read_text() == text else 1
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
