"""Instructions per request on the in-process hot path, counted by valgrind (callgrind).

Wall-clock timings on a shared virtual machine move by 10-20% from minute to minute; the number
of instructions a request executes does not (with a fixed hash seed, it repeats to within a few
instructions). So a hot-path change of 1-2% shows here where ``inprocess.py`` cannot see it:

    python benchmarks/instructions.py [seed|names|json|browser|floor|plugins|seed-aiohttp|
                                       plugins-aiohttp|ws|ws-asgi|ws-floor]
                                      [--python PY] [--path DIR] [--access-log] [--metrics]

It runs ``inprocess.py``'s requests through ``HttpProtocol.data_received`` twice under
callgrind, N1 and N2 times, and prints (I(N2) - I(N1)) / (N2 - N1): start-up cancels out.
``names`` is the seed request with a new target each time (so the handler's memory of resolved
targets never finds one: its worst case). ``floor`` counts the same hello request through the
floor server's Protocol (``servers/floor.py``): the user-space budget squall's request is
measured against.
``plugins`` is the seed request to ``examples/plugins_app.py`` (aiohttp-session's encrypted
cookie middleware, aiohttp-cors's on_response_prepare receiver, aiohttp-jinja2) loaded under
``squall.install_as_aiohttp()``, with the access log off as its ``run_app`` has it.
``seed-aiohttp`` and ``plugins-aiohttp`` count the seed app (``servers/aiohttp_seed.py``) and
the plugins app on aiohttp itself (the installed aiohttp; ``--path`` does not apply), through
its ``RequestHandler.data_received``: aiohttp answers in the connection's task, so each answer
written schedules the next request with ``call_soon``, as a read would; its counts include that
loop callback and the task's wake-up, which squall's in-place step does not need.
``--access-log`` turns the default access log on (the default line, written to /dev/null, as
the command line configures it); ``--metrics`` turns Prometheus metrics on (``metrics_port=0``).
``ws``, ``ws-asgi`` and ``ws-floor`` count one WebSocket echo instead (a masked 32-byte binary
frame in, the echo out; ``run.py``'s ``ws_32b_64`` per message): through a handshaken
``WebSocketResponse`` (``servers/ws_squall.py``'s handler), the ASGI app of ``servers/ws_asgi.py``,
or the bare floor Protocol (``servers/ws_floor.py``), on uvloop. ``ws-deflate`` echoes
``ws_load.py``'s permessage-deflate messages instead (1 KiB JSON texts, a pool sent in turn, on
``/deflate``), as ``run.py``'s ``ws_1k_deflate_64`` does. Each echo's write schedules the
next frame's ``data_received`` with ``call_soon``, as the loop calls it on a read; so a message
costs the floor one loop callback, and squall that and the wake-up of the handler's task.
``--path`` puts a directory first on PYTHONPATH (``src`` for the pure-Python build, or another
install to compare). Needs valgrind (Debian: ``apt-get install valgrind``); ~30 s a run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

DRIVER = """
import asyncio, logging, os, sys, uvloop
sys.path.insert(0, {here!r})
import inprocess
import squall
from squall import web

async def main(which, count, access_log, metrics):
    options = {{}}
    if which == "plugins":  # examples/plugins_app.py through the alias, as run_app runs it there
        squall.install_as_aiohttp()
        sys.path.insert(0, {examples!r})
        import plugins_app
        app = plugins_app.create_app()
        options["access_log"] = None
        which = "seed"
    else:
        app = web.Application()
        app.add_routes(
            [web.get("/json", inprocess.json_handle), web.get("/{{name}}", inprocess.handle)]
        )
    if access_log:
        logger = logging.getLogger("squall.access")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        handler = logging.StreamHandler(open(os.devnull, "w"))
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s: %(message)s"))
        logger.addHandler(handler)
    if metrics:
        options["metrics_port"] = 0
    runner = web.AppRunner(app, **options)
    await runner.setup()
    proto = runner.server()
    proto.connection_made(inprocess.FakeTransport())
    # names: the seed request with a new name each time (made beforehand, as many for any count)
    names = [b"GET /n%d HTTP/1.1\\r\\nHost: 127.0.0.1:8080\\r\\n\\r\\n" % i for i in range(20000)]
    data = {{
        "seed": b"GET /World HTTP/1.1\\r\\nHost: 127.0.0.1:8080\\r\\n\\r\\n",
        "json": b"GET /json HTTP/1.1\\r\\nHost: 127.0.0.1:8080\\r\\n\\r\\n",
        "browser": inprocess.BROWSER_GET,
        "names": None,
    }}[which]
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def run():  # from a plain loop callback, as the loop calls data_received
        if data is None:
            for i in range(count):
                proto.data_received(names[i])
        else:
            for _ in range(count):
                proto.data_received(data)
        done.set_result(None)

    loop.call_soon(run)
    await done
    await runner.cleanup()

