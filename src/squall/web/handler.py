"""The bridge from the wire to an Application: one coroutine per request.

``AppHandler(raw, conn)`` builds the Request, resolves the route, runs the composed middleware
chain and the handler, and writes the response. Every exception ends here as a response: an
HTTPException as itself, a broken body as 400, anything else as 500 with the traceback logged.
"""

from __future__ import annotations

import logging
import time
import warnings
from logging import INFO
from typing import TYPE_CHECKING, Final, cast

from .._mypyc import mypyc_attr
from ..http.eager import Awaiting
from ..http.errors import RequestPayloadError
from ..http.proxy import TrustedProxies, forwarding
from ..metrics import Metrics
from .exceptions import HTTPException, HTTPInternalServerError
from .matchinfo import _Matched
from .request import BaseRequest, Request, payload_error
from .resources import DynamicResource, PlainResource
from .response import Response, StreamResponse
from .routes import Handler

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..http.connection import Connection
    from ..http.exchange import Exchange, PlainHead
    from .access_log import AccessLogger
    from .app import Application
    from .matchinfo import UrlMappingMatchInfo
    from .routes import AbstractRoute

    # What a request target resolved to: (method, path, path for routing, the class of its
    # match info (which holds the route and the app), the matched variables, the composed
    # handler).
    Seen = tuple[str, str, str, Callable[..., UrlMappingMatchInfo], dict[str, str], Handler]

server_logger = logging.getLogger("squall.server")

# What the fast path below reads per request, Final: the compiled build holds them as C
# statics (a name imported from a Python module is looked up in the module dict each time).
_RESPONSE: Final = Response
_INFO: Final = INFO
# Compiled by mypyc (setup.py): then awaiting a coroutine goes through http/eager.py's Awaiting.
_COMPILED: Final = not __file__.endswith(".py")

# The targets whose resolution is remembered (see AppHandler._remember): at most this many, of
# at most this many bytes each, so a client sending endless distinct targets costs bounded memory;
# and when they were hardly asked for again, nothing new is remembered for this many requests.
SEEN_MAX: Final = 1024
SEEN_TARGET_MAX: Final = 256
SEEN_PAUSE: Final = 16 * SEEN_MAX


class PayloadAccessError(Exception):
    """Payload was accessed after response was sent (aiohttp's name; squall never raises it:
    a body read after the response gets what the handler left, then EOF)."""


