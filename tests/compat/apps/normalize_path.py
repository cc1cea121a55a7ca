"""normalize_path_middleware: appended and merged slashes, the query kept, removed slashes in a
sub-application, other redirect classes, and the requests it must leave alone."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get, send


def make_app(web: Any) -> Any:
    async def echo(request: Any) -> Any:
        resources = len(request.app.router.resources())
        return web.Response(text=f"{request.method} {request.raw_path} {resources}")

    root = web.Application(middlewares=[web.normalize_path_middleware()])
    root.router.add_get("/a/", echo)
    root.router.add_get("/b", echo)
    root.router.add_get("/c/d/", echo)
    root.router.add_get("/a b/", echo)
    root.router.add_get("/user/{name}/", echo)
    root.router.add_post("/form/", echo)

    removing = web.Application(
        middlewares=[
            web.normalize_path_middleware(
                append_slash=False, remove_slash=True, redirect_class=web.HTTPMovedPermanently
            )
        ]
    )
    removing.router.add_get("", echo)
    removing.router.add_get("/x", echo)
    root.add_subapp("/rm", removing)

    unmerged = web.Application(
        middlewares=[
            web.normalize_path_middleware(merge_slashes=False, redirect_class=web.HTTPFound)
        ]
    )
    unmerged.router.add_get("/y/", echo)
    root.add_subapp("/nm", unmerged)
    return root


REQUESTS: list[Req] = [
    get("/a"),
    get("/a?x=1&y=a%20b", note="query kept"),
    get("/a/"),
    get("//a", note="leading double slash"),
    get("/a//", note="trailing double slash"),
    get("//c//d", note="merge and append"),
    get("/c//d/", note="merge only"),
    get("/b"),
    get("/b/", note="no route without slash is not invented"),
    get("/b//", note="merged b/ does not resolve"),
    get("/a%20b", note="encoded space"),
    get("/user/bob", note="dynamic with slash"),
    get("/user/bob?q=%2F", note="dynamic with query"),
    get("/zzz", note="nothing resolves"),
    get("///evil.example/", note="no open redirect"),
    send("HEAD", "/a"),
    send("POST", "/a", note="POST resolves only as 405"),
    send("POST", "/form", note="POST redirect"),
    send("PUT", "/b", note="405 is left alone when nothing else resolves"),
    get("/rm/x/", note="remove slash in sub-app"),
    get("/rm/x//?q=1", note="merge and remove"),
    get("/rm/", note="sub-app root without slash"),
    get("/rm/y", note="sub-app 404"),
    get("/nm/y", note="append without merge"),
    get("/nm//y", note="no merge"),
    get("/nm//y/", note="no merge slash present"),
]