uvloop.run(main(sys.argv[1], int(sys.argv[2]), "log" in sys.argv[3:], "metrics" in sys.argv[3:]))
"""

FLOOR_DRIVER = """
import sys
sys.path[:0] = [{here!r}, {servers!r}]
import floor, inprocess

proto = floor.Floor()
proto.connection_made(inprocess.FakeTransport())
data = b"GET /World HTTP/1.1\\r\\nHost: 127.0.0.1:8080\\r\\n\\r\\n"
for _ in range(int(sys.argv[2])):
    proto.data_received(data)
"""


# aiohttp answers a request in its connection's task, not in data_received: each response's
# write schedules the next request's data_received with call_soon, as the loop calls it on a read.
AIOHTTP_DRIVER = """
import asyncio, sys
sys.path[:0] = [{here!r}, {servers!r}, {examples!r}]
import uvloop
from aiohttp import web
from inprocess import FakeTransport

REQUEST = b"GET /World HTTP/1.1\\r\\nHost: 127.0.0.1:8080\\r\\n\\r\\n"
BODY = b"Hello, World!"


class Chain(FakeTransport):
    \"\"\"Each answer written schedules the next request, as the loop would on the next read.\"\"\"

    def __init__(self, loop, left):
        super().__init__()
        self.loop = loop
        self.left = left
        self.proto = None
        self.done = loop.create_future()

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default

    def write(self, data):
        if not data.endswith(BODY):
            raise SystemExit(f"unexpected write {{data!r}}")
        self.left -= 1
        if self.left:
            self.loop.call_soon(self.proto.data_received, REQUEST)
        else:
            self.done.set_result(None)

    def writelines(self, chunks):
        self.write(b"".join(chunks))


async def main(which, count):
    if which == "plugins-aiohttp":
        import plugins_app
        app = plugins_app.create_app()
    else:
        import aiohttp_seed
        app = aiohttp_seed.make_app()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    loop = asyncio.get_running_loop()
    transport = Chain(loop, count)
    proto = runner.server()
    transport.proto = proto
    proto.connection_made(transport)
    loop.call_soon(proto.data_received, REQUEST)
    await transport.done
    proto.connection_lost(None)
    await runner.cleanup()

uvloop.run(main(sys.argv[1], int(sys.argv[2])))
"""

WS_DRIVER = """
import asyncio, sys
sys.path[:0] = [{here!r}, {servers!r}]
import uvloop
from inprocess import FakeTransport

DEFLATE = "deflate" in sys.argv[1]
HANDSHAKE = (
    b"GET /deflate HTTP/1.1\\r\\n" if DEFLATE else b"GET / HTTP/1.1\\r\\n"
) + (
    b"Host: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n"
) + (
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\\r\\n\\r\\n"
    if DEFLATE else b"\\r\\n"
)
KEY = b"\\x37\\xfa\\x21\\x3d"
PAYLOAD = bytes(range(32))
FRAME = bytes((0x82, 0x80 | 32)) + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(PAYLOAD))
ECHO = bytes((0x82, 32)) + PAYLOAD
if DEFLATE:  # ws_load.py's deflate frames: a pool of 1 KiB JSON texts, sent in turn
    from ws_load import DEFLATE_POOL, deflated_frame, json_texts
    FRAMES = [deflated_frame(text) for text in json_texts(DEFLATE_POOL, 1024)]
