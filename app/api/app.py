"""The HTTP side: ``create_api`` assembles the FastAPI app from one router per resource.

Routes live in ``app/api/routes/`` (calls, call flows, health, the dashboard), request and
response bodies in ``schemas.py``, the running Hold Slayer reaches handlers through ``deps.py``,
and domain rules (learning a flow, a flow's next version) live in the domain packages.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app.api.auth import BearerTokenMiddleware, required_token
from app.api.errors import install_error_handlers
from app.api.routes import call_flows, calls, events_ws, health
from app.api.routes.dashboard import mount_dashboard
from app.config import Settings
from app.runtime import HoldSlayer


def create_api(holdslayer: HoldSlayer | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the API. Without ``holdslayer`` the app owns one built from ``settings``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if holdslayer is not None:
            app.state.holdslayer = holdslayer
            yield
            return
        owned = HoldSlayer(settings or Settings())
        await owned.start()
        app.state.holdslayer = owned
        try:
            yield
        finally:
            await owned.stop()

    token = required_token(settings or (holdslayer.settings if holdslayer is not None else Settings()))
    # The docs page with its assets from the package (fastapi-offline): it works with no internet.
    app = FastAPIOffline(title="Hold Slayer", version="0.1.0", lifespan=lifespan)
    if token is not None:
        app.add_middleware(BearerTokenMiddleware, token=token)
    install_error_handlers(app)
    for resource in (health, calls, call_flows, events_ws):
        app.include_router(resource.router)
    mount_dashboard(app)  # last: it answers every path no route took
    return app
