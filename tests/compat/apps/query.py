"""Query strings: repeated keys, encoded characters, blanks, plus signs, odd forms."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get


def make_app(web: Any) -> Any:
    async def show(request: Any) -> Any:
        q = request.query
        lines = [f"qs={request.query_string!r}"]
        lines += [f"{k!r}={v!r}" for k, v in q.items()]
        lines.append(f"tags={q.getall('tag', [])!r}")
        lines.append(f"first={q.get('tag')!r} n={len(q)} keys={sorted(set(q.keys()))!r}")
        return web.Response(text="\n".join(lines))

    async def url(request: Any) -> Any:
        return web.Response(
            text=f"{request.path_qs}\n{request.rel_url}\n{request.url.query_string}\n"
            f"{request.raw_path}"
        )

    async def page(request: Any) -> Any:
        try:
            number = int(request.query.get("page", "1"))
        except ValueError:
            raise web.HTTPBadRequest(text="page must be a number") from None
        return web.json_response({"page": number, "sort": request.query.get("sort", "id")})

    app = web.Application()
    app.router.add_get("/q", show)
    app.router.add_get("/url", url)
    app.router.add_get("/page", page)
    return app


REQUESTS: list[Req] = [
    get("/q"),
    get("/q?"),
    get("/q?a=1"),
    get("/q?tag=x&tag=y&tag=z"),
    get("/q?tag=x&a=1&tag=y", note="interleaved repeats"),
    get("/q?a=hello%20world&b=hello+world", note="space encodings"),
    get("/q?a=%2B%26%3D%23", note="encoded reserved"),
    get("/q?name=J%C3%B6rg", note="utf8"),
    get("/q?a&b=&c=1", note="blank values"),
    get("/q?a=1&&b=2", note="empty pair"),
    get("/q?a=1;b=2", note="semicolon"),
    get("/q?%61=1", note="encoded key"),
    get("/q?a=%zz", note="bad percent"),
    get("/q?a=%C3", note="truncated utf8"),
    get("/q?a==b", note="double equals"),
    get("/q?=x", note="empty key"),
    get("/url?x=1&y=%20"),
    get("/url?a=%2f", note="encoded slash in query"),
    get("/page?page=3&sort=name"),
    get("/page?page=three", note="bad page"),
    get("/page?page=2&page=5", note="repeated page takes first"),
]
