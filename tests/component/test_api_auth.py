"""A token on every surface: every route the app serves answers 401 without it or with a wrong
one (REST, /metrics, MCP over both transports, the WebSocket's handshake), but for the few that
are open by design; with it everything works; listening beyond this machine without one is
refused at start."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from app.api.app import create_api
from app.api.auth import AuthSettingsError, BearerTokenMiddleware, needs_token, presented_token
from app.config import Settings
from app.runtime import HoldSlayer
from app.sim import SimConfig, SimulatedPBX
from tests.conftest import REPO, ApiServer

TOKEN = "correct-horse-battery-staple"


@asynccontextmanager
async def guarded_api(tmp_path, corpus, database_url):
    pbx = SimulatedPBX(SimConfig(scenarios={}, corpus=corpus))
    await pbx.start()
    settings = Settings(
        ari_url=pbx.ari_url,
        database_url=database_url,
        recordings_dir=tmp_path / "rec",
        flows_dir=REPO / "flows",
        api_token=TOKEN,
    )
    holdslayer = HoldSlayer(settings)
    app = create_api(holdslayer)
    server = ApiServer(app)
    await holdslayer.start()
    await server.start()
    try:
        yield server.base_url, pbx, app
    finally:
        await server.stop()
        await holdslayer.stop()
        await pbx.stop()


BEARER = {"Authorization": f"Bearer {TOKEN}"}
NOT_THE_TOKEN = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]

# The routes that answer without the token, by design (app/api/auth.py): the health check, the
# API's description and its docs pages with their assets, and the dashboard's static files and
# login page (the mount at /). Any other route the app serves must answer 401.
PUBLIC = {"/api/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static-offline-docs/", "/"}
# Among the protected ones, at the least: what names calls or holds their recordings and transcripts.
MUST_BE_PROTECTED = {
    "/metrics",
    "/mcp",
    "/mcp/sse",
    "/mcp/messages/",
    "/ws/events",
    "/api/calls/{call_id}",  # with its transcript
    "/api/calls/{call_id}/recording",
    "/api/calls/{call_id}/recordings",
    "/api/calls/{call_id}/recordings/{channel}",
}
ANY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A body for every request that takes one; the call it asks for is never placed without the token.
BODY = {"number": "5550001", "intent": "billing", "call_id": "abc", "digits": "1", "name": "x", "dial_string": "PJSIP/x"}


def served_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Every route the app serves, with its full path. Recent FastAPI keeps an included router as
    one route (``original_router``, its prefix in ``include_context``); older ones copy its routes."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from served_routes(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + getattr(route, "path", ""), route


def requests_to_try(app) -> Iterator[tuple[str, str, str]]:
    """``(route path, method or "websocket", URL path)`` for every route and method: a mount is
    asked for what lies under it, path parameters are any id."""
    for path, route in served_routes(app.routes):
        url = re.sub(r"\{[^}]+\}", "any-id", path)
        if isinstance(route, WebSocketRoute):
            yield path, "websocket", url
        elif isinstance(route, Mount):  # "" (the dashboard) is "/"
            for method in ("GET", "POST"):
                yield path.rstrip("/") + "/", method, url.rstrip("/") + "/"
        elif isinstance(route, Route):
            for method in sorted(route.methods or ANY_METHOD):
                yield path, method, url
        else:
            raise AssertionError(f"a route of a kind this test does not know: {route!r} at {path!r}")


async def handshake_status(http: aiohttp.ClientSession, url: str, headers: dict) -> int:
    try:
        async with http.ws_connect(url, headers=headers):
            return 101
    except aiohttp.WSServerHandshakeError as refused:
        return refused.status


async def answer(http: aiohttp.ClientSession, base: str, method: str, url: str, headers: dict) -> tuple[int, str, object]:
    """``(status, WWW-Authenticate, the 401's JSON body)`` of one request without a valid token."""
    if method == "websocket":
        return await handshake_status(http, base.replace("http://", "ws://") + url, headers), "Bearer", None
    body = BODY if method in ("POST", "PUT", "PATCH") else None
    async with http.request(method, base + url, json=body, headers=headers) as resp:
        # Only a 401's body is read: a public route may stream (none does now, but /mcp/sse would).
        reason = await resp.json() if resp.status == 401 and method != "HEAD" else None
        return resp.status, resp.headers.get("WWW-Authenticate", ""), reason


async def test_every_route_but_the_public_ones_answers_401_without_the_token_and_nothing_is_dialled(
    tmp_path, corpus, http, database_url
):
    async with guarded_api(tmp_path, corpus, database_url) as (base, pbx, app):
        tried = [(path, method, url, headers) for path, method, url in requests_to_try(app) for headers in NOT_THE_TOKEN]
        async with asyncio.timeout(30):
            answers = await asyncio.gather(*(answer(http, base, method, url, headers) for _, method, url, headers in tried))
        protected: set[str] = set()
        public: set[str] = set()
        for (path, method, _, headers), (status, challenge, reason) in zip(tried, answers):
            if status != 401:
                public.add(path)
                assert path in PUBLIC, f"{method} {path} answers {status} with {headers or 'no token'}"
                continue
            protected.add(path)
            assert challenge.startswith("Bearer"), (method, path)
            if reason is not None:
                assert "bearer token is required" in reason["detail"], (method, path, reason)
        assert public == PUBLIC, "a route open by design is gone, or answers 401 now"
        assert not public & protected, "a public route answered 401 to some request"
        assert MUST_BE_PROTECTED <= protected, MUST_BE_PROTECTED - protected
        described = set(app.openapi()["paths"])
        assert described - PUBLIC <= protected, "the walk missed routes the API describes"
        assert not pbx.company_calls, "nothing was dialled"


async def test_a_websocket_handshake_without_the_token_gets_401_and_the_reason(tmp_path, corpus, http, database_url):
    async with guarded_api(tmp_path, corpus, database_url) as (base, _, _app):
        ws_url = base.replace("http://", "ws://") + "/ws/events"
        for query, headers in [("", {}), ("?token=wrong", {}), ("", {"Authorization": "Bearer wrong"})]:
            assert await handshake_status(http, ws_url + query, headers) == 401, (query, headers)
        # What a client that reads the refusal sees: the same JSON reason as REST's 401.
        upgrade = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        }
        async with http.get(base + "/ws/events?token=wrong", headers=upgrade) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert "bearer token is required" in json.loads(await resp.read())["detail"]
        assert await handshake_status(http, ws_url + f"?token={TOKEN}", {}) == 101


