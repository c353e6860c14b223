"""WebSocket /ws/events against the running app and the simulated PBX: state first, then every
event in its published schema, heartbeats when idle, a call filter, and a slow client dropped
without slowing anything."""

from __future__ import annotations

import asyncio

import aiohttp
import jsonschema
import pytest

from app.calls import events as ev
from app.calls.events import event_json_schema
from tests.e2e.test_e2e_calls import BUSY, NOT_IN_SERVICE, Stack, stack  # noqa: F401 - the fixture

SCHEMA = jsonschema.Draft202012Validator(event_json_schema())


def ws_url(stack: Stack, query: str = "") -> str:
    return stack.api.base_url.replace("http://", "ws://") + "/ws/events" + query


async def receive_until_ended(ws: aiohttp.ClientWebSocketResponse, call_id: str, timeout: float = 60.0) -> list[dict]:
    received = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            received.append(message)
            if message["type"] == "CALL_ENDED" and message["call_id"] == call_id:
                return received


async def test_a_client_gets_the_state_then_every_event_of_a_call_in_order(stack: Stack):
    async with stack.http.ws_connect(ws_url(stack)) as ws:
        state = await ws.receive_json()
        assert state["type"] == "state" and state["calls"] == []
        call_id = await stack.call(BUSY)
        messages = await receive_until_ended(ws, call_id)
    events = [m for m in messages if m["type"] != "heartbeat"]
    for event in events:
        SCHEMA.validate(event)
    types = [e["type"] for e in events]
    assert types[0] == "CALL_CREATED" and types[-1] == "CALL_ENDED"
    assert "CALL_DIALING" in types and types.index("CALL_DIALING") < types.index("CALL_ENDED")
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[-1]["data"]["reason"] == "busy"


async def test_a_client_can_follow_one_call_and_gets_its_state_first(stack: Stack):
    first = await stack.call(NOT_IN_SERVICE)
    async with stack.http.ws_connect(ws_url(stack, f"?call_id={first}")) as ws:
        state = await ws.receive_json()
        assert state["type"] == "state" and [c["call_id"] for c in state["calls"]] == [first]
        assert state["calls"][0]["number"] == NOT_IN_SERVICE
        other = await stack.call(BUSY)
        messages = await receive_until_ended(ws, first)
    assert {m["call_id"] for m in messages if m["type"] not in ("heartbeat",)} == {first}
    await stack.wait_final(other)


@pytest.mark.parametrize("stack", [{"ws_heartbeat_seconds": 0.2}], indirect=True)
async def test_an_idle_client_gets_heartbeats(stack: Stack):
    async with stack.http.ws_connect(ws_url(stack)) as ws:
        assert (await ws.receive_json())["type"] == "state"
        async with asyncio.timeout(5):
            beats = [(await ws.receive_json())["type"] for _ in range(2)]
    assert beats == ["heartbeat", "heartbeat"]


@pytest.mark.parametrize("stack", [{"ws_max_queued_events": 50}], indirect=True)
async def test_a_client_that_falls_behind_is_dropped_and_the_bus_never_waits(stack: Stack):
    bus = stack.holdslayer.bus
    async with stack.http.ws_connect(ws_url(stack)) as slow, stack.http.ws_connect(ws_url(stack)) as fine:
        assert (await slow.receive_json())["type"] == "state"
        assert (await fine.receive_json())["type"] == "state"
        # 500 events at once, with no chance for the server to send in between: both clients fall
        # 450 behind; the bus hands them on without waiting, and the clients are dropped.
        published = [bus.emit("nobody", ev.HoldProgress(hold_seconds=i)) for i in range(500)]
        assert [e.seq for e in published] == sorted(e.seq for e in published)
        async with asyncio.timeout(10):
            while True:
                message = await slow.receive()
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    break
        assert slow.close_code == 1008
    # Dropping a client drops nothing else: a new one connects and follows a call.
    async with stack.http.ws_connect(ws_url(stack)) as again:
        assert (await again.receive_json())["type"] == "state"
        call_id = await stack.call(BUSY)
        messages = await receive_until_ended(again, call_id)
    assert messages[-1]["data"]["reason"] == "busy"
