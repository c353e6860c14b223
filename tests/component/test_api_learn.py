"""POST /api/call-flows/learn against the real API server and a real SQLite file.

Calls and their journals are written straight into the store, as the StoreWriter would have.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.calls.events import CallEvent
from app.calls.models import CallRequest
from app.ivr.flow import CallFlow
from app.store import Store
from tests.conftest import api_without_calls
from tests.unit.test_learner import ADVOCATE_MENU, MAIN_MENU, MAIN_MENU_AGAIN, MAIN_MENU_REORDERED, Journal

NUMBER = "18005550199"  # no shipped flow has it


@dataclass
class Api:
    call: Any
    store: Store


@pytest.fixture
async def api(tmp_path: Path, corpus, http, database_url):
    async with api_without_calls(tmp_path, http, corpus, database_url) as (call, holdslayer):
        yield Api(call, holdslayer.store)


def record_call(store: Store, call_id: str, journal: Journal, status: str = "completed", company: str | None = "Globex") -> None:
    request = CallRequest(number=NUMBER, intent="speak with a customer advocate")
    store.create_call(call_id, request, "sip_phone", company=company)
    store.add_events(
        [CallEvent.from_dict({**e, "call_id": call_id}) for e in journal.events]
    )
    store.update_call(call_id, status=status)


async def journaled(api: Api, call_id: str, event_type: str, timeout: float = 5.0) -> dict[str, Any]:
    """The data of the call's first ``event_type`` event once the StoreWriter has journaled it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, call = await api.call("GET", f"/api/calls/{call_id}")
        found = [e["data"] for e in call["events"] if e["type"] == event_type]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, f"no {event_type} journaled for {call_id}"
        await asyncio.sleep(0.05)


def explored(call_id: str, main_menu: str = MAIN_MENU, choice: str = "2") -> Journal:
    return (
        Journal(call_id)
        .menu("explore", main_menu, seconds=21.4).press("explore", choice)
        .menu("explore", ADVOCATE_MENU, seconds=9).press("explore", "1")
        .hold().human().ended()
    )  # fmt: skip


async def test_a_first_call_creates_the_flow_and_a_second_makes_version_2(api):
    record_call(api.store, "c1", explored("c1"))
    status, flow = await api.call("POST", "/api/call-flows/learn", {"call_id": "c1"})
    assert status == 201
    assert (flow["id"], flow["company"], flow["phone_number"], flow["version"]) == ("globex", "Globex", NUMBER, 1)
    assert [(s["type"], s["dtmf"]) for s in flow["steps"]] == [
        ("LISTEN", "2"), ("LISTEN", "1"), ("HOLD", None), ("TRANSFER", None),
    ]  # fmt: skip
    assert flow["steps"][0]["metadata"]["expected_transcript"] == MAIN_MENU
    assert (await api.call("GET", "/api/call-flows/globex"))[1] == flow
    learned = await journaled(api, "c1", "FLOW_LEARNED")
    assert learned == {"flow_id": "globex", "version": 1, "steps": ["menu_1", "menu_2", "hold", "transfer"], "merged": False}

    replay = (
        Journal("c2")
        .menu("menu_1", MAIN_MENU_AGAIN).press("menu_1", "2", purpose="flow")
        .menu("menu_2", ADVOCATE_MENU).press("menu_2", "1", purpose="flow")
        .hold().human().ended()
    )  # fmt: skip
    record_call(api.store, "c2", replay)
    status, merged = await api.call("POST", "/api/call-flows/learn", {"call_id": "c2"})
    assert status == 200
    assert (merged["id"], merged["version"], merged["success_count"]) == ("globex", 2, 1)
    assert merged["steps"] == flow["steps"]
    assert api.store.get_flow("globex").version == 2
    assert (await journaled(api, "c2", "FLOW_LEARNED"))["merged"] is True


async def test_the_body_overrides_the_calls_number_company_and_intent(api):
    record_call(api.store, "c1", explored("c1"), company=None)
    body = {"call_id": "c1", "phone_number": "+1 (800) 555-0142", "company": "Initech", "intent": "billing"}
    status, flow = await api.call("POST", "/api/call-flows/learn", body)
    assert status == 201
    assert (flow["id"], flow["company"], flow["phone_number"]) == ("initech", "Initech", "+18005550142")
    assert flow["name"] == "Initech - billing" and flow["steps"][0]["metadata"]["intent"] == "billing"
    assert api.store.find_flow_for_number("+18005550142").id == "initech"


async def test_a_stale_flow_is_relearned_and_usable_again(api):
    record_call(api.store, "c1", explored("c1"))
    assert (await api.call("POST", "/api/call-flows/learn", {"call_id": "c1"}))[0] == 201
    api.store.set_flow_stale("globex")  # the menu changed under it
    assert api.store.find_flow_for_number(NUMBER) is None

    record_call(api.store, "c2", explored("c2", MAIN_MENU_REORDERED, choice="3"))
    status, flow = await api.call("POST", "/api/call-flows/learn", {"call_id": "c2"})
    assert status == 200 and flow["version"] == 2 and flow["steps"][0]["dtmf"] == "3"
    assert api.store.find_flow_for_number(NUMBER).version == 2


async def test_a_company_flow_for_another_number_is_not_overwritten(api):
    other = CallFlow(
        id="globex", name="Globex sales", company="Globex", phone_number="18005550000",
        steps=[{"id": "hold", "type": "HOLD"}, {"id": "transfer", "type": "TRANSFER"}],
    )  # fmt: skip
    api.store.upsert_flow(other)
    record_call(api.store, "c1", explored("c1"))
    status, flow = await api.call("POST", "/api/call-flows/learn", {"call_id": "c1"})
    assert status == 201 and flow["id"] == f"globex-{NUMBER}"
    assert api.store.get_flow("globex") == other


async def test_an_unknown_call_is_404(api):
    status, body = await api.call("POST", "/api/call-flows/learn", {"call_id": "nope"})
    assert status == 404 and body["detail"] == "no call with id 'nope'"


async def test_a_running_call_is_409(api):
    record_call(api.store, "c1", explored("c1"), status="on_hold")
    status, body = await api.call("POST", "/api/call-flows/learn", {"call_id": "c1"})
    assert status == 409 and "still running (on_hold)" in body["detail"]
    assert api.store.list_flows(company="Globex") == []


@pytest.mark.parametrize(
    "journal, reason",
    [
        (Journal("c1").ended("failed", "company_hangup"), "nothing to learn"),
        (
            Journal("c1").menu("explore", MAIN_MENU).press("explore", "2").ended("failed", "company_hangup"),
            "never got past the menus",
        ),
    ],
    ids=["no menu", "no hold"],
)
async def test_a_call_that_teaches_nothing_is_422_with_the_reason(api, journal, reason):
    record_call(api.store, "c1", journal, status="failed")
    status, body = await api.call("POST", "/api/call-flows/learn", {"call_id": "c1"})
    assert status == 422
    (error,) = body["detail"]
    assert error["loc"] == ["body", "call_id"] and reason in error["msg"]
    assert api.store.list_flows(company="Globex") == []


async def test_a_bad_number_in_the_body_is_422(api):
    record_call(api.store, "c1", explored("c1"))
    status, body = await api.call("POST", "/api/call-flows/learn", {"call_id": "c1", "phone_number": "call me"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "phone_number"]
