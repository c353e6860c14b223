"""Shared fixtures: the recording corpus, the simulated PBX, and the whole app behind real sockets."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from app.corpus import ensure_corpus

REPO = Path(__file__).resolve().parents[1]


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
