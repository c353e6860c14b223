"""The MCP server against the running app and the simulated PBX, through the MCP SDK's own
client (``ClientSession``) over both transports: streamable HTTP (/mcp) and SSE (/mcp/sse)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp import ClientSession, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.test_e2e_calls import (  # noqa: F401 - the fixture
    BUSY,
    DEAD_PHONE,
    LONG_HOLD,
    MENU,
    NOT_IN_SERVICE,
    USER_PHONE,
    Stack,
    stack,
)
from tests.emergency_numbers import BLOCKED_SETTINGS, REFUSED_NUMBERS, refusal_problem

pytestmark = pytest.mark.e2e

TRANSPORTS = ["streamable_http", "sse"]
TOOLS = {
    "place_call",
    "get_call_status",
    "list_calls",
    "hang_up",
    "send_dtmf",
    "provide_user_data",
    "wait_for_person",
    "list_call_flows",
    "get_call_flow",
    "learn_call_flow",
    "list_devices",
}


class Notifications:
    """What the server told the client: progress (per request) and log messages."""

    def __init__(self) -> None:
        self.progress: list[tuple[float, float | None, str | None]] = []
        self.logs: list[tuple[str, object]] = []

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append((progress, total, message))

    async def on_log(self, params) -> None:
        self.logs.append((params.level, params.data))


@asynccontextmanager
async def connect(stack: Stack, transport: str, notes: Notifications | None = None) -> AsyncIterator[ClientSession]:
    notes = notes or Notifications()
    if transport == "streamable_http":
        opened = streamable_http_client(stack.api.base_url + "/mcp")
    else:
        opened = sse_client(stack.api.base_url + "/mcp/sse")
    async with opened as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write, logging_callback=notes.on_log) as session:
            await session.initialize()
            yield session


def structured(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def error_text(result) -> str:
    assert result.is_error, result
    return " ".join(c.text for c in result.content)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_client_lists_the_tools_and_the_call_resources(stack: Stack, transport):
    async with connect(stack, transport) as client:
        tools = (await client.list_tools()).tools
        templates = (await client.list_resource_templates()).resource_templates
    assert {tool.name for tool in tools} == TOOLS
    assert all(tool.description for tool in tools)
    place = next(tool for tool in tools if tool.name == "place_call")
    assert place.input_schema["required"] == ["number"]
    assert {t.uri_template for t in templates} == {
        "holdslayer://calls/{call_id}",
        "holdslayer://calls/{call_id}/transcript",
    }


@pytest.mark.parametrize("transport, number", [("streamable_http", MENU), ("sse", LONG_HOLD)])
async def test_a_call_is_followed_on_hold_to_a_person_then_hung_up(stack: Stack, transport, number):
    notes = Notifications()
    async with connect(stack, transport, notes) as client:
        placed = structured(await client.call_tool("place_call", {"number": number, "intent": "billing question"}))
        call_id = placed["call_id"]
        listed = structured(await client.call_tool("list_calls", {}))["calls"]
        assert [c["call_id"] for c in listed] == [call_id]
        by_number = structured(await client.call_tool("list_calls", {"number": f"{number[:3]}-{number[3:]}"}))["calls"]
        assert [c["call_id"] for c in by_number] == [call_id]
        assert structured(await client.call_tool("list_calls", {"company": "No Such Company"}))["calls"] == []

        waited = structured(
            await client.call_tool(
                "wait_for_person",
                {"call_id": call_id, "timeout_seconds": 150},
                read_timeout_seconds=160,
                progress_callback=notes.on_progress,
            )
        )
        assert waited["outcome"] == "person", waited
        assert waited["status"] in ("human_detected", "transferring", "connected")

        # On hold the client heard the hold time grow, then the person-on-the-line moment.
        hold_ticks = [p for p in notes.progress if p[2] and p[2].startswith("on hold for")]
        assert len(hold_ticks) >= 2, notes.progress
        values = [p[0] for p in notes.progress]
        assert values == sorted(values) and len(set(values)) == len(values), "progress only increases"
        assert notes.progress[-1][2] == "a person is on the line"
        assert ("notice", "a person is on the line") in notes.logs

        status = structured(await client.call_tool("get_call_status", {"call_id": call_id}))
        assert status["live"] is True and status["hold_seconds"] > 2
        assert "HUMAN_DETECTED" in [e["type"] for e in status["last_events"]]

        # Keys by hand reach the company's line while the call is up.
        assert structured(await client.call_tool("send_dtmf", {"call_id": call_id, "digits": "5"}))["sent"] == "5"

        transcript = await client.read_resource(f"holdslayer://calls/{call_id}/transcript")
        text = transcript.contents[0].text
        pressed = "we pressed: 2\n" if number == MENU else "we pressed: 1\n"
        assert pressed in text, text
        assert "we said to the person: Hi, thanks for picking up!" in text, text
        assert "we pressed: 5" in text, text

        assert structured(await client.call_tool("hang_up", {"call_id": call_id}))["cancelled"] is True
        call = await stack.wait_final(call_id)
        assert (call["status"], call["reason"]) == ("cancelled", "cancelled")
        assert "already ended" in error_text(await client.call_tool("hang_up", {"call_id": call_id}))

        record = json.loads((await client.read_resource(f"holdslayer://calls/{call_id}")).contents[0].text)
        learned = structured(await client.call_tool("learn_call_flow", {"call_id": call_id}))
    assert record["status"] == "cancelled" and record["number"] == number
    # The call followed the number's stored flow: what it saw becomes that flow's next version.
    assert learned["merged"] is True and learned["flow"]["phone_number"] == number
    assert learned["flow"]["version"] >= 2
    assert "AUDIO_CLASSIFIED" not in {e["type"] for e in record["events"]}
    company = next(c for c in stack.pbx.company_calls if c.number == number)
    assert company.dtmf.endswith("5"), company.dtmf
    await stack.assert_pbx_clean()


@pytest.mark.parametrize("stack", [BLOCKED_SETTINGS], indirect=True)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_emergency_and_blocked_numbers_are_refused_and_nothing_is_dialled(stack: Stack, transport):
    # Every number of the shared list in one session: each is a tool error naming what it reaches.
    problems = []
    async with connect(stack, transport) as client:
        for number, code in REFUSED_NUMBERS.items():
            result = await client.call_tool("place_call", {"number": number, "intent": "help"})
            if not result.is_error:
                problems.append(f"{number!r}: placed {result.structured_content}")
            elif (problem := refusal_problem(number, code, error_text(result))) is not None:
                problems.append(problem)
        calls = structured(await client.call_tool("list_calls", {}))["calls"]
    assert problems == []
    assert calls == []
    assert not stack.pbx.company_calls, "nothing was dialled"
    assert not stack.pbx.snapshot()["channels"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bad_requests_and_unknown_calls_are_tool_errors_with_the_reason(stack: Stack, transport):
    async with connect(stack, transport) as client:
        assert "number" in error_text(await client.call_tool("place_call", {"number": "call me maybe"}))
        assert "unknown device 'fax'; devices: dead_phone, sip_phone" in error_text(
            await client.call_tool("place_call", {"number": MENU, "device": "fax"})
        )
        for tool, args in [
            ("get_call_status", {"call_id": "nope"}),
            ("hang_up", {"call_id": "nope"}),
            ("send_dtmf", {"call_id": "nope", "digits": "1"}),
            ("provide_user_data", {"call_id": "nope", "field": "zip_code", "value": "12345"}),
            ("learn_call_flow", {"call_id": "nope"}),
        ]:
            assert "no call with id 'nope'" in error_text(await client.call_tool(tool, args)), tool
        assert "no call flow with id 'nope'" in error_text(await client.call_tool("get_call_flow", {"flow_id": "nope"}))
        with pytest.raises(MCPError, match="no call with id 'nope'"):
            await client.read_resource("holdslayer://calls/nope/transcript")
    assert not stack.pbx.company_calls


async def test_keys_wait_for_an_answer_and_a_dead_call_teaches_nothing(stack: Stack):
    async with connect(stack, "streamable_http") as client:
        call_id = structured(await client.call_tool("place_call", {"number": BUSY}))["call_id"]
        # Busy: never answered, so there is no line to press keys on.
        assert "not answered yet" in error_text(
            await client.call_tool("send_dtmf", {"call_id": call_id, "digits": "1"})
        )
        assert "digits" in error_text(await client.call_tool("send_dtmf", {"call_id": call_id, "digits": "12x"}))
        ended = structured(await client.call_tool("wait_for_person", {"call_id": call_id, "timeout_seconds": 30}))
        assert (ended["outcome"], ended["status"], ended["reason"]) == ("ended", "failed", "busy")
        assert "is not running" in error_text(await client.call_tool("send_dtmf", {"call_id": call_id, "digits": "1"}))

        dead = structured(await client.call_tool("place_call", {"number": NOT_IN_SERVICE}))["call_id"]
        await stack.wait_final(dead)
        learned = await client.call_tool("learn_call_flow", {"call_id": dead})
    assert learned.is_error and error_text(learned)
    await stack.assert_pbx_clean()


async def test_stored_call_flows_are_listed_and_read(stack: Stack):
    async with connect(stack, "sse") as client:
        flows = structured(await client.call_tool("list_call_flows", {}))["flows"]
        menu = next(f for f in flows if f["phone_number"] == MENU)
        flow = structured(await client.call_tool("get_call_flow", {"flow_id": menu["id"]}))
    assert flow["id"] == menu["id"] and len(flow["steps"]) == menu["steps"] > 0
    assert [s["dtmf"] for s in flow["steps"] if s.get("dtmf")] == ["2", "1"]


async def test_the_devices_are_listed_as_stored(stack: Stack):
    async with connect(stack, "streamable_http") as client:
        listed = structured(await client.call_tool("list_devices", {}))["devices"]
        assert listed == [
            {"name": "dead_phone", "dial_string": DEAD_PHONE, "label": "", "default": False},
            {"name": "sip_phone", "dial_string": USER_PHONE, "label": "", "default": True},
        ]
        status, _ = await stack.post("/api/devices", {"name": "desk", "dial_string": "PJSIP/desk", "default": True})
        assert status == 201
        listed = structured(await client.call_tool("list_devices", {}))["devices"]
    assert [(d["name"], d["default"]) for d in listed] == [("dead_phone", False), ("desk", True), ("sip_phone", False)]


async def test_both_transports_serve_at_once(stack: Stack):
    # One client places a call over SSE while another follows it over streamable HTTP.
    async with connect(stack, "sse") as placing, connect(stack, "streamable_http") as following:
        call_id = structured(await placing.call_tool("place_call", {"number": BUSY}))["call_id"]
        ended = structured(await following.call_tool("wait_for_person", {"call_id": call_id, "timeout_seconds": 30}))
        await stack.wait_final(call_id)  # the row is written from the events a moment after CALL_ENDED
        status = structured(await placing.call_tool("get_call_status", {"call_id": call_id}))
    assert (ended["outcome"], ended["reason"]) == ("ended", "busy")
    assert (status["status"], status["reason"], status["live"]) == ("failed", "busy", False)
    await stack.assert_pbx_clean()


async def test_waiting_on_a_call_that_just_ended_tells_how_it_ended(stack: Stack):
    # The session is gone the moment the call ends; the row follows the events a moment later.
    # Either way the answer is the outcome, with its reason, never "not running".
    import asyncio

    async with connect(stack, "streamable_http") as client:
        call_id = structured(await client.call_tool("place_call", {"number": BUSY}))["call_id"]
        async with asyncio.timeout(30):
            while stack.holdslayer.manager.session(call_id) is not None:
                await asyncio.sleep(0.01)
        ended = structured(await client.call_tool("wait_for_person", {"call_id": call_id, "timeout_seconds": 5}))
    assert (ended["outcome"], ended["status"], ended["reason"]) == ("ended", "failed", "busy")
    assert "BUSY" in ended["detail"]
