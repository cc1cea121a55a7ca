"""Long-poll and Server-Sent Events handlers that notice at once a client that has left.

- GET  /poll      long-poll: the next published message as text (204 after 30 s without one)
- GET  /events    an SSE stream of every published message (a comment line every 15 s)
- POST /publish   the request body (text) is sent to every waiting /poll and /events client
- GET  /stats     JSON: how many clients are subscribed right now

Each waiting client holds a subscription (a queue here; a DB cursor, a broker subscription...
in real life). When the client goes away (it closes the connection, or it is reset), the handler
learns it at once and lets the subscription go, by the same signals as on aiohttp:

- ``request.transport`` becomes None (the long-poll loop below checks it);
- ``await response.write(...)`` raises ConnectionResetError (the SSE loop stops on it);
- with ``handler_cancellation=True`` (``web.run_app(app, handler_cancellation=True)``, or
  ``squall --handler-cancellation``) the handler is cancelled instead.

Run:  python examples/longpoll_sse.py          (port from $PORT, else 8080)
  or: squall examples.longpoll_sse:create_app --factory
Try:  curl -N localhost:8080/events  and  curl -d hello localhost:8080/publish
"""

import asyncio
import contextlib
import os

from squall import web

POLL_TIMEOUT = 30.0  # a long-poll answers 204 after this long without a message
HEARTBEAT = 15.0  # an SSE comment line this often keeps proxies from closing an idle stream
CHECK_EVERY = 0.05  # how often a waiting handler looks whether its client is still there


class Hub:
    """The subscribers: one queue each; a published message goes into every queue."""

    def __init__(self):
        self.queues = set()

    @contextlib.contextmanager
    def subscribe(self):
        queue = asyncio.Queue()
        self.queues.add(queue)
        try:
            yield queue
        finally:
            self.queues.discard(queue)  # whatever ends the handler, the subscription goes

    def publish(self, message):
        for queue in self.queues:
            queue.put_nowait(message)
        return len(self.queues)


HUB = web.AppKey("hub", Hub)
routes = web.RouteTableDef()


@routes.get("/poll")
async def poll(request):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_TIMEOUT
    with request.app[HUB].subscribe() as queue:
        while request.transport is not None:  # None once the client has left
            try:
                message = await asyncio.wait_for(queue.get(), CHECK_EVERY)
            except TimeoutError:
                if loop.time() >= deadline:
                    return web.Response(status=204)
                continue
            return web.Response(text=message)
    return web.Response(status=204)  # nobody is left to read it


def sse_event(message):
    lines = message.splitlines() or [""]
    return "".join(f"data: {line}\n" for line in lines).encode() + b"\n"


@routes.get("/events")
async def events(request):
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + HEARTBEAT
    with request.app[HUB].subscribe() as queue:
        try:
            while request.transport is not None:  # None once the client has left
                try:
                    message = await asyncio.wait_for(queue.get(), CHECK_EVERY)
                except TimeoutError:
                    if loop.time() >= next_beat:
                        next_beat = loop.time() + HEARTBEAT
                        await response.write(b": keep-alive\n\n")
                    continue
                await response.write(sse_event(message))
        except ConnectionResetError:
            pass  # the client left while we wrote: a write raises once it has
    return response


@routes.post("/publish")
async def publish(request):
    delivered = request.app[HUB].publish(await request.text())
    return web.json_response({"delivered": delivered})


@routes.get("/stats")
async def stats(request):
    return web.json_response({"subscribers": len(request.app[HUB].queues)})


def create_app():
    app = web.Application()
    app[HUB] = Hub()
    app.add_routes(routes)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), port=int(os.environ.get("PORT", "8080")))
