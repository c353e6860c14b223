"""A whole call whose flow leaves the menus to the navigator: REST -> app -> simulated PBX, each
menu heard through local speech-to-text (Whisper) and answered by the offline navigator.

The company is the simulator's Acme Bank (its real recorded menus: "... To speak with a customer
advocate, press two ..."), with its hold shortened so the test stays short. Its flow file
(flows/acme-bank.yaml) keys the digits itself; this call names a flow whose LISTEN steps have
none, so every key must come from what speech-to-text heard. Numbers with no flow at all
(exploring, then learned flows) are test_e2e_nav_scenarios.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.calls.listening import flow_needs_listener
from app.ivr.flow import CallFlow
from app.sim import UserPhoneConfig, load_scenarios
from tests.e2e.test_e2e_calls import USER_PHONE, Stack, event_types, events_of, journal, running_stack

pytestmark = pytest.mark.e2e

ACME = "8005550100"
INTENT = "talk to a customer advocate"
HOLD_SECONDS = 8.0

NAVIGATED_FLOW = {
    "id": "acme-bank-navigate",
    "name": "Acme Bank - the navigator answers every menu",
    "company": "Acme Bank",
    "phone_number": ACME,
    "steps": [
        {"id": "main_menu", "type": "LISTEN", "description": "Main menu: the navigator chooses", "timeout": 40,
         "conditions": {"on_hold": "hold", "on_human": "transfer"}},
        {"id": "advocate_menu", "type": "LISTEN", "description": "Second menu: the navigator chooses", "timeout": 30,
         "conditions": {"on_hold": "hold", "on_human": "transfer"}},
        {"id": "hold", "type": "HOLD", "description": "Wait on hold", "conditions": {"on_human": "transfer"}},
        {"id": "transfer", "type": "TRANSFER", "description": "Bridge the user", "metadata": {"device": "sip_phone"}},
    ],
}  # fmt: skip


def short_hold_scenarios() -> dict:
    scenarios = load_scenarios()
    acme = scenarios[ACME]
    hold = acme.nodes["hold"].model_copy(update={"seconds": HOLD_SECONDS, "announcements": []})
    scenarios[ACME] = acme.model_copy(update={"ring_seconds": 1.0, "nodes": {**acme.nodes, "hold": hold}})
    return scenarios


@pytest.fixture
async def stack(tmp_path: Path, corpus, http, database_url):
    user_phones = {USER_PHONE: UserPhoneConfig(answer_after=0.5, hangup_after=8.0, speech="prompt:hello")}
    async with running_stack(
        tmp_path, http, corpus, database_url, scenarios=short_hold_scenarios(), user_phones=user_phones,
        navigator="offline", stt_provider="local",
    ) as running:  # fmt: skip
        yield running


def test_only_flows_with_an_open_listen_step_need_speech_to_text():
    navigated = CallFlow.model_validate(NAVIGATED_FLOW)
    keyed = navigated.model_copy(
        update={"steps": [s.model_copy(update={"dtmf": "2"}) if s.type.value == "LISTEN" else s for s in navigated.steps]}
    )
    assert flow_needs_listener(navigated)
    assert not flow_needs_listener(keyed)
    assert not flow_needs_listener(None)


@pytest.mark.timeout(170)
async def test_the_navigator_answers_the_menus_from_their_transcripts(stack: Stack):
    status, body = await stack.post("/api/call-flows", NAVIGATED_FLOW)
    assert status == 201, body

    status, body = await stack.post("/api/calls", {"number": ACME, "intent": INTENT, "flow_id": NAVIGATED_FLOW["id"]})
    assert status == 201, body
    # The call runs in real time (~65 s: two menus read in full, hold, the agent's greeting and
    # the pause after it); a loaded 2-core CI machine transcribes the menus slower.
    call = await stack.wait_final(body["call_id"], timeout=150.0)

    heard = [(e["type"], e["data"]) for e in call["events"] if e["type"].startswith("IVR_")]
    assert (call["status"], call["reason"]) == ("completed", "bridged"), (call["detail"], heard)
    assert call["flow_id"] == NAVIGATED_FLOW["id"]

    menus = {d["step_id"]: d for d in events_of(call, "IVR_MENU_DETECTED")}
    assert "customer advocate" in menus["main_menu"]["transcript"].lower()
    offered = {step: [o["key"] for o in menu["options"]] for step, menu in menus.items()}
    assert "2" in offered["main_menu"] and menus["main_menu"]["stt"] == "local"
    assert menus["main_menu"]["heard_seconds"] > 5, "the whole main menu was read before choosing"

    sent = events_of(call, "IVR_DTMF_SENT")
    assert [d["step_id"] for d in sent] == ["main_menu", "advocate_menu"], journal(call)
    for pressed in sent:
        assert pressed["navigator"] == "offline" and pressed["reason"]
        assert pressed["action"] == {"action": "press_digits", "digits": pressed["digits"]}
        assert pressed["digits"] in offered[pressed["step_id"]], "a key the menu offered"
    assert sent[0]["digits"] == "2", sent[0]["reason"]

    types = event_types(call)
    assert types.index("IVR_DTMF_SENT") < types.index("HOLD_DETECTED") < types.index("TRANSFER_COMPLETE")
    company = next(c for c in stack.pbx.company_calls if c.number == ACME)
    assert company.path[:2] == ["main", "advocates"] and company.reached_agent
    assert company.dtmf == "".join(d["digits"] for d in sent)
    await stack.assert_pbx_clean()
