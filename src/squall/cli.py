"""The ``squall`` command line (``python -m squall``): parse arguments into a server Config.

Shaped like uvicorn's where the options mean the same; the serving itself is
:func:`squall.server.run`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from . import __version__
from .http.proxy import TrustedProxies
from .jsonlog import REQUEST_ID_HEADER
from .server.config import EXIT_USAGE, LOG_LEVELS, Config
from .server.run import run

__all__ = ("build_parser", "main", "parse_config")

EPILOG = """\
interfaces:
  auto     a squall.web.Application (or, with --factory, a callable returning one) is served
           as an aiohttp.web application (AppRunner and sites); any other callable as ASGI 3
  aiohttp  require a squall.web.Application
  asgi     serve the callable as an ASGI 3 application (http and lifespan scopes)

processes:
  with --workers N > 1, --max-requests, --max-worker-memory, --max-worker-lifetime or
  --reload, a supervisor process
  binds the socket and runs the workers; it restarts a worker that dies, replaces them one by
  one on SIGHUP (no connection refused), and on SIGTERM/SIGINT stops them gracefully. Sockets
  passed by systemd socket activation (LISTEN_FDS) are used instead of --host/--port/--uds/--fd.

behind a proxy:
  --proxy-headers (on by default, as uvicorn) believes Forwarded / X-Forwarded-For /
  X-Forwarded-Proto (and X-Forwarded-Host for the aiohttp interface) only from the peers in
  --forwarded-allow-ips (default: $FORWARDED_ALLOW_IPS, else 127.0.0.1; "*" trusts everyone).
  --proxy-protocol: connections from those same peers must begin with a PROXY protocol header
  (v1 or v2: HAProxy send-proxy, AWS NLB), whose client address is the request's; a bad header
  closes the connection; other peers speak plain HTTP.

examples:
  squall main:app
  squall main:create_app --factory --port 8080
  squall main:app --uds /run/app.sock --no-access-log
  squall main:app --host 0.0.0.0 --workers 4 --max-requests 10000 --max-requests-jitter 1000
  squall main:app --workers 4 --max-worker-memory 512 --access-log-format json
  squall main:app --workers 4 --max-worker-lifetime 3600 --max-worker-lifetime-jitter 600
  squall main:app --reload
"""


class _Parser(argparse.ArgumentParser):
    """argparse with errors as one ``squall: error: ...`` line (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (no upper bound if None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what}: {text!r}") from None
        if value < low or (high is not None and value > high):
            limits = f"{low}-{high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{what} out of range ({limits}): {value}")
        return value

    return parse


