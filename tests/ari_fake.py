"""A small fake ARI server for the client tests: real HTTP and WebSocket on 127.0.0.1.

It answers REST calls from a reply table (filled from the real Asterisk captures), records what it
received, and drives the event websocket: push events or raw frames, refuse handshakes, reset the
TCP connection (like capture e-websocket-faults) or stop reading so pings go unanswered.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.shared_paths import CAPTURES_DIR, require


def captures_dir() -> Path:
    return require(CAPTURES_DIR)


@functools.cache
def capture_lines(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, line) for every line of every capture transcript. Shared: do not modify."""
    return [
        (path.name, json.loads(line))
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def captured_reply(method: str, path: str, status: int | None = None) -> tuple[int, Any]:
    """The first captured (status, body) of a REST call, optionally with a given status."""
    directory = captures_dir()
    for _, line in capture_lines(directory):
        same_call = line["dir"] == "rest" and (line["method"], line["path"]) == (method, path)
        if same_call and (status is None or line["status"] == status):
            return line["status"], line["response"]
    raise LookupError(f"no capture of {method} {path} {status or ''}")


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # relative to /ari, as in the captures, percent-encoded
    query: dict[str, str]
    body: Any


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


class FakeAri:
    def __init__(self, *, user: str = "holdslayer", password: str = "secret", app: str = "holdslayer") -> None:
        self.user, self.password, self.app = user, password, app
        self.requests: list[ReceivedRequest] = []
        self.replies: dict[tuple[str, str], tuple[int, Any]] = {}
        self.ws_attempts = 0
        self.ws_accepted = 0
        self.refuse_websockets = 0  # answer the next N handshakes with 503
        self.rest_delay = 0.0  # seconds before each REST reply
        self._sockets: list[tuple[web.WebSocketResponse, web.Request]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ari"

    async def start(self) -> FakeAri:
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)  # do not wait for deliberately slow replies
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        for ws, request in self._sockets:
            if not ws.closed and request.transport is not None:
                request.transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- REST ---

    def reply(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        """``body``: JSON-able value, bytes (sent as audio/wav) or None (empty)."""
        self.replies[(method, path)] = (status, body)

    def requests_to(self, method: str, path: str) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return auth == expected

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path.removeprefix("/ari")  # still percent-encoded
        raw = await request.read()
        self.requests.append(
            ReceivedRequest(request.method, path, dict(request.query), json.loads(raw) if raw else None)
        )
        if not self._authorized(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        await asyncio.sleep(self.rest_delay)
        status, body = self.replies.get((request.method, path), (404, {"message": "Resource not found"}))
        if body is None:
            return web.Response(status=status)
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type="audio/wav")
        return web.json_response(body, status=status)

    # --- event websocket ---

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self.ws_attempts += 1
        if request.query.get("api_key") != f"{self.user}:{self.password}":
            return web.json_response({"message": "Authentication required"}, status=401)
        if request.query.get("app") != self.app or "subscribeAll" in request.query:
            return web.json_response({"message": "unexpected query"}, status=400)
        if self.refuse_websockets:
            self.refuse_websockets -= 1
            return web.json_response({"message": "try later"}, status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append((ws, request))
        self.ws_accepted += 1
        async for _ in ws:  # autoping answers pings while we read
            pass
        return ws

    def _current(self) -> tuple[web.WebSocketResponse, web.Request]:
        ws, request = self._sockets[-1]
        if ws.closed:
            raise RuntimeError("the current websocket is closed")
        return ws, request

    async def push(self, event: dict[str, Any]) -> None:
        await self._current()[0].send_str(json.dumps(event))

    async def push_text(self, text: str) -> None:
        await self._current()[0].send_str(text)

    async def push_bytes(self, data: bytes) -> None:
        await self._current()[0].send_bytes(data)

    def reset_websocket(self) -> None:
        """Drop the connection with a TCP reset and no close frame."""
        _, request = self._current()
        transport = request.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def stop_reading(self) -> None:
        """Play dead: the TCP connection stays open but pings are never read, so never answered."""
        _, request = self._current()
        assert request.transport is not None
        request.transport.pause_reading()


def event(event_type: str, **fields: Any) -> dict[str, Any]:
    """A minimal valid ARI event of the given type."""
    return {
        "type": event_type,
        "timestamp": "2026-11-21T11:33:22.235+0000",
        "application": "holdslayer",
        "asterisk_id": "00:00:5e:00:53:01",
        **fields,
    }


def channel(channel_id: str, state: str = "Up") -> dict[str, Any]:
    return {
        "id": channel_id,
        "name": f"Local/1000@fake-company-00000001;1 ({channel_id})",
        "state": state,
        "protocol_id": "",
        "caller": {"name": "", "number": ""},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "fake-company", "exten": "1000", "priority": 1, "app_name": "Stasis", "app_data": ""},
        "creationtime": "2026-11-21T11:33:22.235+0000",
        "language": "en",
    }


def bridge(bridge_id: str, channel_ids: list[str]) -> dict[str, Any]:
    return {
        "id": bridge_id,
        "technology": "simple_bridge",
        "bridge_type": "mixing",
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": bridge_id,
        "channels": channel_ids,
        "creationtime": "2026-11-21T11:33:22.236+0000",
        "video_mode": "talker",
    }
