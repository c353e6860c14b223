"""Shared fixtures: the recording corpus, the simulated PBX, and the whole app behind real sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.sim.corpus import ensure_corpus
from tests import database

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = ["tests.smtp_server"]  # the ``smtp`` fixture: a real SMTP server


def pytest_collection_modifyitems(config, items) -> None:
    # Every test that opens a database is marked, so that `-m database` runs exactly those again
    # on another backend (.ci/run: PostgreSQL).
    for item in items:
        if database.FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.database)


@pytest.fixture
def database_url(tmp_path) -> Iterator[str]:
    """An empty database of this test's own (tests/database.py): SQLite, or PostgreSQL."""
    with database.fresh_database(tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory) -> Iterator[str]:
    """The same, shared by a module's tests (an app the whole module talks to)."""
    with database.fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def corpus():
    return ensure_corpus()


def free_tcp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ApiServer:
    """The FastAPI app served by uvicorn on a real socket inside the test's event loop."""

    def __init__(self, app):
        import uvicorn

        self._sock = free_tcp_socket()
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self._sock]))
        for _ in range(200):
            if self.server.started:
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("API server did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


ApiCall = Callable[..., Awaitable[tuple[int, Any]]]


@asynccontextmanager
async def api_without_calls(
    tmp_path: Path, http, corpus, database_url: str, **settings: Any
) -> AsyncIterator[tuple[ApiCall, Any]]:
    """The app and its REST API on a real socket and the test's database, its PBX with no
    company to call: ``(call(method, path, json=None) -> (status, body), holdslayer)``;
    ``call.base_url`` is the server's, for a test that reads more of a response."""
    from app.api.app import create_api
    from app.config import Settings
    from app.runtime import HoldSlayer
    from app.sim import SimConfig, SimulatedPBX

    pbx = SimulatedPBX(SimConfig(scenarios={}, corpus=corpus))
    await pbx.start()
    settings = Settings(
        ari_url=pbx.ari_url,
        database_url=database_url,
        recordings_dir=tmp_path / "rec",
        flows_dir=REPO / "flows",
        **settings,
    )
    holdslayer = HoldSlayer(settings)
    server = ApiServer(create_api(holdslayer))
    await holdslayer.start()
    await server.start()

    async def call(method: str, path: str, json=None):
        async with http.request(method, server.base_url + path, json=json) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body

    call.base_url = server.base_url  # type: ignore[attr-defined]
    try:
        yield call, holdslayer
    finally:
        await server.stop()
        await holdslayer.stop()
        await pbx.stop()


@pytest.fixture
def manual_clock():
    """Time that moves only when the test says so (``tests/fakes/clock.py``)."""
    from tests.fakes.clock import ManualClock

    return ManualClock()