_positive_int = _int_in(1, None, "int value")
_port = _int_in(0, 65535, "port")
_non_negative_int = _int_in(0, None, "int value")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``squall``."""
    parser = _Parser(
        prog="squall",
        usage="%(prog)s [OPTIONS] MODULE:APP",
        description="Serve an aiohttp.web-style or ASGI application with squall.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("app", metavar="MODULE:APP", help="the application, e.g. 'main:app' (APP may be dotted)")
    add("--host", default="127.0.0.1", help="bind socket to this host [default: 127.0.0.1]")
    add("--port", type=_port, default=8000, help="bind socket to this port [default: 8000]")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--uds", metavar="PATH", help="bind to a Unix domain socket")
    where.add_argument(
        "--fd", type=_non_negative_int, metavar="N", help="bind to a socket from this descriptor"
    )
    add(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="number of worker processes (above 1: under a supervisor) [default: 1]",
    )
    add(
        "--max-requests",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="replace a worker gracefully after about N requests; 0: never [default: 0]",
    )
    add(
        "--max-requests-jitter",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="add a random 0..N to --max-requests per worker [default: 0]",
    )
    add(
        "--max-worker-memory",
        type=_non_negative_int,
        default=0,
        metavar="MiB",
        help="replace a worker gracefully once its resident memory (RSS) exceeds MiB "
        "mebibytes; 0: never [default: 0]",
    )
    add(
        "--worker-memory-interval",
        type=_positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="how often the supervisor reads each worker's RSS, with --max-worker-memory "
        "[default: 5]",
    )
    add(
        "--max-worker-lifetime",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="replace a worker gracefully this long after it started serving; 0: never "
        "[default: 0]",
    )
    add(
        "--max-worker-lifetime-jitter",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="add a random 0..SECONDS to --max-worker-lifetime per worker, so that workers "
        "are not replaced together [default: 0]",
    )
    add(
        "--reuse-port",
        action="store_true",
        help="each worker binds its own SO_REUSEPORT socket instead of sharing one "
        "(see docs/deployment.md)",
    )
    add(
        "--reload",
        action="store_true",
        help="restart the worker when a .py file changes (development; needs watchfiles)",
    )
    add(
        "--reload-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="directory --reload watches (repeatable) [default: --app-dir]",
    )
    add(
        "--factory",
        action="store_true",
        help="treat MODULE:APP as a callable returning the application (may be async)",
    )
    add(
        "--interface",
        choices=("auto", "aiohttp", "asgi"),
        default="auto",
        help="application interface [default: auto]",
    )
    add(
        "--as-aiohttp",
        action="store_true",
        help="call squall.install_as_aiohttp() before importing the app: an unmodified "
        "aiohttp application and its plugins ('from aiohttp import web') run on squall "
        "(docs/migrating.md)",
    )
    add("--root-path", default="", help="ASGI root_path, for apps mounted under a prefix")
    add(
        "--timeout-keep-alive",
        type=_seconds,
        default=75.0,
        metavar="SECONDS",
        help="close idle keep-alive connections after this long; 75 as aiohttp, for both "
        "interfaces (uvicorn uses 5) [default: 75]",
    )
    add(
        "--timeout-graceful-shutdown",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, wait this long for requests in flight [default: 60]",
    )
    add(
        "--timeout-header",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="a request head must be complete this long after its first byte (and a new "
        "connection must send that byte this soon); then 408 and close [default: 10]",
    )
    add(
        "--timeout-body",
        type=_positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="a handler waiting this long for the next request-body bytes gets 408 and the "
        "connection closes [default: 60]",
    )
    add(
        "--min-body-rate",
        type=_non_negative_int,
        default=500,
        metavar="BYTES",
        help="after --body-grace, a request body must average BYTES per second (Apache "
        "mod_reqtimeout's MinRate); slower: 408 and close; 0: no minimum [default: 500]",
    )
    add(
        "--body-grace",
        type=_seconds,
        default=20.0,
        metavar="SECONDS",
        help="seconds a request body may take before --min-body-rate applies [default: 20]",
    )
    add(
        "--backlog",
        type=_positive_int,
        default=2048,
        metavar="N",
        help="maximum number of pending connections [default: 2048]",
    )
    add(
        "--log-level",
        choices=tuple(LOG_LEVELS),
        default="info",
        help="log level [default: info]",
    )
    add(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per request at info level, to the squall.access logger (aiohttp "
        "interface: aiohttp's format; ASGI: uvicorn's) [default: on]",
    )
    add(
        "--access-log-format",
        choices=("default", "json"),
        default="default",
        help="default: the lines above; json: one JSON object per request (time, client, "
        "method, path, query, protocol, status, bytes, duration, user_agent, request_id), "
        "the same for both interfaces, and every other log line as a JSON object too "
        "[default: default]",
    )
    add(
        "--request-id-header",
        default=REQUEST_ID_HEADER,
        metavar="NAME",
        help="request header logged as request_id by the JSON access log; '' for none "
        f"[default: {REQUEST_ID_HEADER}]",
    )
    add(
        "--limit-concurrency",
        type=_positive_int,
        default=0,
        metavar="N",
        help="most connections one process serves at once; past it, 503 and close "
        "[default: unlimited]",
    )
    add(
        "--http2",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve HTTP/2 on the same port: ALPN h2 over TLS, prior knowledge (the HTTP/2 "
        "preface) in cleartext; --no-http2 serves HTTP/1.1 only [default: on]",
    )
    add(
        "--handler-cancellation",
        action="store_true",
        help="cancel a request's handler when its client leaves (closes or resets the "
        "connection), as aiohttp's handler_cancellation; both interfaces [default: off]",
    )
    add(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take the client's address and scheme from a trusted proxy's headers [default: on]",
    )
    add(
        "--forwarded-allow-ips",
        default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        metavar="IPS",
        help="comma-separated addresses or networks (CIDR) of trusted proxies, or '*' "
        "[default: $FORWARDED_ALLOW_IPS or 127.0.0.1]",
    )
    add(
        "--proxy-protocol",
        action="store_true",
        help="connections from --forwarded-allow-ips peers begin with a PROXY protocol header "
        "(v1 or v2) giving the client's address; not with TLS [default: off]",
    )
    add(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics at http://METRICS-HOST:PORT/metrics, a listener of its "
        "own (with --workers: the supervisor's, every worker summed) [default: off]",
    )
    add(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address of the metrics listener [default: 127.0.0.1]",
    )
    add("--ssl-keyfile", metavar="PATH", help="TLS private key file")
    add("--ssl-certfile", metavar="PATH", help="TLS certificate (chain) file")
    add(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="look for MODULE in this directory first [default: current directory]",
    )
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def parse_config(argv: Sequence[str] | None = None) -> Config:
    """Parse ``argv`` (``sys.argv[1:]`` by default) into a :class:`Config`; exit 2 when invalid."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.reload and ns.workers > 1:
        parser.error("--reload runs one worker: it does not go with --workers")
    if ns.reload_dir and not ns.reload:
        parser.error("--reload-dir needs --reload")
    if ns.reuse_port and (ns.uds is not None or ns.fd is not None):
        parser.error("--reuse-port applies to --host/--port only")
    if ns.ssl_keyfile is not None and ns.ssl_certfile is None:
        parser.error("--ssl-keyfile needs --ssl-certfile")
    if ns.max_worker_lifetime_jitter and not ns.max_worker_lifetime:
        parser.error("--max-worker-lifetime-jitter needs --max-worker-lifetime")
    if ns.proxy_protocol and ns.ssl_certfile is not None:
        parser.error("--proxy-protocol does not go with TLS: terminate TLS at the proxy")
    try:
        TrustedProxies(ns.forwarded_allow_ips)
    except ValueError as exc:
        parser.error(f"--forwarded-allow-ips: {exc}")
    return Config(
        app=ns.app,
        host=ns.host,
        port=ns.port,
        uds=ns.uds,
        fd=ns.fd,
        factory=ns.factory,
        interface=ns.interface,
        root_path=ns.root_path,
        timeout_keep_alive=ns.timeout_keep_alive,
        timeout_graceful_shutdown=ns.timeout_graceful_shutdown,
        timeout_header=ns.timeout_header,
        timeout_body=ns.timeout_body,
        min_body_rate=ns.min_body_rate,
        body_grace=ns.body_grace,
        backlog=ns.backlog,
        log_level=ns.log_level,
        access_log=ns.access_log,
        access_log_format=ns.access_log_format,
        request_id_header=ns.request_id_header,
        ssl_keyfile=ns.ssl_keyfile,
        ssl_certfile=ns.ssl_certfile,
        app_dir=ns.app_dir,
        workers=ns.workers,
        max_requests=ns.max_requests,
        max_requests_jitter=ns.max_requests_jitter,
        max_worker_memory=ns.max_worker_memory,
        worker_memory_interval=ns.worker_memory_interval,
        max_worker_lifetime=ns.max_worker_lifetime,
        max_worker_lifetime_jitter=ns.max_worker_lifetime_jitter,
        reuse_port=ns.reuse_port,
        reload=ns.reload,
        reload_dirs=ns.reload_dir,
        forwarded_allow_ips=ns.forwarded_allow_ips if ns.proxy_headers else None,
        limit_concurrency=ns.limit_concurrency,
        handler_cancellation=ns.handler_cancellation,
        http2=ns.http2,
        proxy_protocol=ns.forwarded_allow_ips if ns.proxy_protocol else None,
        metrics_port=ns.metrics_port,
        metrics_host=ns.metrics_host,
        as_aiohttp=ns.as_aiohttp,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``squall`` and ``python -m squall``; returns the exit status."""
    config = parse_config(argv)
    return run(config)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
