"""The HTTP side: ``create_api`` assembles the FastAPI app from one router per resource.

Routes live in ``app/api/routes/`` (calls, call flows, devices, health and metrics, the dashboard), the MCP server
in ``mcp.py`` (what REST and MCP both do in ``actions.py``), request and response bodies in ``schemas.py``, the running Hold Slayer reaches handlers through ``deps.py``,
and domain rules (learning a flow, a flow's next version) live in the domain packages.
"""

from __future__ import annotations

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
        await owned.start()
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

