"""A token on every surface: without it REST answers 401 and the WebSocket is refused; with it
everything works; listening beyond this machine without one is refused at start."""

from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp
import pytest

from app.api.app import create_api
from app.api.auth import AuthSettingsError, needs_token, presented_token
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
    server = ApiServer(create_api(holdslayer))
    await holdslayer.start()
    await server.start()
    try:
        yield server.base_url, pbx
    finally:
        await server.stop()
        await holdslayer.stop()
        await pbx.stop()


BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/calls", None),
        ("POST", "/api/calls", {"number": "5550001", "intent": "billing"}),
        ("GET", "/api/calls/abc", None),
        ("GET", "/api/calls/abc/recording", None),
        ("POST", "/api/calls/abc/hangup", None),
        ("GET", "/api/call-flows", None),
        ("POST", "/api/call-flows/learn", {"call_id": "abc"}),
    ],
)
async def test_without_the_token_every_route_answers_401_and_nothing_is_dialled(tmp_path, corpus, http, database_url, method, path, body):
    async with guarded_api(tmp_path, corpus, database_url) as (base, pbx):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            async with http.request(method, base + path, json=body, headers=headers) as resp:
                assert resp.status == 401, (path, headers)
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert not pbx.company_calls


async def test_with_the_token_the_api_and_the_websocket_work_and_health_stays_open(tmp_path, corpus, http, database_url):
    async with guarded_api(tmp_path, corpus, database_url) as (base, _):
        async with http.get(base + "/api/calls", headers=BEARER) as resp:
            assert resp.status == 200 and await resp.json() == []
        async with http.get(base + "/api/health") as resp:
            assert resp.status == 200  # container health checks carry no token
        async with http.get(base + "/openapi.json") as resp:
            assert resp.status == 200  # the API's description holds no data
        ws_base = base.replace("http://", "ws://") + "/ws/events"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(ws_base)
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(ws_base + "?token=wrong")
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

    async with guarded_api(tmp_path, corpus, database_url) as (base, _):
        async with http.get(base + "/docs") as resp:
            assert resp.status == 200
            page = await resp.text()
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
        assert assets and all(a.startswith("/") for a in assets), f"nothing from a CDN: {assets}"
        for asset in assets:
            async with http.get(base + asset) as resp:
                assert resp.status == 200 and len(await resp.read()) > 100, asset
