"""The web dashboard: static files from the source tree, served at / after every API route."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

DASHBOARD_DIR = Path(__file__).resolve().parents[3] / "dashboard"


class DashboardFiles(StaticFiles):
    """Static files a browser asks about again each time (a 304 while unchanged): the page's
    modules import each other, so after an upgrade none may come from an older cache."""

    async def get_response(self, path: str, scope: Scope):
        response = await super().get_response(path, scope)
        response.headers.setdefault("cache-control", "no-cache")
        return response


def mount_dashboard(app: FastAPI, directory: Path = DASHBOARD_DIR) -> None:
    """Serve ``directory`` at / (a mount, not a router: it must come last, it matches every path)."""
    if directory.is_dir():
        app.mount("/", DashboardFiles(directory=directory, html=True), name="dashboard")