async def test_without_the_handshake_response_extension_the_socket_is_refused_all_the_same():
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def never_called(scope, receive, send):
        raise AssertionError("the app was reached without the token")

    middleware = BearerTokenMiddleware(never_called, TOKEN)
    scope = {"type": "websocket", "path": "/ws/events", "headers": [], "query_string": b""}
    await middleware(scope, None, send)
    assert [m["type"] for m in sent] == ["websocket.close"] and sent[0]["code"] == 1008
    sent.clear()
    await middleware({**scope, "extensions": {"websocket.http.response": {}}}, None, send)
    assert [m["type"] for m in sent] == ["websocket.http.response.start", "websocket.http.response.body"]
    assert sent[0]["status"] == 401


async def test_mcp_takes_the_token_on_both_transports(tmp_path, corpus, http, database_url):
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }
    accept = {"Accept": "application/json, text/event-stream"}
    async with guarded_api(tmp_path, corpus, database_url) as (base, _, _app):
        async with asyncio.timeout(10):
            async with http.post(base + "/mcp", json=initialize, headers={**accept}) as resp:
                assert resp.status == 401
            async with http.post(base + "/mcp", json=initialize, headers={**accept, **BEARER}) as resp:
                assert resp.status == 200, await resp.text()
                assert '"serverInfo"' in await resp.text()
            async with http.get(base + "/mcp/sse", headers=BEARER) as resp:
                assert resp.status == 200 and resp.content_type == "text/event-stream"
                assert (await resp.content.readline()).startswith(b"event: endpoint")


async def test_with_the_token_the_api_and_the_websocket_work_and_health_stays_open(tmp_path, corpus, http, database_url):
    async with guarded_api(tmp_path, corpus, database_url) as (base, _, _app):
        async with http.get(base + "/api/calls", headers=BEARER) as resp:
            assert resp.status == 200 and await resp.json() == []
        async with http.get(base + "/api/health") as resp:
            assert resp.status == 200  # container health checks carry no token
        async with http.get(base + "/openapi.json") as resp:
            assert resp.status == 200  # the API's description holds no data
        ws_base = base.replace("http://", "ws://") + "/ws/events"
        async with http.ws_connect(ws_base + f"?token={TOKEN}") as ws:
            assert (await ws.receive_json())["type"] == "state"
        async with http.ws_connect(ws_base, headers=BEARER) as ws:
            assert (await ws.receive_json())["type"] == "state"


def test_listening_beyond_this_machine_without_a_token_is_refused():
    with pytest.raises(AuthSettingsError, match="HOLDSLAYER_API_TOKEN"):
        create_api(settings=Settings(api_host="0.0.0.0"))
    create_api(settings=Settings(api_host="0.0.0.0", api_token="t"))  # with one it starts
    create_api(settings=Settings(api_host="::1"))  # loopback: open by choice


def test_which_paths_need_the_token_and_where_it_is_read_from():
    assert needs_token("/api/calls") and needs_token("/ws/events") and needs_token("/mcp/") and needs_token("/metrics")
    assert not needs_token("/openapi.json") and not needs_token("/docs")
    assert not needs_token("/api/health") and not needs_token("/") and not needs_token("/app.js")
    http_scope = {"type": "http", "headers": [(b"authorization", b"Bearer abc")], "query_string": b"token=zzz"}
    assert presented_token(http_scope) == "abc"
    assert presented_token({"type": "http", "headers": [], "query_string": b"token=zzz"}) is None  # query only for WebSockets
    assert presented_token({"type": "websocket", "headers": [], "query_string": b"token=zzz"}) == "zzz"


async def test_the_docs_page_works_offline_from_the_package(tmp_path, corpus, http, database_url):
    import re

    async with guarded_api(tmp_path, corpus, database_url) as (base, _, _app):
        async with http.get(base + "/docs") as resp:
            assert resp.status == 200
            page = await resp.text()
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
        assert assets and all(a.startswith("/") for a in assets), f"nothing from a CDN: {assets}"
        for asset in assets:
            async with http.get(base + asset) as resp:
                assert resp.status == 200 and len(await resp.read()) > 100, asset
