# The seed program in the `from squall import web` form (how aiohttp apps usually import it).
import asyncio

from squall import web


async def handle(request):
    name = request.match_info.get('name', 'Anonymous')
    text = f'Hello, {name}!'
    return web.Response(text=text)


async def init_app():
    app = web.Application()
    app.add_routes([web.get('/{name}', handle)])
    return app


async def main():
    app = await init_app()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, 'localhost', 8080)
    await site.start()
    print('Server started at http://localhost:8080/')
    await asyncio.sleep(3600)  # Keep server running


asyncio.run(main())
