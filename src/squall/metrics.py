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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from .http.limits import Limits
from .http.server import HttpServer
from .http.stats import KINDS

if TYPE_CHECKING:
    from .http.connection import Connection
    from .http.exchange import Exchange

__all__ = (
    "BUCKETS",
    "CONTENT_TYPE",
    "UNMATCHED",
    "Counts",
    "Metrics",
    "MetricsListener",
    "asgi_route_label",
    "family",
    "label",
    "render",
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
        self._received = 0  # the highest totals reported (see counters())
        self._sent = 0

    def watch(self, server: HttpServer) -> None:
        """Read ``server``'s connections and counts too (its closing connections then add
        their bytes to its totals)."""
        self.servers.append(server)
        server.count_bytes = True

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

    def counters(self) -> dict[str, Any]:
        """The counters as they stand, in the JSON-able form :meth:`Counts.add` takes."""
        errors = dict.fromkeys(KINDS, 0)
        received, sent = 0, 0
        for server in self.servers:
            for kind, count in server.errors.items():
                errors[kind] += count
            server_received, server_sent = server.wire_bytes()
            received += server_received
            sent += server_sent
        # A connection whose TCP_INFO could not be read at its close (a rare race) drops out of
        # the sum: never let the counter go back for that.
        self._received = received = max(received, self._received)
        self._sent = sent = max(sent, self._sent)
        return {
            "requests": [[*key, count] for key, count in self.requests.items()],
            "buckets": {route: list(counts) for route, counts in self.buckets.items()},
            "sums": dict(self.sums),
            "errors": errors,
            "received": received,
            "sent": sent,
        }

    def gauges(self) -> dict[str, int]:
        """The gauges, read now from the servers' connections."""
        connections = [c for server in self.servers for c in server.connections]
        return {
            "in_flight": sum(1 for c in connections if c.busy),
            "connections": len(connections),
            "websockets": sum(1 for c in connections if c.upgraded),
        }

    def snapshot(self) -> dict[str, Any]:
        """:meth:`counters` and :meth:`gauges` together (what a worker tells its supervisor)."""
        return {"counters": self.counters(), "gauges": self.gauges()}

    def render(self) -> str:
        """The exposition, in Prometheus' text format 0.0.4."""
        counts = Counts()
        counts.add(self.counters())
        return render(counts, self.gauges())


class Counts:
    """Counters summed over processes: the supervisor adds each worker's
    :meth:`Metrics.counters` (as it came over the channel, JSON) to one of these."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.errors: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.received = 0
        self.sent = 0

    def add(self, counters: dict[str, Any]) -> None:
        """Add ``counters`` (:meth:`Metrics.counters`' form)."""
        requests = self.requests
        for method, route, status, count in counters["requests"]:
            key = (str(method), str(route), str(status))
            requests[key] = requests.get(key, 0) + int(count)
        for route, counts in counts_items(counters["buckets"]):
            mine = self.buckets.setdefault(route, [0] * (len(BUCKETS) + 1))
            for i, count in enumerate(counts[: len(mine)]):
                mine[i] += int(count)
        for route, total in counters["sums"].items():
            self.sums[str(route)] = self.sums.get(str(route), 0.0) + float(total)
        for kind, count in counters["errors"].items():
            self.errors[str(kind)] = self.errors.get(str(kind), 0) + int(count)
        self.received += int(counters["received"])
        self.sent += int(counters["sent"])

    def copy(self) -> Counts:
        """A copy to add to (this one unchanged)."""
        other = Counts()
        other.requests = dict(self.requests)
        other.buckets = {route: list(counts) for route, counts in self.buckets.items()}
        other.sums = dict(self.sums)
        other.errors = dict(self.errors)
        other.received = self.received
        other.sent = self.sent
        return other


def counts_items(buckets: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """(route, counts) pairs of a ``buckets`` mapping as it came over the channel."""
    return [(str(route), list(counts)) for route, counts in buckets.items()]


def family(out: list[str], name: str, kind: str, text: str) -> None:
    """Append the ``# HELP`` and ``# TYPE`` lines of metric ``name`` to ``out``."""
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} {kind}")


def label(name: str, value: object) -> str:
    """``name="value"``, the value escaped as the text format wants."""
    return f'{name}="{_escape(str(value))}"'


def render(counts: Counts, gauges: dict[str, int], more: list[str] | None = None) -> str:
    """The exposition (text format 0.0.4) of ``counts``, the ``gauges`` of
    :meth:`Metrics.gauges` (summed, under a supervisor) and ``more`` lines after them."""
    out: list[str] = []
    add = out.append
    family(
        out,
        "squall_requests_total",
        "counter",
        "Requests answered, by method, route and status class.",
    )
    for (method, route, status), count in sorted(counts.requests.items()):
        labels = f'{label("method", method)},{label("route", route)},status="{status}"'
        add(f"squall_requests_total{{{labels}}} {count}")
    family(
        out,
        "squall_request_duration_seconds",
        "histogram",
        "Time from a request's head to its response.",
    )
    for route, bucket_counts in sorted(counts.buckets.items()):
        route_label = label("route", route)
        total = 0
        for bound, count in zip((*BUCKETS, "+Inf"), bucket_counts, strict=True):
            total += count
            add(f'squall_request_duration_seconds_bucket{{{route_label},le="{bound}"}} {total}')
        add(f"squall_request_duration_seconds_sum{{{route_label}}} {counts.sums.get(route, 0.0)!r}")
        add(f"squall_request_duration_seconds_count{{{route_label}}} {total}")
    family(out, "squall_requests_in_flight", "gauge", "Requests being answered or queued.")
    add(f"squall_requests_in_flight {gauges['in_flight']}")
    family(out, "squall_connections_open", "gauge", "Open client connections.")
    add(f"squall_connections_open {gauges['connections']}")
    family(
        out, "squall_websockets_open", "gauge", "Connections switched to the WebSocket protocol."
    )
    add(f"squall_websockets_open {gauges['websockets']}")
    family(
        out, "squall_received_bytes_total", "counter", "Bytes received from TCP clients (TCP_INFO)."
    )
    add(f"squall_received_bytes_total {counts.received}")
    family(
        out,
        "squall_sent_bytes_total",
        "counter",
        "Bytes sent to TCP clients and acknowledged (TCP_INFO).",
    )
    add(f"squall_sent_bytes_total {counts.sent}")
    family(
        out,
        "squall_http_errors_total",
        "counter",
        "Requests refused and connections given up, by kind.",
    )
    for kind, count in sorted(counts.errors.items()):
        add(f"squall_http_errors_total{{{label('kind', kind)}}} {count}")
    if more:
        out.extend(more)
    return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsListener:
    """Serves ``metrics`` at ``http://HOST:PORT/metrics`` (any other path: 404); or, given
    ``collect``, what it returns for each scrape (the supervisor's sum over its workers)."""

    def __init__(
        self,
        metrics: Metrics | None,
        host: str = "127.0.0.1",
        port: int = 9090,
        collect: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._collect = collect
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
            if self._collect is not None:
                text = await self._collect()
            else:
                assert self.metrics is not None
                text = self.metrics.render()
            if not raw.left:
                raw.respond(200, None, CONTENT_TYPE, None, text.encode())
