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
pytest_plugins = ["tests.smtp_server", "pytester"]  # ``smtp``: a real SMTP server; ``pytester``: pytest on pytest


def pytest_generate_tests(metafunc) -> None:
    # A test that opens a database runs on every backend of the run (tests/database.py), as
    # items of this one run: its workers take SQLite's and PostgreSQL's alike.
    if database.FIXTURES & set(metafunc.fixturenames):
        only_postgresql = metafunc.definition.get_closest_marker("postgresql") is not None
        backends = (database.POSTGRESQL,) if only_postgresql else database.backends()
        metafunc.parametrize("database_backend", backends, indirect=True, scope="module")


def pytest_collection_modifyitems(config, items) -> None:
    # Every test that opens a database is marked, so that `-m database` selects exactly those.
    for item in items:
        if database.FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.database)


@pytest.fixture(scope="module")
def database_backend(request) -> str:
    """The backend this variant of the test runs on (parametrised by ``pytest_generate_tests``)."""
    backend = request.param
    if backend == database.POSTGRESQL and database.server_url() is None:
        pytest.skip(f"needs PostgreSQL: set {database.ENV} (scripts/test sets it)")
    return backend


@pytest.fixture
def database_url(tmp_path, database_backend) -> Iterator[str]:
    """An empty database of this test's own (tests/database.py), on this variant's backend."""
    with database.fresh_database(tmp_path, database_backend) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory, database_backend) -> Iterator[str]:
    """The same, shared by a module's tests (an app the whole module talks to)."""
    with database.fresh_database(tmp_path_factory.mktemp("db"), database_backend) as url:
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
