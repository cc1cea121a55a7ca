# The seed article's program, exactly as printed, with the word `aiohttp` replaced by `squall`.
# `import squall` makes `squall.web` available (with aiohttp, `import aiohttp` alone does not).
import asyncio
import squall

async def handle(request):
    name = request.match_info.get('name', 'Anonymous')
    text = f'Hello, {name}!'
    return squall.web.Response(text=text)

async def init_app():
    app = squall.web.Application()
    app.add_routes([squall.web.get('/{name}', handle)])
    return app

async def main():
    app = await init_app()
    runner = squall.web.AppRunner(app)
    await runner.setup()
    site = squall.web.TCPSite(runner, 'localhost', 8080)
    await site.start()
    print('Server started at http://localhost:8080/')
    await asyncio.sleep(3600)  # Keep server running

asyncio.run(main())
