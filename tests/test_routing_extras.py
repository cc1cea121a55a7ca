"""Sub-applications, domains, named routes and url_for, router views, normalize_path_middleware.

Served by a real squall server and queried with httpx. ``SQUALL_REFERENCE=aiohttp`` runs the
same tests against aiohttp to check the assertions (as tests/test_web_api.py); the few places
where squall differs on purpose say so and are skipped there.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp.web as aiohttp_web
import httpx
import pytest

from squall import web as squall_web

from .conftest import ServerThread

REFERENCE = os.environ.get("SQUALL_REFERENCE") == "aiohttp"
web: Any = aiohttp_web if REFERENCE else squall_web

TIMEOUT = 5.0
NAME = web.AppKey("name", str)
LEVEL = web.AppKey("level", str)


class _Server(ServerThread):
    """The conftest server, with whichever framework ``web`` is."""

    async def serve(self, stop: asyncio.Event) -> None:
        runner = web.AppRunner(self.app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.port = runner.addresses[0][1]
        self.ready()
        await stop.wait()
        await runner.cleanup()


@contextlib.contextmanager
def serve_any(app: Any) -> Iterator[ServerThread]:
    server = _Server(app).start()
    try:
        yield server
    finally:
        server.stop()


def get(url: str, *, host: str | None = None, method: str = "GET") -> httpx.Response:
    headers = {"Host": host} if host else {}
    return httpx.request(method, url, headers=headers, timeout=TIMEOUT)


def named(name: str, **extra: Any) -> Any:
    app = web.Application(**extra)
    app[NAME] = name
    return app


async def describe(request: Any) -> Any:
    apps = ",".join(app[NAME] for app in request.match_info.apps)
    level = request.config_dict.get(LEVEL)
    return web.Response(text=f"{request.app[NAME]} [{apps}] level={level}")


# -- url_for and named resources ------------------------------------------------------------------


def test_url_for_plain_and_dynamic_with_query() -> None:
    app = web.Application()
    app.router.add_get("/plain", describe, name="plain")
    app.router.add_get(r"/users/{user}/posts/{post:\d+}", describe, name="post")
    app.router.add_get("/files/{path:.+}", describe, name="file")
    router = app.router
    assert str(router["plain"].url_for()) == "/plain"
    url = router["post"].url_for(user="a b", post="12").with_query(page=2, q="x y")
    assert str(url) == "/users/a%20b/posts/12?page=2&q=x+y"
    # a slash stays a slash, "+" stays "+", "%" and "?" are escaped (as aiohttp's url_for)
    assert str(router["file"].url_for(path="a/b+c%?.txt")) == "/files/a/b+c%25%3F.txt"
    assert str(router["post"].url_for(user="J\u00f6rg", post="1")) == "/users/J%C3%B6rg/posts/1"
    route = next(iter(router["post"]))
    assert str(route.url_for(user="u", post="3")) == "/users/u/posts/3"
    with pytest.raises(KeyError):
        router["post"].url_for(user="u")


def test_url_for_in_sub_applications_carries_the_prefixes() -> None:
    inner = web.Application()
    inner.router.add_get("/item/{id}", describe, name="item")
    inner.router.add_get("", describe, name="home")
    mid = web.Application()
    mid.router.add_get("/leaf", describe, name="leaf")
    mid.add_subapp("/inner", inner)
    root = web.Application()
    resource = root.add_subapp("/mid/", mid)
    assert str(mid.router["leaf"].url_for()) == "/mid/leaf"
    assert str(inner.router["item"].url_for(id="7").with_query(a="1")) == "/mid/inner/item/7?a=1"
    assert str(inner.router["home"].url_for()) == "/mid/inner"
    assert "leaf" not in root.router  # names stay with their own router
    assert resource.canonical == "/mid"
    assert resource.get_info() == {"app": mid, "prefix": "/mid"}
    with pytest.raises(RuntimeError, match="not supported by sub-application root"):
        resource.url_for()
    domain = root.add_domain("example.com", web.Application())
    with pytest.raises(RuntimeError):
        domain.url_for()


@pytest.mark.parametrize("name", ["a.b", "a-b", "a:b", "api.v1:item-get", "_x"])
def test_valid_route_names(name: str) -> None:
    app = web.Application()
    app.router.add_get("/", describe, name=name)
    assert name in app.router


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("class", "python keywords"),
        ("a.class", "python keywords"),
        ("a b", "sequence of python identifiers"),
        ("1a", "sequence of python identifiers"),
        ("a..b", "sequence of python identifiers"),
        ("", "sequence of python identifiers"),
    ],
)
def test_invalid_route_names(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        web.Application().router.add_get("/", describe, name=name)


def test_duplicate_route_name() -> None:
    app = web.Application()
    app.router.add_get("/a", describe, name="same")
    with pytest.raises(ValueError, match="Duplicate 'same'"):
        app.router.add_post("/b", describe, name="same")
    app.router.add_post("/a", describe, name="same")  # the same resource again: reused


def test_router_views() -> None:
    app = web.Application()
    app.router.add_get("/a", describe, name="a")
    app.router.add_post("/b/{x}", describe)
    sub = web.Application()
    sub.router.add_get("/c", describe)
    sub_resource = app.add_subapp("/sub", sub)
    router = app.router

    resources = router.resources()
    assert len(resources) == 3
    assert [r.canonical for r in resources] == ["/a", "/b/{x}", "/sub"]
    assert router["a"] in resources and sub_resource in resources
    router.add_get("/late", describe)
    assert len(resources) == 4  # a view of the router, not a copy

    routes = router.routes()
    assert [route.method for route in routes] == [
        "HEAD",
        "GET",
        "POST",
        "HEAD",
        "GET",
        "HEAD",
        "GET",
    ]
    assert next(iter(router["a"])) in routes
    assert len(sub_resource) == 2 and list(sub_resource) == list(sub.router.routes())

    names = router.named_resources()
    assert dict(names) == {"a": router["a"]}
    with pytest.raises(TypeError):
        names["b"] = router["a"]  # type: ignore[index]
    assert len(router) == 1 and list(router) == ["a"] and "a" in router


# -- serving sub-applications ---------------------------------------------------------------------


def test_sub_application_routes_404_405_and_current_app() -> None:
    root = named("root")
    root[LEVEL] = "root"
    root.router.add_get("/", describe)
    root.router.add_get("/{a}/{b}", describe)
    sub = named("sub")
    sub[LEVEL] = "sub"
    sub.router.add_get("", describe)
    sub.router.add_get("/x", describe)
    sub.router.add_post("/form", describe)
    inner = named("inner")
    inner.router.add_get("/deep", describe)
    sub.add_subapp("/in", inner)
    root.add_subapp("/sub", sub)
    with serve_any(root) as srv:
        assert get(srv.url + "/").text == "root [root] level=root"
        assert get(srv.url + "/sub").text == "sub [root,sub] level=sub"
        assert get(srv.url + "/sub/x").text == "sub [root,sub] level=sub"
        assert get(srv.url + "/sub/in/deep").text == "inner [root,sub,inner] level=sub"
        assert get(srv.url + "/subx/y").text == "root [root] level=root"
        # the sub-application's answer is final: its 404 hides the root's /{a}/{b}
        assert get(srv.url + "/sub/nothing").status_code == 404
        r = get(srv.url + "/sub/form")
        assert r.status_code == 405 and r.headers["Allow"] == "POST"
        assert get(srv.url + "/sub/x", method="HEAD").status_code == 200


def test_the_match_info_a_handler_sees_is_frozen_with_its_app_stack() -> None:
    async def inspect(request: Any) -> Any:
        info = request.match_info
        try:
            info.add_app(request.app)
            frozen = "no"
        except RuntimeError:
            frozen = "yes"
        names = ",".join(app[NAME] for app in info.apps)
        return web.Response(text=f"{info.current_app[NAME]} [{names}] frozen={frozen}")

    root = named("root")
    root.router.add_get("/here", inspect)
    sub = named("sub")
    sub.router.add_get("/here", inspect)
    root.add_subapp("/sub", sub)
    with serve_any(root) as srv:
        for _ in range(2):  # (the second time, the route's composed handler is cached)
            assert get(srv.url + "/here").text == "root [root] frozen=yes"
            assert get(srv.url + "/sub/here").text == "sub [root,sub] frozen=yes"


def test_middlewares_of_sub_applications_run_after_the_parents() -> None:
    trail: list[str] = []

    def mw(tag: str) -> Any:
        @web.middleware
        async def middleware(request: Any, handler: Any) -> Any:
            trail.append(f"{tag}:{request.app[NAME]}:{request.config_dict.get(LEVEL)}")
            try:
                return await handler(request)
            finally:
                trail.append(f"/{tag}:{request.app[NAME]}")

        return middleware

    root = named("root", middlewares=[mw("r1"), mw("r2")])
    root[LEVEL] = "root"
    sub = named("sub", middlewares=[mw("s1")])
    sub[LEVEL] = "sub"
    # one handler on routes of both apps: each route keeps its own middleware chain
    root.router.add_get("/same", describe)
    sub.router.add_get("/same", describe)
    root.add_subapp("/sub", sub)
    with serve_any(root) as srv:
        assert get(srv.url + "/sub/same").text == "sub [root,sub] level=sub"
        assert trail == [
            "r1:root:root",
            "r2:root:root",
            "s1:sub:sub",
            "/s1:sub",
            "/r2:root",
            "/r1:root",
        ]
        trail.clear()
        assert get(srv.url + "/same").text == "root [root] level=root"
        assert trail == ["r1:root:root", "r2:root:root", "/r2:root", "/r1:root"]
        trail.clear()
        assert get(srv.url + "/sub/missing").status_code == 404
        assert trail[2] == "s1:sub:sub"  # a sub-application's 404 passes its middlewares


def test_on_response_prepare_of_a_sub_application() -> None:
    async def stamp(request: Any, response: Any) -> None:
        response.headers["X-Prepared-By"] = request.app[NAME]

    sub = named("sub")
    sub.on_response_prepare.append(stamp)
    sub.router.add_get("/x", describe)
    root = named("root")
    root.router.add_get("/x", describe)
    root.add_subapp("/sub", sub)
    with serve_any(root) as srv:
        assert get(srv.url + "/sub/x").headers["X-Prepared-By"] == "sub"
        assert "X-Prepared-By" not in get(srv.url + "/x").headers


def test_sub_application_signals_and_cleanup_ctx_run_with_the_parents() -> None:
    events: list[str] = []

    def hook(label: str) -> Any:
        async def cb(app: Any) -> None:
            events.append(f"{label}:{app[NAME]}")

        return cb

    async def ctx(app: Any) -> AsyncIterator[None]:
        events.append(f"enter:{app[NAME]}")
        yield
        events.append(f"exit:{app[NAME]}")

    def app_with_hooks(name: str) -> Any:
        app = named(name)
        app.cleanup_ctx.append(ctx)
        app.on_startup.append(hook("startup"))
        app.on_shutdown.append(hook("shutdown"))
        app.on_cleanup.append(hook("cleanup"))
        app.router.add_get("/", describe)
        return app

    inner = app_with_hooks("inner")
    sub = app_with_hooks("sub")
    sub.add_subapp("/in", inner)
    root = app_with_hooks("root")
    root.add_subapp("/sub", sub)
    root.on_startup.append(hook("late-startup"))
    with pytest.raises(RuntimeError):
        sub.on_startup.append(hook("too late"))  # frozen once added
    with serve_any(root) as srv:
        assert get(srv.url + "/sub/in/").text == "inner [root,sub,inner] level=None"
        assert events == [
            "enter:root",
            "startup:root",
            "enter:sub",
            "startup:sub",
            "enter:inner",
            "startup:inner",
            "late-startup:root",
        ]
        events.clear()
    assert events == [
        "shutdown:root",
        "shutdown:sub",
        "shutdown:inner",
        "exit:root",
        "cleanup:root",
        "exit:sub",
        "cleanup:sub",
        "exit:inner",
        "cleanup:inner",
    ]
    assert sub.frozen and inner.frozen


def test_add_subapp_and_add_domain_errors() -> None:
    root = web.Application()
    with pytest.raises(TypeError, match="Prefix must be str"):
        root.add_subapp(5, web.Application())
    for prefix in ("", "/", "//"):
        with pytest.raises(ValueError, match="Prefix cannot be empty"):
            root.add_subapp(prefix, web.Application())
    with pytest.raises(TypeError, match="Domain must be str"):
        root.add_domain(5, web.Application())
    for domain, message in [
        ("", "cannot be empty"),
        ("http://example.com", "Scheme not supported"),
        ("-a.com", "not valid"),
        ("a..com", "not valid"),
        ("a_b.com", "not valid"),
    ]:
        with pytest.raises(ValueError, match=message):
            root.add_domain(domain, web.Application())
    frozen = web.Application()
    frozen.freeze()
    with pytest.raises(RuntimeError, match="Cannot add frozen application"):
        root.add_subapp("/f", frozen)
    sub = web.Application()
    root.add_subapp("/sub", sub)
    with pytest.raises(RuntimeError):  # the sub-application's router is frozen now
        sub.add_subapp("/late", web.Application())
    root.freeze()
    with pytest.raises(RuntimeError, match="Cannot add sub application to frozen application"):
        root.add_subapp("/x", web.Application())


@pytest.mark.skipif(REFERENCE, reason="aiohttp accepts it and prefixes the routes again")
def test_a_sub_application_is_added_once() -> None:
    sub = web.Application()
    sub.router.add_get("/x", describe, name="x")
    web.Application().add_subapp("/a", sub)
    with pytest.raises(RuntimeError, match="twice"):
        web.Application().add_subapp("/b", sub)
    assert str(sub.router["x"].url_for()) == "/a/x"
    app = web.Application()
    with pytest.raises(RuntimeError):
        app.add_subapp("/self", app)


# -- domains --------------------------------------------------------------------------------------


def test_domain_sub_applications() -> None:
    root = named("root")
    root.router.add_get("/", describe)
    root.router.add_get("/only-root", describe)
    wild = named("wild")
    wild.router.add_get("/", describe)
    exact = named("exact")
    exact.router.add_get("/", describe)
    ported = named("ported")
    ported.router.add_get("/", describe)
    root.add_domain("*.wild.test", wild)
    root.add_domain("Exact.Test.", exact)
    root.add_domain("ported.test:8080", ported)
    with serve_any(root) as srv:
        url = srv.url + "/"
        assert get(url).text.startswith("root ")
        assert get(url, host="a.wild.test").text == "wild [root,wild] level=None"
        assert get(url, host="a.b.wild.test:9000").text.startswith("wild ")
        assert get(url, host="A.WILD.TEST").text.startswith("wild ")
        assert get(url, host="wild.test").text.startswith("root ")
        assert get(url, host="exact.test").text.startswith("exact ")
        assert get(url, host="exact.test:1234").text.startswith("exact ")
        assert get(url, host="sub.exact.test").text.startswith("root ")
        assert get(url, host="ported.test:8080").text.startswith("ported ")
        assert get(url, host="ported.test").text.startswith("root ")
        # a matching domain owns every path: its 404 is final
        assert get(srv.url + "/only-root", host="a.wild.test").status_code == 404


@pytest.mark.skipif(REFERENCE, reason="aiohttp raises KeyError prefixing an add_domain resource")
def test_domain_rule_inside_a_prefixed_sub_application() -> None:
    inner = named("inner")
    inner.router.add_get("/", describe)
    mid = named("mid")
    mid.router.add_get("/", describe)
    mid.add_domain("inner.test", inner)
    root = named("root")
    root.add_subapp("/mid", mid)
    with serve_any(root) as srv:
        assert get(srv.url + "/mid/", host="inner.test").text == "inner [root,mid,inner] level=None"
        assert get(srv.url + "/mid/", host="other.test").text == "mid [root,mid] level=None"


@pytest.mark.skipif(REFERENCE, reason="squall's routing is synchronous: a rule may not suspend")
def test_custom_rule_matching() -> None:
    from squall.web.subapps import AbstractRuleMatching, MatchedSubAppResource

    class HeaderRule(AbstractRuleMatching):
        def __init__(self, wait: bool) -> None:
            self._wait = wait

        async def match(self, request: Any) -> bool:
            if self._wait:
                await asyncio.sleep(0)
            return request.headers.get("X-Tenant") == "blue"

        def get_info(self) -> dict[str, Any]:
            return {}

        @property
        def canonical(self) -> str:
            return "x-tenant"

    blue = named("blue")
    blue.router.add_get("/", describe)
    root = named("root")
    root.router.add_get("/", describe)
    root.router.register_resource(MatchedSubAppResource(HeaderRule(wait=False), blue))
    with serve_any(root) as srv:
        r = httpx.get(srv.url + "/", headers={"X-Tenant": "blue"}, timeout=TIMEOUT)
        assert r.text == "blue [root,blue] level=None"
        assert httpx.get(srv.url + "/", timeout=TIMEOUT).text.startswith("root ")

    slow = named("slow")
    root = web.Application()
    root.router.register_resource(MatchedSubAppResource(HeaderRule(wait=True), slow))
    with serve_any(root) as srv:
        assert httpx.get(srv.url + "/", timeout=TIMEOUT).status_code == 500


def test_domain_rules() -> None:
    from squall.web.subapps import Domain, MaskDomain

    assert Domain("Example.COM.").canonical == "example.com"
    assert Domain("example.com:80").canonical == "example.com"
    assert Domain("example.com:8080").canonical == "example.com:8080"
    assert Domain("b\u00fccher.example").canonical == "xn--bcher-kva.example"
    assert Domain("example.com").match_domain("EXAMPLE.com:5")
    assert not Domain("example.com:8080").match_domain("example.com")
    mask = MaskDomain("*.example.com")
    assert mask.canonical == r"[^:]*\.example\.com(:.*)?"
    assert mask.match_domain("a.b.example.com") and not mask.match_domain("example.com")
    assert not MaskDomain("*.example.com:81").match_domain("a.example.com:82")


# -- resolve, config_dict -------------------------------------------------------------------------


def test_router_resolve_and_resource_resolve() -> None:
    seen: dict[str, Any] = {}

    async def probe(request: Any) -> Any:
        router = request.match_info.apps[0].router  # the root's
        for path in ("/sub/x", "/sub/none", "/probe"):
            match_info = await router.resolve(request.clone(rel_url=path))
            seen[path] = (match_info.http_exception, [a[NAME] for a in match_info.apps])
        resource = request.match_info.route.resource
        match_info, allowed = await resource.resolve(request)
        seen["resource"] = (match_info.route is request.match_info.route, sorted(allowed))
        config = request.config_dict
        seen["config"] = (config[NAME], len(config), list(config), NAME in config, bool(config))
        return web.Response(text="ok")

    sub = named("sub")
    sub.router.add_get("/x", probe)
    root = named("root")
    root[LEVEL] = "root"
    root.router.add_get("/probe", probe)
    root.add_subapp("/sub", sub)
    with serve_any(root) as srv:
        assert get(srv.url + "/sub/x").text == "ok"
    assert seen["/sub/x"] == (None, ["sub"])  # the sub-application adds itself, not the caller
    assert seen["/sub/none"][0].status == 404
    assert seen["/probe"] == (None, [])  # nothing added yet: the caller adds its app
    assert seen["resource"] == (True, ["GET", "HEAD"])
    assert seen["config"] == ("sub", 2, [NAME, LEVEL], True, True)


# -- normalize_path_middleware --------------------------------------------------------------------


def test_normalize_path_middleware() -> None:
    app = web.Application(middlewares=[web.normalize_path_middleware()])
    app.router.add_get("/a/", describe)
    app.router.add_get("/b/c/", describe)
    with serve_any(app) as srv:
        r = get(srv.url + "/a?x=1&y=%20")
        assert (r.status_code, r.headers["Location"]) == (308, "/a/?x=1&y=%20")
        r = httpx.get(srv.url + "//b//c?q", timeout=TIMEOUT)
        assert (r.status_code, r.headers["Location"]) == (308, "/b/c/?q")
        assert get(srv.url + "/zzz").status_code == 404
    with pytest.raises(AssertionError):
        web.normalize_path_middleware(append_slash=True, remove_slash=True)


@pytest.mark.skipif(REFERENCE, reason="aiohttp also cuts a last character that is not a slash")
def test_remove_slash_only_removes_slashes() -> None:
    middleware = web.normalize_path_middleware(append_slash=False, remove_slash=True)
    app = web.Application(middlewares=[middleware])
    app.router.add_get("/item", describe)
    with serve_any(app) as srv:
        r = get(srv.url + "/item/")
        assert (r.status_code, r.headers["Location"]) == (308, "/item")
        assert get(srv.url + "/itemx").status_code == 404  # aiohttp: 308 to /item


def test_empty_path_is_the_root_or_the_prefix() -> None:
    sub = web.Application()
    sub.router.add_get("", describe, name="home")
    root = named("root")
    root.router.add_get("", describe, name="home")
    root.add_subapp("/sub", sub)
    with serve_any(root) as srv:
        assert get(srv.url + "/").text == "root [root] level=None"
        assert str(root.router["home"].url_for()) == "/"
        assert str(sub.router["home"].url_for()) == "/sub"


# -- variable routes ------------------------------------------------------------------------------

VARIABLE_ROUTES = {
    "/p1/{x}": [("/p1/abc", {"x": "abc"}), ("/p1/", None), ("/p1/a/b", None)],
    "/p2/{x}/b/{y}": [("/p2/1/b/2", {"x": "1", "y": "2"}), ("/p2/1/b/", None), ("/p2/1/c/2", None)],
    "/p3/{id}/": [("/p3/7/", {"id": "7"}), ("/p3/7", None), ("/p3//", None)],
    "/p4/{a}/x{b}": [("/p4/q/xr", {"a": "q", "b": "r"}), ("/p4/q/x", None), ("/p4/q/yr", None)],
    "/p5/{x}.json": [
        ("/p5/f.json", {"x": "f"}),
        ("/p5/f.j.json", {"x": "f.j"}),
        ("/p5/.json", None),
    ],
    r"/p6/{x:\d+}": [("/p6/12", {"x": "12"}), ("/p6/1a", None)],
    "/p7/{x}": [
        ("/p7/a%2Fb", {"x": "a/b"}),  # an encoded slash stays in its variable
        ("/p7/caf%C3%A9", {"x": "café"}),
        ("/p7/100%25", {"x": "100%"}),
        ("/p7/%7Bx%7D", None),  # braces never match a plain variable
    ],
}


def test_variable_routes_match_as_aiohttps() -> None:
    """What each kind of variable route matches (squall searches plain ``{name}`` paths without
    the regex: the answers must be the regex's)."""

    async def values(request: Any) -> Any:
        return web.json_response(dict(request.match_info))

    app = web.Application()
    for route in VARIABLE_ROUTES:
        app.router.add_get(route, values)
    with serve_any(app) as srv:
        for cases in VARIABLE_ROUTES.values():
            for path, expected in cases:
                r = get(srv.url + path)
                got = r.json() if r.status_code == 200 else r.status_code
                assert got == (expected if expected is not None else 404), path


@pytest.mark.skipif(REFERENCE, reason="squall's own matcher against its own regex")
def test_plain_variables_found_by_search_as_by_the_regex() -> None:
    import random

    from squall.web.resources import DynamicResource

    async def handler(request: Any) -> Any: ...

    shapes = ["/{n}", "/a/{x}/b", "/a/{x}/b/{y}", "/{x}/{y}", "/u/{id}/", "/{a}/x{b}", "/é/{a}"]
    pieces = ["/", "a", "b", "x", "y", "{", "}", ".", "%2F", "%25", "é", " ", "1", "u", ""]
    rng = random.Random(4)
    for shape in shapes:
        resource = DynamicResource(shape)
        resource.add_route("GET", handler)
        assert resource._split is not None, shape  # (the shapes the search decides)
        for _ in range(3000):
            path = "/" + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
            match = resource._pattern.fullmatch(path)
            regex = None if match is None else match.groupdict()
            if regex is not None and "%" in path:
                regex = {k: v.replace("%2F", "/").replace("%25", "%") for k, v in regex.items()}
            info, _ = resource._resolve("GET", path)
            assert (None if info is None else dict(info)) == regex, (shape, path)


def test_a_middleware_sees_the_wrapped_handlers_name_and_attributes() -> None:
    # functools.update_wrapper on each link of the chain, as aiohttp's partial: decorators that
    # mark handlers (login_required = True, ...) are read by middlewares through `handler`.
    async def marked(request: Any) -> Any:
        return web.Response(text="marked")

    marked.public = True  # type: ignore[attr-defined]
    seen: list[tuple[str, str, object, bool]] = []

    def mw(label: str) -> Any:
        @web.middleware
        async def middleware(request: Any, handler: Any) -> Any:
            seen.append(
                (
                    label,
                    handler.__name__,
                    getattr(handler, "public", None),
                    inspect.unwrap(handler) is marked,
                )
            )
            return await handler(request)

        return middleware

    app = web.Application(middlewares=[mw("outer"), mw("inner")])
    app.router.add_get("/marked", marked)
    with serve_any(app) as srv:
        for _ in range(2):
            assert get(srv.url + "/marked").text == "marked"
    assert seen == [("outer", "marked", True, True), ("inner", "marked", True, True)] * 2
