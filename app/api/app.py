"""The HTTP side: ``create_api`` assembles the FastAPI app from one router per resource.

Routes live in ``app/api/routes/`` (calls, call flows, devices, health and metrics, the dashboard), the MCP server
in ``mcp.py`` (what REST and MCP both do in ``actions.py``), request and response bodies in ``schemas.py``, the running Hold Slayer reaches handlers through ``deps.py``,
and domain rules (learning a flow, a flow's next version) live in the domain packages.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app.api.auth import BearerTokenMiddleware, required_token
from app.api.errors import install_error_handlers
from app.api.mcp import build_mcp_server, mcp_routes
from app.api.routes import call_flows, calls, devices, events_ws, health, metrics
from app.api.routes.dashboard import mount_dashboard
from app.config import Settings
from app.runtime import HoldSlayer

log = logging.getLogger(__name__)


def create_api(holdslayer: HoldSlayer | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the API. Without ``holdslayer`` the app owns one built from ``settings``.

    Its lifespan runs once per app (the MCP session manager cannot be restarted)."""
    if holdslayer is None:
        settings = settings or Settings()
    effective = holdslayer.settings if holdslayer is not None else settings
    assert effective is not None
    mcp_app_routes, mcp_running = mcp_routes(build_mcp_server(lambda: app.state.holdslayer), host=effective.api_host)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if holdslayer is not None:
            app.state.holdslayer = holdslayer
            async with mcp_running():
                yield
            return
        owned = HoldSlayer(settings)
        # The start waits for Asterisk's ARI (it may not be up yet): a stop asked for meanwhile
        # (Ctrl-C, SIGTERM: ``app.state.cancel_start``) ends the wait instead of being ignored.
        loop = asyncio.get_running_loop()
        starting = asyncio.create_task(owned.start(), name="holdslayer-start")
        app.state.cancel_start = lambda: loop.call_soon_threadsafe(starting.cancel)
        try:
            await starting
        except asyncio.CancelledError:
            if not starting.cancelled() or (current := asyncio.current_task()) is None or current.cancelling():
                raise  # the lifespan itself was cancelled
            log.info("stopped while waiting for Asterisk's ARI")
            await owned.stop()
            yield  # the server, told to exit, shuts down at once
            return
        finally:
            app.state.cancel_start = None
        app.state.holdslayer = owned
        try:
            async with mcp_running():
                yield
        finally:
            await owned.stop()

    token = required_token(effective)
    # The docs page with its assets from the package (fastapi-offline): it works with no internet.
    app = FastAPIOffline(title="Hold Slayer", version="0.1.0", lifespan=lifespan)
    if token is not None:
        app.add_middleware(BearerTokenMiddleware, token=token)
    install_error_handlers(app)
    for resource in (health, metrics, calls, call_flows, devices, events_ws):
        app.include_router(resource.router)
    app.router.routes.extend(mcp_app_routes)  # /mcp (streamable HTTP), /mcp/sse and /mcp/messages/ (SSE)
    mount_dashboard(app)  # last: it answers every path no route took
    return app

