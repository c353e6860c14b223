"""The web dashboard: static files from the source tree, served at / after every API route."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

DASHBOARD_DIR = Path(__file__).resolve().parents[3] / "dashboard"


def mount_dashboard(app: FastAPI, directory: Path = DASHBOARD_DIR) -> None:
    """Serve ``directory`` at / (a mount, not a router: it must come last, it matches every path)."""
    if directory.is_dir():
        app.mount("/", StaticFiles(directory=directory, html=True), name="dashboard")
