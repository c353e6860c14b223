"""A real HTTP endpoint on a free local port for the webhook's tests: the handler decides what
each POST gets back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def receiving_posts(handler: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """The URL of a running server that hands every POST to ``/hook`` to ``handler``."""
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)  # a hanging handler must not hold up the end
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()