else:
    FRAMES = [FRAME]


class Chain(FakeTransport):
    \"\"\"Each echo written schedules the next frame, as the loop would on the next read.\"\"\"

    def __init__(self, loop, left):
        super().__init__()
        self.loop = loop
        self.left = left
        self.proto = None  # set once the handshake is answered: from then on, echoes
        self.done = loop.create_future()

    def write(self, data):
        if self.proto is None:
            return
        if data != ECHO:
            raise SystemExit(f"unexpected write {{data!r}}")
        self.left -= 1
        if self.left:
            self.loop.call_soon(self.proto.data_received, FRAME)
        else:
            self.done.set_result(None)


class DeflateChain(Chain):
    \"\"\"The same with ws_load.py's compressed frames, sent in turn.\"\"\"

    def write(self, data):
        if self.proto is None:
            return
        if data[0] != 0xC1:
            raise SystemExit(f"unexpected write {{data!r}}")
        self.left -= 1
        if self.left:
            self.loop.call_soon(self.proto.data_received, FRAMES[self.left % len(FRAMES)])
        else:
            self.done.set_result(None)


async def main(which, count):
    loop = asyncio.get_running_loop()
    transport = (DeflateChain if DEFLATE else Chain)(loop, count)
    runner = None
    if which == "ws-floor":
        import ws_floor
        proto = ws_floor.Floor()
    elif which == "ws-asgi":
        import ws_asgi
        from squall.asgi import ASGIHandler
        from squall.http import HttpServer
        proto = HttpServer(ASGIHandler(ws_asgi.app))()
    else:
        import ws_squall
        from squall import web
        runner = web.AppRunner(ws_squall.make_app(), access_log=None)
        await runner.setup()
        proto = runner.server()
    proto.connection_made(transport)
    loop.call_soon(proto.data_received, HANDSHAKE)  # from the loop, as a read: not in a task
    for _ in range(5):
        await asyncio.sleep(0)
    transport.proto = proto
    loop.call_soon(proto.data_received, FRAMES[0])
    await transport.done
    if runner is not None:
        proto.connection_lost(None)
        await runner.cleanup()

uvloop.run(main(sys.argv[1], int(sys.argv[2])))
"""


def count(python: str, driver: Path, which: str, n: int, path: str | None, flags: list[str]) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    if path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                python,
                str(driver),
                which,
                str(n),
                *flags,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    match = re.search(r"Collected : ([\d,]+)", out.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "which",
        nargs="?",
        default="seed",
        choices=(
            "seed",
            "names",
            "json",
            "browser",
            "floor",
            "plugins",
            "seed-aiohttp",
            "plugins-aiohttp",
            "ws",
            "ws-asgi",
            "ws-floor",
            "ws-deflate",
        ),
    )
    parser.add_argument("--python", default=sys.executable, help="the Python to measure")
    parser.add_argument("--path", help="a directory to put first on PYTHONPATH")
    parser.add_argument("--access-log", action="store_true", help="the default access log on")
    parser.add_argument("--metrics", action="store_true", help="Prometheus metrics on")
    parser.add_argument("--n1", type=int, default=1000)
    parser.add_argument("--n2", type=int, default=6000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "driver.py"
        if args.which.startswith("ws"):
            source = WS_DRIVER
        elif args.which.endswith("aiohttp"):
            source = AIOHTTP_DRIVER
        else:
            source = FLOOR_DRIVER if args.which == "floor" else DRIVER
        driver.write_text(
            source.format(
                here=str(HERE),
                servers=str(HERE / "servers"),
                examples=str(HERE.parent / "examples"),
            )
        )
        flags = ["log"] * args.access_log + ["metrics"] * args.metrics
        low = count(args.python, driver, args.which, args.n1, args.path, flags)
        high = count(args.python, driver, args.which, args.n2, args.path, flags)
    per = (high - low) / (args.n2 - args.n1)
    unit = "message echoed" if args.which.startswith("ws") else "request"
    extra = "".join(f", {flag}" for flag in flags)
    print(f"{per:,.0f} instructions per {unit}, {args.which}{extra}")


if __name__ == "__main__":
    main()