@mypyc_attr(allow_interpreted_subclasses=True)
class AppHandler:
    """What :class:`~squall.http.HttpServer` calls for each request of one Application."""

    __slots__ = (
        "_access_log",
        "_app",
        "_awaiting",
        "_by_request",
        "_client_max_size",
        "_composed",
        "_log_cache",
        "_log_enabled",
        "_match_types",
        "_metrics",
        "_prepare_hooks",
        "_rememberable",
        "_router",
        "_seen",
        "_seen_hits",
        "_seen_pause",
        "_trusted",
        "auto_decompress",
    )

    def __init__(
        self,
        app: Application,
        access_log: AccessLogger | None = None,
        trusted_proxies: TrustedProxies | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._app = app
        self._metrics = metrics  # (squall/metrics.py; None: off)
        self._trusted = trusted_proxies
        self._client_max_size = app._client_max_size
        self._composed = app._composed  # (filled as routes are first used; never replaced)
        # The router itself, not a bound method: the compiled build calls it natively.
        self._router = app.router
        self._by_request = self._router._uses_request()  # (only a domain rule needs the request)
        self._seen: dict[bytes, Seen] = {}
        self._seen_hits = 0  # requests answered from _seen since it was last emptied
        self._seen_pause = 0  # requests left before remembering again
        self._match_types: dict[AbstractRoute, Callable[..., UrlMappingMatchInfo]] = {}
        # The routes whose answers are remembered: those of this application's own plain and
        # variable resources, once its router is frozen (nothing else then changes the answer).
        router = self._router
        self._rememberable: set[AbstractRoute] = (
            {
                route
                for resource in router._resources
                if type(resource) is PlainResource or type(resource) is DynamicResource
                for route in resource
            }
            if router._frozen and not self._by_request
            else set()
        )
        self._awaiting = Awaiting()  # (one loop runs all of this handler's requests)
        # False: request bodies are read as sent, Content-Encoding or not (aiohttp's
        # handler_args={"auto_decompress": False})
        self.auto_decompress = True
        self._access_log = access_log
        # AccessLogger.enabled without the property: the level is asked on every request ...
        logger = access_log.logger if access_log is not None else None
        self._log_enabled = logger.isEnabledFor if logger is not None else None
        # ... and the logger's own cache of that answer, read directly when the logger is a
        # plain Logger: a cached False is the answer whatever else holds, and a dict lookup
        # instead of a Python call on every request, with access logging off (the default).
        cache = getattr(logger, "_cache", None)
        plain = isinstance(logger, logging.Logger) and (
            type(logger).isEnabledFor is logging.Logger.isEnabledFor
        )
        self._log_cache: dict[int, bool] | None = cache if plain and type(cache) is dict else None
        # Signals are frozen with the app, so whether any on_response_prepare exists is fixed.
        self._prepare_hooks = any(a.on_response_prepare for a in app._with_subapps())

    async def __call__(self, raw: Exchange, conn: Connection) -> None:
        start = 0.0
        logged = False
        log_enabled = self._log_enabled
        if log_enabled is not None:
            log_cache = self._log_cache
            logged = (log_cache is None or log_cache.get(_INFO) is not False) and log_enabled(_INFO)
        if logged or self._metrics is not None:
            start = time.perf_counter()
        app = self._app
        request = Request(raw, conn, app, self._client_max_size)
        if self._trusted is not None:
            request._overrides = forwarding(self._trusted, conn.peername, raw.headers)
        if not self.auto_decompress:
            request._content = raw.body
        resp: StreamResponse | None = None
        try:
            handler: Handler | None = None
            if self._by_request:
                match_info = self._router._resolve_request(
                    raw.method, request._split_target(), request
                )
                match_info._root = app  # add_app(app) and freeze() in one store (matchinfo.py)
            else:
                seen = self._seen.get(raw.target)
                if seen is not None and seen[0] == raw.method:  # resolved before: no lookup
                    self._seen_hits += 1
                    _, request._path, request._path_safe_value, kind, values, handler = seen
                    # A copy of the variables (a match info is mutable), of the route's own
                    # class, which holds the route and the app (see _remember): no stores.
                    match_info = kind(values) if values else kind()
                else:
                    match_info = self._router._resolve(raw.method, request._split_target())
                    match_info._root = app  # (as above)
            request._match_info = match_info
            if raw.expect_continue:
                resp = await match_info.expect_handler(request)
            if resp is None:
                if handler is None:
                    route = match_info._route
                    handler = self._composed.get(route)
                    if handler is None:
                        handler = app._handler_for(match_info)
                    if route in self._rememberable:
                        self._remember(raw, request, route, match_info, handler)
                if _COMPILED:
                    awaiting = self._awaiting
                    awaiting.awaited = handler(request)
                    resp = await awaiting
                else:  # (the interpreter awaits a coroutine itself already)
                    resp = await handler(request)
        except HTTPException as exc:
            resp = exc
        except RequestPayloadError as exc:
            raw.keep_alive = False
            if raw.started:  # too late for an error answer: cut the response short
                return
            resp = payload_error(exc)
        except Exception as exc:  # the handler's own response could not be made
            raw.keep_alive = False
            app.logger.error("Error handling request", exc_info=exc)
            if raw.started:  # too late for a 500: cut the response short
                return
            resp = _internal_error(request)
        finally:
            if request._post is not None:  # post()'s temporary files: closed, as aiohttp
                request._close_files()
        try:
            if type(resp) is not _RESPONSE or self._prepare_hooks:
                resp = await self._send(request, resp)
            elif plain := resp._plain:  # the commonest answer: a 200 of a typed body alone
                # (here, not in a method of Response: one call less; see response.py)
                body = cast(bytes, resp._body)  # (never None while _plain)
                resp._req = request  # (no _exchange: only a response being written needs it)
                resp._eof_sent = True
                resp._body_length = len(body)
                raw.respond_plain(cast("PlainHead", plain), body)
            elif not resp._async_send:  # (prepared by the handler, or to be compressed)
                resp._send_whole(request)  # without another coroutine
            else:
                resp = await self._send(request, resp)
        except (ConnectionResetError, RequestPayloadError):
            raw.keep_alive = False
        except Exception as exc:
            server_logger.error("Error sending the response", exc_info=exc)
            if raw.fail():  # nothing sent (e.g. CR/LF in a header): answer 500, never split
                resp = _internal_error(request)
                resp._send_whole(request)
        if start:  # (the access log is on, or metrics are)
            elapsed = time.perf_counter() - start
            metrics = self._metrics
            if metrics is not None:
                label = metrics.label_of(request._match_info)
                metrics.observe(raw.method, label, raw.status, elapsed)
            access_log = self._access_log
            if logged and access_log is not None:
                access_log.log(request, resp, elapsed)

    def _remember(
        self,
        raw: Exchange,
        request: Request,
        route: AbstractRoute,
        values: dict[str, str],
        handler: Handler,
    ) -> None:
        """Remember what ``raw.target`` resolved to: ``route``, matching ``values``.

        A frozen router answers the same method and target the same way, so the next request
        for them skips decoding the path and the lookup (about a sixth of a request). Only
        routes of this application's own plain and variable resources are remembered: a
        sub-application, a static or a user-made resource goes through the router each time.

        Once SEEN_MAX targets are remembered, the memory starts afresh if they were asked for
        again at least as many times; else (most targets differ, as ``/users/{id}`` may) it
        stays as it is and nothing is added for the next SEEN_PAUSE requests that miss, so such
        traffic pays for the lookup in the memory, not for filling it.
        """
        seen = self._seen
        if len(seen) >= SEEN_MAX:
            if self._seen_pause:
                self._seen_pause -= 1
                if self._seen_pause:
                    return
            elif self._seen_hits < SEEN_MAX:
                self._seen_pause = SEEN_PAUSE
                return
            seen.clear()
            self._seen_hits = 0
        target = raw.target
        path = request._path
        path_safe = request._path_safe_value
        if len(target) > SEEN_TARGET_MAX or path is None or path_safe is None:
            return
        kind = self._match_types.get(route)
        if kind is None:
            # The match info of this route's requests: _Matched with the route and the root
            # app as class attributes (in place of the slots the router stores one by one).
            kind = type(
                "_Matched", (_Matched,), {"__slots__": (), "_route": route, "_root": self._app}
            )
            self._match_types[route] = kind
        seen[target] = (raw.method, path, path_safe, kind, dict(values), handler)

    async def _send(self, request: Request, resp: object) -> StreamResponse:
        if not isinstance(resp, StreamResponse):  # a 500, logged with aiohttp's words
            if resp is None:
                server_logger.error("Missing return statement on request handler")
            else:
                server_logger.error("Web-handler should return a response instance, got %r", resp)
            resp = HTTPInternalServerError()
        elif isinstance(resp, HTTPException) and resp.__traceback__ is None:  # returned, not raised
            warnings.warn(
                "returning HTTPException object is deprecated (#2415) and will be removed, "
                "please raise the exception instead",
                DeprecationWarning,
                stacklevel=1,
            )
        if resp._req is not None:  # prepared by the handler
            if not resp._eof_sent:
                await resp.write_eof()
            return resp
        rtype = type(resp)
        if not resp._async_send and (
            rtype is Response
            or (
                issubclass(rtype, HTTPException)
                and rtype.prepare is Response.prepare
                and rtype.write_eof is Response.write_eof
            )
        ):
            if self._prepare_hooks:
                await request._prepare_hook(resp)
            cast(Response, resp)._send_whole(request)
        else:
            await resp.prepare(request)
            await resp.write_eof()
        return resp


_TITLE = "500 Internal Server Error"
_TEXT_500 = f"{_TITLE}\n\nServer got itself in trouble"
_HTML_500 = (
    f"<html><head><title>{_TITLE}</title></head><body>\n<h1>{_TITLE}</h1>"
    "\nServer got itself in trouble\n</body></html>\n"
)


def _internal_error(request: BaseRequest) -> Response:
    """The 500 aiohttp answers when a handler fails: plain text, or HTML if the client wants it."""
    if "text/html" in request.headers.get("Accept", ""):
        resp = Response(status=500, text=_HTML_500, content_type="text/html")
    else:
        resp = Response(status=500, text=_TEXT_500)
    resp.force_close()
    return resp
