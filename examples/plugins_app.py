"""A typical aiohttp application with three plugins: aiohttp-session, aiohttp-cors, aiohttp-jinja2.

Plain aiohttp code (``from aiohttp import web``), which squall runs unchanged:

    python examples/plugins_app.py [PORT]                      # on aiohttp
    python -m squall.as_aiohttp examples/plugins_app.py [PORT]  # on squall
    cd examples && squall --as-aiohttp plugins_app:create_app --factory

Routes: ``/`` a page rendered by Jinja2 that counts your visits in an encrypted session cookie;
``/api/visits`` the same count as JSON, open to cross-origin requests from ORIGIN (CORS, with
credentials); ``/{name}`` the seed's hello, which passes through the session middleware like
every request. The session key comes from SESSION_KEY (a Fernet key) or is made at start-up.
Needs ``pip install aiohttp-session[secure] aiohttp-cors aiohttp-jinja2``.
"""

import os
import sys

import aiohttp_cors
import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography import fernet

ORIGIN = "https://app.example.com"

TEMPLATES = {
    "index.html": (
        "<!doctype html>\n"
        "<title>{{ title }}</title>\n"
        "<h1>Hello, {{ name }}!</h1>\n"
        "<p>Visits in this session: {{ visits }}</p>\n"
    ),
}


async def hello(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "Anonymous")
    return web.Response(text=f"Hello, {name}!")


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, object]:
    session = await get_session(request)
    session["visits"] = session.get("visits", 0) + 1
    name = request.query.get("name", "visitor")
    return {"title": "plugins app", "name": name, "visits": session["visits"]}


async def visits(request: web.Request) -> web.Response:
    session = await get_session(request)
    return web.json_response({"visits": session.get("visits", 0)})


async def forget(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.invalidate()
    return web.json_response({"visits": 0})


def create_app() -> web.Application:
    app = web.Application()
    key = os.environ.get("SESSION_KEY") or fernet.Fernet.generate_key().decode()
    setup_session(app, EncryptedCookieStorage(key, cookie_name="PLUGINS_SESSION"))
    aiohttp_jinja2.setup(app, loader=jinja2.DictLoader(TEMPLATES))
    app.router.add_get("/", index)
    api = app.router.add_resource("/api/visits")
    api_routes = [api.add_route("GET", visits), api.add_route("DELETE", forget)]
    app.router.add_get("/{name}", hello)

    cors = aiohttp_cors.setup(
        app,
        defaults={
            ORIGIN: aiohttp_cors.ResourceOptions(
                allow_credentials=True, expose_headers="*", allow_headers="*", max_age=600
            )
        },
    )
    for route in api_routes:
        cors.add(route)
    return app


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    web.run_app(create_app(), host="127.0.0.1", port=port, access_log=None)
