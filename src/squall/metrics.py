"""Prometheus metrics: the recorder the request path feeds when metrics are on, the text
exposition (format 0.0.4) it renders, and the separate listener that serves it at ``/metrics``.

Off by default, and then nothing of this runs: the handlers test one attribute per request.
What can be read at scrape time (open connections, requests in flight) is read then, from the
servers' connection sets; only a request's end is counted, as a dict increment and a histogram
bucket. The listener is a squall :class:`~squall.http.HttpServer` of its own (so the response
bytes are framed by http/, as every other) with a handler that knows one path; it never goes
through the application, and the application's port never serves ``/metrics``.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Final

from .http.limits import Limits
from .http.server import HttpServer

if TYPE_CHECKING:
    from .http.connection import Connection
    from .http.exchange import Exchange

__all__ = (
    "BUCKETS",
    "CONTENT_TYPE",
    "UNMATCHED",
    "Metrics",
    "MetricsListener",
    "asgi_route_label",
    "route_label",
)

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""The latency histogram's upper bounds in seconds (Prometheus' client libraries' defaults)."""

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

UNMATCHED: Final = "unmatched"
"""The route label of a request no route matched (404, 405): never the raw path."""

_CLASSES: Final = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def route_label(match_info: Any) -> str:
    """The route label of an aiohttp-interface request, from its match info (None: routing
    failed): its resource's pattern (``/users/{id}``), or ``unmatched`` (404, 405)."""
    if match_info is None:
        return UNMATCHED
    resource = match_info.route.resource  # (None for the 404/405 SystemRoute)
    return str(resource.canonical) if resource is not None else UNMATCHED


def asgi_route_label(scope: Any, status: int) -> str:
    """The route label of an ASGI request: the pattern of the route Starlette or FastAPI stored
    in the scope (``scope["route"].path``), else ``unmatched`` for a 404, else ``other``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return UNMATCHED if status == 404 else "other"


class Metrics:
    """One process's counts, and the servers whose connections its gauges read."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.buckets: dict[str, list[int]] = {}  # per route: counts per bucket, +Inf last
        self.sums: dict[str, float] = {}
        self.servers: list[HttpServer] = []

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request answered (``status`` 0: none was sent, counted as ``5xx``)."""
        key = (method, route, _CLASSES[status // 100] if 100 <= status < 600 else "5xx")
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        counts = self.buckets.get(route)
        if counts is None:
            counts = self.buckets[route] = [0] * (len(BUCKETS) + 1)
            self.sums[route] = 0.0
        counts[bisect_left(BUCKETS, seconds)] += 1
        self.sums[route] += seconds

    def render(self) -> str:
        """The exposition, in Prometheus' text format 0.0.4."""
        out: list[str] = []
        add = out.append
        add("# HELP squall_requests_total Requests answered, by method, route and status class.")
        add("# TYPE squall_requests_total counter")
        for (method, route, status), count in sorted(self.requests.items()):
            labels = f'method="{_escape(method)}",route="{_escape(route)}",status="{status}"'
            add(f"squall_requests_total{{{labels}}} {count}")
        add("# HELP squall_request_duration_seconds Time from a request's head to its response.")
        add("# TYPE squall_request_duration_seconds histogram")
        for route, counts in sorted(self.buckets.items()):
            label = f'route="{_escape(route)}"'
            total = 0
            for bound, count in zip((*BUCKETS, "+Inf"), counts, strict=True):
                total += count
                add(f'squall_request_duration_seconds_bucket{{{label},le="{bound}"}} {total}')
            add(f"squall_request_duration_seconds_sum{{{label}}} {self.sums[route]!r}")
            add(f"squall_request_duration_seconds_count{{{label}}} {total}")
        connections = [c for server in self.servers for c in server.connections]
        add("# HELP squall_requests_in_flight Requests being answered or queued.")
        add("# TYPE squall_requests_in_flight gauge")
        add(f"squall_requests_in_flight {sum(1 for c in connections if c.busy)}")
        add("# HELP squall_connections_open Open client connections.")
        add("# TYPE squall_connections_open gauge")
        add(f"squall_connections_open {len(connections)}")
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsListener:
    """Serves ``metrics`` at ``http://HOST:PORT/metrics`` (any other path: 404)."""

    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 9090) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.http: HttpServer | None = None
        self._listener: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.http = HttpServer(self._answer, limits=Limits(keepalive_timeout=5.0), loop=loop)
        self._listener = await loop.create_server(self.http, self.host, self.port)
        self.port = int(self._listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self.http is not None:
            await self.http.shutdown(1.0)
            self.http = None
        if listener is not None:
            await listener.wait_closed()

    async def _answer(self, raw: Exchange, conn: Connection) -> None:
        path = raw.target.partition(b"?")[0]
        if path != b"/metrics":
            raw.respond_error(404, "Not Found")
        elif raw.method not in ("GET", "HEAD"):
            raw.respond_error(405, "Method Not Allowed")
        else:
            raw.respond(200, None, CONTENT_TYPE, None, self.metrics.render().encode())
