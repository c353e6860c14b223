"""The user data vault end to end: REST -> app -> simulated PBX (First Harbor Bank, nav-account.yaml),
whose first prompt is "Please enter your account number, followed by the pound key".

- The caller gave the account number: it is keyed from the vault (the bank's log shows it; the
  call's own events never do) and the call goes on to the menu and the chosen queue.
- The caller did not: the call asks (USER_DATA_REQUESTED), waits instead of guessing, the answer
  arrives through POST /api/calls/{id}/user-data, and the call goes on the same way.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.media.wavfile import read_wav
from app.sim import UserPhoneConfig
from tests.e2e.test_e2e_calls import USER_PHONE, Stack, dtmf_in, events_of, running_stack

pytestmark = pytest.mark.e2e

BANK = "5551006"
ACCOUNT = "12345678"
INTENT = "Report a stolen debit card"
DESTINATION = "hold_cards"


@pytest.fixture
async def stack(tmp_path: Path, corpus, http, database_url):
    user_phones = {USER_PHONE: UserPhoneConfig(answer_after=0.5, hangup_after=2.0, speech="prompt:hello")}
    flows = tmp_path / "flows"  # no flow: the bank's menus are explored
    flows.mkdir()
    async with running_stack(
        tmp_path, http, corpus, database_url, user_phones=user_phones, flows_dir=flows, navigator="offline"
    ) as running:
        yield running


async def wait_for_event(stack: Stack, call_id: str, type_: str, timeout: float) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        session = stack.holdslayer.manager.session(call_id)
        found = [e["data"] for e in (session.events if session else []) if e["type"] == type_]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {type_} within {timeout} s")


def navigation_journal(call: dict) -> list[tuple[str, dict]]:
    """What the call heard and did in the menus: the explanation when it went the wrong way."""
    wanted = {"IVR_MENU_DETECTED", "IVR_DTMF_SENT", "IVR_SPEECH_SENT", "IVR_STUCK", "IVR_STEP"}
    return [(e["type"], e["data"]) for e in call["events"] if e["type"] in wanted]


def bank_call(stack: Stack):
    return next(c for c in reversed(stack.pbx.company_calls) if c.number == BANK)


@pytest.mark.timeout(150)
async def test_an_account_number_from_the_vault_is_keyed_and_never_shown(stack: Stack):
    status, body = await stack.post(
        "/api/calls", {"number": BANK, "intent": INTENT, "user_data": {"account_number": ACCOUNT}}
    )
    assert status == 201, body
    call = await stack.wait_final(body["call_id"], timeout=120.0)

    bank = bank_call(stack)
    assert bank.entered.get("account") == ACCOUNT, bank.entered
    assert bank.reached(DESTINATION), (bank.path, navigation_journal(call))
    entries = [d for d in events_of(call, "IVR_DTMF_SENT") if d.get("purpose") == "user_data"]
    assert len(entries) == 1 and entries[0]["field"] == "account_number"
    assert entries[0]["digits"] == "*" * len(ACCOUNT + "#"), "the value never reaches the journal"
    assert ACCOUNT not in str(call["events"])
    assert not events_of(call, "USER_DATA_REQUESTED"), "nothing to ask: the vault had it"
    # The app's recording keeps the keys it chose itself, and the account number only as a tone.
    saved = {d.get("channel", "far_end"): d for d in events_of(call, "RECORDING_SAVED")}
    ours = read_wav(saved["app"]["path"]).pcm
    chosen = "".join(d["digits"] for d in events_of(call, "IVR_DTMF_SENT") if d.get("purpose") != "user_data")
    assert "".join(digit for digit, _ in dtmf_in(ours)) == chosen


@pytest.mark.timeout(150)
async def test_a_missing_account_number_is_asked_for_and_the_call_goes_on(stack: Stack):
    status, body = await stack.post("/api/calls", {"number": BANK, "intent": INTENT})
    assert status == 201, body
    call_id = body["call_id"]

    asked = await wait_for_event(stack, call_id, "USER_DATA_REQUESTED", timeout=60.0)
    assert asked["field"] == "account_number" and "account number" in asked["question"].lower()
    assert asked["timeout_seconds"] > 0
    assert "account number" in asked["transcript"].lower()
    assert bank_call(stack).dtmf == "", "the call waits for the user instead of guessing"

    # Bad answers are refused with a reason and lose nothing.
    status, body = await stack.post(f"/api/calls/{call_id}/user-data", {"field": "account_number"})
    assert status == 422, body
    status, body = await stack.post(f"/api/calls/{call_id}/user-data", {"field": "ssn", "value": "123456789"})
    assert status == 422 and "never" in body["detail"], body
    status, body = await stack.post("/api/calls/nosuchcall/user-data", {"field": "account_number", "value": ACCOUNT})
    assert status == 404, body

    status, body = await stack.post(f"/api/calls/{call_id}/user-data", {"field": "account_number", "value": ACCOUNT})
    assert status == 202 and body == {"call_id": call_id, "field": "account_number", "accepted": True}, body
    call = await stack.wait_final(call_id, timeout=120.0)

    bank = bank_call(stack)
    assert bank.entered.get("account") == ACCOUNT, bank.entered
    assert bank.reached(DESTINATION), (bank.path, navigation_journal(call))
    types = [e["type"] for e in call["events"]]
    assert types.index("USER_DATA_REQUESTED") < types.index("USER_DATA_RECEIVED") < types.index("HOLD_DETECTED")
    assert ACCOUNT not in str(call["events"])

    status, body = await stack.post(f"/api/calls/{call_id}/user-data", {"field": "account_number", "value": ACCOUNT})
    assert status == 409 and "not running" in body["detail"], body
