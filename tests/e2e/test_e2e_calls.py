"""Whole calls: REST -> app -> simulated PBX over real HTTP/WebSocket/UDP -> SQLite.

After every call the simulator must hold no channels and no bridges.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from app.audio.tones import ToneDetector
from app.calls.events import CallEvent, event_json_schema
from app.api.app import create_api
from app.config import Settings
from app.media.wavfile import read_wav
from app.runtime import HoldSlayer
from app.sim import SimConfig, SimulatedPBX, UserPhoneConfig, load_scenarios
from tests.audio_fixtures import best_match
from tests.conftest import REPO, ApiServer
from tests.loop_stalls import LoopStalls
from tests.emergency_numbers import BLOCKED_SETTINGS, REFUSED_NUMBERS, keyed, refusal_problem

pytestmark = pytest.mark.e2e

MENU = "5550001"
BUSY = "5550002"
NO_ANSWER = "5550003"
NOT_IN_SERVICE = "5550004"
HANGUP_ON_HOLD = "5550005"
LONG_HOLD = "5550006"

USER_PHONE = "PJSIP/userphone"
DEAD_PHONE = "PJSIP/deadphone"


class Stack:
    def __init__(self, pbx: SimulatedPBX, holdslayer: HoldSlayer, api: ApiServer, http):
        self.pbx, self.holdslayer, self.api, self.http = pbx, holdslayer, api, http

    async def post(self, path: str, json=None):
        async with self.http.post(self.api.base_url + path, json=json) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str):
        async with self.http.get(self.api.base_url + path) as resp:
            body = await resp.read()
            return resp.status, body, resp.headers.get("content-type", "")

    async def call(self, number: str, **extra) -> str:
        status, body = await self.post("/api/calls", {"number": number, "intent": "billing question", **extra})
        assert status == 201, body
        return body["call_id"]

    async def wait_final(self, call_id: str, timeout: float = 60.0) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with self.http.get(f"{self.api.base_url}/api/calls/{call_id}") as resp:
                call = await resp.json()
            if call["status"] in ("completed", "failed", "cancelled") and any(
                e["type"] == "CALL_ENDED" for e in call["events"]
            ):
                # Every event a call journals reads back as its type and matches the published schema.
                validator = jsonschema.Draft202012Validator(event_json_schema())
                for event in call["events"]:
                    validator.validate(event)
                    assert CallEvent.from_dict(event).to_dict() == event
                return call
            await asyncio.sleep(0.2)
        raise AssertionError(f"call {call_id} did not end within {timeout} s: {call['status']}\n{journal(call)}")

    async def wait_status(self, call_id: str, status: str, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            session = self.holdslayer.manager.session(call_id)
            if session is not None and session.status.value == status:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"call {call_id} never reached {status}")

    async def assert_pbx_clean(self) -> None:
        assert await self.pbx.wait_idle(timeout=5.0), f"left behind in the PBX: {self.pbx.snapshot()}"


def journal(call: dict, last: int = 60) -> str:
    """The call's newest events, one line each, for the message of a test that failed on it."""
    lines = []
    for event in call["events"][-last:]:
        data = {k: v for k, v in event["data"].items() if k not in ("window", "windows")}
        lines.append(f"  {event['at'][11:23]} {event['type']} {json.dumps(data, default=str)[:240]}")
    return "\n".join(lines)


def event_types(call: dict) -> list[str]:
    return [e["type"] for e in call["events"]]


def events_of(call: dict, type_: str) -> list[dict]:
    return [e["data"] for e in call["events"] if e["type"] == type_]


@asynccontextmanager
async def running_stack(
    tmp_path: Path,
    http,
    corpus,
    database_url: str,
    *,
    scenarios=None,
    user_phones=None,
    flows_dir: Path = REPO / "flows",
    detector_factory=None,
    **overrides,
) -> AsyncIterator[Stack]:
    """A simulated PBX, the app against it (on the test's database) and its REST API."""
    pbx = SimulatedPBX(
        SimConfig(
            scenarios=scenarios if scenarios is not None else load_scenarios(),
            user_phones=user_phones or {USER_PHONE: UserPhoneConfig(answer_after=0.5, hangup_after=8.0, speech="prompt:hello")},
            corpus=corpus,
        )
    )
    await pbx.start()
    settings = Settings(
        **{
            "ari_url": pbx.ari_url,
            "database_url": database_url,
            "recordings_dir": tmp_path / "recordings",
            "flows_dir": flows_dir,
            "user_devices": {"sip_phone": USER_PHONE},
            "dial_timeout": 5,
            "user_answer_timeout": 3.0,
            **overrides,
        }
    )
    holdslayer = HoldSlayer(settings, detector_factory=detector_factory)
    api = ApiServer(create_api(holdslayer))
    await holdslayer.start()
    await api.start()
    stalls = LoopStalls()
    stalls.start()
    try:
        yield Stack(pbx, holdslayer, api, http)
    finally:
        await stalls.stop()
        # Shown with a failing test's output: was the machine too loaded for real time?
        print(f"{stalls.summary()}; the PBX's audio skipped {pbx.media.skipped_seconds:.2f} s")
        await api.stop()
        await holdslayer.stop()
        await pbx.stop()


@pytest.fixture
async def stack(tmp_path: Path, corpus, http, database_url, request):
    user_phones = {
        USER_PHONE: UserPhoneConfig(answer_after=0.5, hangup_after=8.0, speech="prompt:hello"),
        DEAD_PHONE: UserPhoneConfig(answer_after=None),
    }
    overrides = dict(getattr(request, "param", {}))
    user_phones[USER_PHONE] = overrides.pop("user_phone", user_phones[USER_PHONE])
    overrides.setdefault("user_devices", {"sip_phone": USER_PHONE, "dead_phone": DEAD_PHONE})
    async with running_stack(tmp_path, http, corpus, database_url, user_phones=user_phones, **overrides) as running:
        yield running


async def test_success_through_a_two_level_menu(stack: Stack):
    call_id = await stack.call(MENU)
    call = await stack.wait_final(call_id, timeout=120)

    assert (call["status"], call["reason"]) == ("completed", "bridged"), call["detail"]
    assert [d["digits"] for d in events_of(call, "IVR_DTMF_SENT")] == ["2", "1"]
    types = event_types(call)
    for expected in ("CALL_ANSWERED", "HOLD_DETECTED", "HUMAN_DETECTED", "TRANSFER_STARTED", "TRANSFER_COMPLETE"):
        assert expected in types
    assert types.index("HOLD_DETECTED") < types.index("HUMAN_DETECTED") < types.index("TRANSFER_COMPLETE")
    human = events_of(call, "HUMAN_DETECTED")[0]
    assert 0 < human["confidence"] <= 1 and human["evidence"]
    assert call["flow_id"] == "test-menu"
    assert call["classifications"], "the classification history is stored"
    assert {c["audio_class"] for c in call["classifications"]} >= {"MUSIC"}

    company = next(c for c in stack.pbx.company_calls if c.number == MENU)
    assert company.dtmf == "21"
    assert company.reached_agent
    assert company.agent_heard_seconds > 0.5, "the agent heard our greeting"
    user = stack.pbx.user_calls[-1]
    assert user.answered and user.heard_seconds > 0.5, "the user heard the agent once bridged"

    status, body, content_type = await stack.get(call["recording_url"])
    assert status == 200 and content_type.startswith("audio/wav")
    recording = Path(stack.holdslayer.settings.recordings_dir) / f"{call_id}.wav"
    audio = read_wav(recording)
    assert audio.sample_rate == 8000 and audio.duration > 5
    await stack.assert_pbx_clean()


# The user answers the person's every turn ("hello"), says it into a silent line after 3 s, and
# stays 20 s: a conversation in the bridge, whenever the bridge is made after the phone answered.
TALKING_USER = UserPhoneConfig(
    answer_after=0.5, hangup_after=20.0, speech="prompt:hello", answers_prompt=True, hello_after_quiet=3.0
)


@pytest.mark.parametrize("stack", [{"user_phone": TALKING_USER}], indirect=True)
async def test_a_bridged_call_keeps_the_far_end_what_we_said_the_mix_and_the_conversation(stack: Stack, tmp_path: Path):
    call_id = await stack.call(LONG_HOLD)
    call = await stack.wait_final(call_id, timeout=150)
    assert (call["status"], call["reason"]) == ("completed", "bridged"), call["detail"]

    status, body, _ = await stack.get(f"/api/calls/{call_id}/recordings")
    assert status == 200
    listed = json.loads(body)["recordings"]
    assert [r["channel"] for r in listed] == ["far_end", "app", "mixed", "bridged"]
    audio = {}
    for entry in listed:
        status, data, content_type = await stack.get(entry["url"])
        assert status == 200 and content_type.startswith("audio/wav"), entry
        (tmp_path / f"{entry['channel']}.wav").write_bytes(data)
        audio[entry["channel"]] = read_wav(tmp_path / f"{entry['channel']}.wav").pcm
        assert len(audio[entry["channel"]]) / 8000 == pytest.approx(entry["seconds"], abs=0.01)
    far, ours, mixed, bridged = audio["far_end"], audio["app"], audio["mixed"], audio["bridged"]
    status, legacy, _ = await stack.get(f"/api/calls/{call_id}/recording")
    assert status == 200 and read_wav_bytes(legacy, tmp_path).tolist() == far.tolist(), "the old URL: the far end"

    # What we said lies on the far end's timeline: as long, and mixed with it sample for sample.
    assert len(far) == len(ours) == len(mixed)
    assert np.array_equal(mixed, np.clip(far.astype(np.int32) + ours, -32768, 32767))
    # Our words where the events say we spoke, the key we pressed, and digital silence elsewhere.
    lines = events_of(call, "AGENT_GREETED") + events_of(call, "HUMAN_PROBE")
    assert any(line["line"] == "greeting" for line in events_of(call, "AGENT_GREETED"))
    ours_at = np.zeros(len(ours), bool)
    for line in lines:
        start = round(line["t"] * 8000)
        assert rms_dbfs(ours[start + 400 : start + 4000]) > -35, f"no words at {line}"
        ours_at[max(0, start - 800) : start + round((line["seconds"] + 0.3) * 8000)] = True
    keys = dtmf_in(ours)
    assert [digit for digit, _ in keys] == ["1"], "the key the flow pressed"
    for _, t in keys:
        ours_at[round(t * 8000) - 800 : round(t * 8000) + 1600] = True
    assert ours_at.any() and not ours[~ours_at].any(), "silence wherever we said nothing"

    # The bridged conversation holds both: the user's hello and the person's words.
    assert best_match(bridged, stack.pbx.audio.clip("prompt:hello")) > 0.5, conversation_timeline(stack)
    agent = load_scenarios()[LONG_HOLD].nodes["agent"]
    assert max(best_match(bridged, stack.pbx.audio.clip(ref)) for ref in agent.clips()) > 0.5, conversation_timeline(stack)
    assert best_match(ours, stack.pbx.audio.clip("prompt:hello")) < 0.5, "the user is not in the app's file"
    await stack.assert_pbx_clean()
    assert not stack.pbx.model.recordings.list(), "the recording was deleted from the PBX once fetched"


def conversation_timeline(stack: Stack) -> str:
    """What the person said and when the user's phone rang, answered and heard words: the story
    behind a bridged recording that lacks someone."""
    company, user = stack.pbx.company_calls[-1], stack.pbx.user_calls[-1]
    start = company.answered_at or 0.0
    said = [f"{u.what}@{u.started_at - start:.1f}s+{u.seconds:.1f}" for u in company.utterances]
    at = lambda t: "never" if t is None else f"{t - start:.1f}s"  # noqa: E731
    return (
        f"person said {said}; user dialled {at(user.dialled_at)}, answered {at(user.answered_at)}, "
        f"heard {user.heard_seconds:.1f}s of words; person heard the caller first at {at(company.heard_caller_at)}"
    )


def read_wav_bytes(data: bytes, directory: Path) -> np.ndarray:
    path = directory / "fetched.wav"
    path.write_bytes(data)
    return read_wav(path).pcm


def rms_dbfs(pcm: np.ndarray) -> float:
    return 20 * float(np.log10(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) / 32768 + 1e-12))


def dtmf_in(pcm: np.ndarray) -> list[tuple[str, float]]:
    detector = ToneDetector()
    return [
        (event.detail["digit"], event.t)
        for start in range(0, len(pcm), 160)
        for event in detector.push(pcm[start : start + 160], start / 8000)
        if event.kind == "dtmf"
    ]


async def test_busy(stack: Stack):
    call = await stack.wait_final(await stack.call(BUSY))
    assert (call["status"], call["reason"]) == ("failed", "busy")
    assert "CALL_ANSWERED" not in event_types(call)
    await stack.assert_pbx_clean()


async def test_no_answer(stack: Stack):
    call = await stack.wait_final(await stack.call(NO_ANSWER))
    assert (call["status"], call["reason"]) == ("failed", "no_answer")
    assert "CALL_RINGING" in event_types(call)
    await stack.assert_pbx_clean()


async def test_not_in_service(stack: Stack):
    call = await stack.wait_final(await stack.call(NOT_IN_SERVICE))
    assert (call["status"], call["reason"]) == ("failed", "not_in_service")
    sit = [d for d in events_of(call, "TONE_DETECTED") if d["kind"] == "sit"]
    assert sit and sit[0]["detail"]["cause"] == "intercept", "recognised by its SIT, before the hang-up"
    await stack.assert_pbx_clean()


async def test_company_hangs_up_during_hold(stack: Stack):
    call = await stack.wait_final(await stack.call(HANGUP_ON_HOLD))
    assert (call["status"], call["reason"]) == ("failed", "company_hangup")
    assert "on_hold" in call["detail"]
    company = next(c for c in stack.pbx.company_calls if c.number == HANGUP_ON_HOLD)
    assert company.path[-1] == "hold" and company.ended_by == "far_end"
    assert "HUMAN_DETECTED" not in event_types(call)
    await stack.assert_pbx_clean()


async def test_user_phone_does_not_answer(stack: Stack):
    call = await stack.wait_final(await stack.call(MENU, device="dead_phone"))
    assert (call["status"], call["reason"]) == ("failed", "user_no_answer")
    assert "TRANSFER_STARTED" in event_types(call) and "TRANSFER_COMPLETE" not in event_types(call)
    await stack.assert_pbx_clean()


async def test_websocket_dropped_mid_hold_and_reconnected(stack: Stack):
    call_id = await stack.call(LONG_HOLD)
    await stack.wait_status(call_id, "on_hold")
    await asyncio.sleep(1.0)
    await stack.pbx.drop_event_websockets()
    call = await stack.wait_final(call_id, timeout=150)
    assert (call["status"], call["reason"]) == ("completed", "bridged"), call["detail"]
    assert stack.holdslayer.stream.reconnects >= 1
    assert "ARI_RECONNECTED" in event_types(call)
    await stack.assert_pbx_clean()


@pytest.mark.parametrize("stack", [{"max_hold_time": 3.0}], indirect=True)
async def test_max_hold_time(stack: Stack):
    call = await stack.wait_final(await stack.call(LONG_HOLD))
    assert (call["status"], call["reason"]) == ("failed", "max_hold_time")
    await stack.assert_pbx_clean()


async def test_cancel_during_hold(stack: Stack):
    call_id = await stack.call(LONG_HOLD)
    await stack.wait_status(call_id, "on_hold")
    status, body = await stack.post(f"/api/calls/{call_id}/hangup")
    assert status == 202 and body["cancelled"] is True
    call = await stack.wait_final(call_id)
    assert (call["status"], call["reason"]) == ("cancelled", "cancelled")
    status, body = await stack.post(f"/api/calls/{call_id}/hangup")
    assert status == 409
    await stack.assert_pbx_clean()


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"intent": "x"}, "number"),
        ({"number": "call me maybe"}, "number"),
        ({"number": "5550001", "device": "fax"}, "device"),
        ({"number": "5550001", "flow_id": "nope"}, "flow_id"),
        ({"number": "5550001", "user_data": "not a dict"}, "user_data"),
    ],
)
async def test_invalid_call_requests_name_the_field(stack: Stack, payload, field):
    status, body = await stack.post("/api/calls", payload)
    assert status == 422
    assert any(field in err["loc"] for err in body["detail"]), body
    assert not stack.pbx.company_calls, "nothing was dialled"


@pytest.mark.parametrize("stack", [BLOCKED_SETTINGS], indirect=True)
async def test_emergency_and_blocked_numbers_are_refused_and_never_dialled(stack: Stack):
    # Every number of the shared list, on one stack: each is a 422 naming what it reaches.
    problems = []
    for number, code in REFUSED_NUMBERS.items():
        status, body = await stack.post("/api/calls", {"number": number, "intent": "help"})
        reasons = [err["msg"] for err in body["detail"] if "number" in err["loc"]] if status == 422 else []
        if not reasons:
            problems.append(f"{number!r}: {status} {body}")
        elif (problem := refusal_problem(number, code, reasons[0])) is not None:
            problems.append(problem)
    assert problems == []
    async with stack.http.get(stack.api.base_url + "/api/calls") as resp:
        assert await resp.json() == [], "no call was created"
    assert not stack.pbx.company_calls, "nothing was dialled"
    assert not stack.pbx.snapshot()["channels"]


async def test_transfer_now_puts_the_user_through_from_hold(stack: Stack):
    call_id = await stack.call(LONG_HOLD)
    status, body = await stack.post(f"/api/calls/{call_id}/transfer")
    assert status == 409, "not answered yet: nothing to put through"
    await stack.wait_status(call_id, "on_hold", timeout=30)
    status, body = await stack.post(f"/api/calls/{call_id}/transfer")
    assert status == 202 and body["transferring"] is True
    call = await stack.wait_final(call_id)
    assert (call["status"], call["reason"]) == ("completed", "bridged")
    detected = events_of(call, "HUMAN_DETECTED")
    assert detected and detected[0]["evidence"] == {"rule": "the user asked"}
    status, _ = await stack.post(f"/api/calls/{call_id}/transfer")
    assert status == 409, "over: nothing to put through"
    status, _ = await stack.post("/api/calls/nosuchcall/transfer")
    assert status == 404
    await stack.assert_pbx_clean()


async def test_keys_pressed_by_hand_reach_the_company(stack: Stack):
    call_id = await stack.call(LONG_HOLD)
    await stack.wait_status(call_id, "on_hold", timeout=30)
    status, body = await stack.post(f"/api/calls/{call_id}/dtmf", {"digits": "5#"})
    assert status == 202 and body["sent"] is True
    status, body = await stack.post(f"/api/calls/{call_id}/dtmf", {"digits": "5; DROP"})
    assert status == 422 and any("digits" in err["loc"] for err in body["detail"])
    status, _ = await stack.post("/api/calls/nosuchcall/dtmf", {"digits": "1"})
    assert status == 404
    await stack.post(f"/api/calls/{call_id}/hangup")
    call = await stack.wait_final(call_id)
    manual = [d for d in events_of(call, "IVR_DTMF_SENT") if d.get("purpose") == "manual"]
    assert [d["digits"] for d in manual] == ["5#"]
    company = next(c for c in stack.pbx.company_calls if c.number == LONG_HOLD)
    assert company.dtmf.endswith("5#"), company.dtmf
    status, _ = await stack.post(f"/api/calls/{call_id}/dtmf", {"digits": "1"})
    assert status == 409, "over: no keys"
    await stack.assert_pbx_clean()


async def test_unknown_call_is_404(stack: Stack):
    status, _, _ = await stack.get("/api/calls/doesnotexist")
    assert status == 404
    status, body = await stack.post("/api/calls/doesnotexist/hangup")
    assert status == 404


async def test_all_circuits_busy_is_told_apart_by_its_special_information_tone(stack: Stack):
    # All-circuits-busy answers, plays its announcement and ends with cause 16 (capture c), which
    # alone looks like a company hanging up; the no-circuit SIT before it says what it is.
    call = await stack.wait_final(await stack.call("5550007"))
    assert (call["status"], call["reason"]) == ("failed", "congestion")
    assert "no_circuit" in call["detail"]
    await stack.assert_pbx_clean()


async def test_a_device_made_through_the_api_is_the_one_rung(stack: Stack):
    # A new default device, only in the store, and the settings' sip_phone deleted: the call names
    # no device and its flow names sip_phone, so it rings the default.
    status, desk = await stack.post("/api/devices", {"name": "desk", "dial_string": USER_PHONE, "default": True})
    assert (status, desk["default"]) == (201, True)
    async with stack.http.delete(stack.api.base_url + "/api/devices/sip_phone") as resp:
        assert resp.status == 204
    flow = await asyncio.to_thread(stack.holdslayer.store.find_flow_for_number, MENU)
    assert flow.steps[-1].metadata["device"] == "sip_phone"
    call_id = await stack.call(MENU)
    call = await stack.wait_final(call_id, timeout=120)

    assert (call["status"], call["reason"], call["device"]) == ("completed", "bridged", "desk"), call["detail"]
    assert events_of(call, "TRANSFER_STARTED") == [{"device": "desk", "dial_string": USER_PHONE}]
    await stack.assert_pbx_clean()


async def test_start_up_removes_what_a_crashed_run_left_in_the_pbx(tmp_path, corpus, database_url):
    # A crash mid-call leaves the call's channels and bridges in Asterisk and its row unfinished.
    from app.ari.client import AriClient
    from app.calls.models import CallRequest
    from app.store.repository import Store

    pbx = SimulatedPBX(SimConfig(scenarios=load_scenarios(), corpus=corpus))
    await pbx.start()
    db_url = database_url
    Store(db_url).create_call("crashed", CallRequest(number=MENU), "sip_phone", None, None)
    settings = Settings(ari_url=pbx.ari_url, database_url=db_url, recordings_dir=tmp_path / "rec", flows_dir=REPO / "flows")
    async with AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.ari_app) as ari:
        listener = HoldSlayer(settings)  # only to hold the app's websocket so channels enter Stasis
        await listener.stream.start()
        await ari.create_bridge("hs-crashed-hold")
        await ari.create_channel(f"PJSIP/{LONG_HOLD}@trunk", "hs-crashed-co", app_args="company,crashed", formats="ulaw")
        await listener.stream.stop()
        await listener.ari.close()
    assert pbx.snapshot()["channels"] and pbx.snapshot()["bridges"]

    holdslayer = HoldSlayer(settings)
    await holdslayer.start()
    try:
        assert await pbx.wait_idle(timeout=5.0), pbx.snapshot()
        record = holdslayer.store.get_call("crashed")
        assert (record.status, record.reason) == ("failed", "app_restarted")
    finally:
        await holdslayer.stop()
        await pbx.stop()


async def test_dial_in_from_the_users_phone_starts_a_call(stack: Stack):
    # The user dials the prefix + a number; Asterisk hands it to Stasis(holdslayer,dial,<number>).
    channel_id = await stack.pbx.place_inbound_call(BUSY, endpoint=USER_PHONE)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 40  # the app asks what the call is about and reads the answer back first
    calls: list = []
    while loop.time() < deadline and not calls:
        async with stack.http.get(stack.api.base_url + "/api/calls") as resp:
            calls = [c for c in await resp.json() if c["number"] == BUSY]
        await asyncio.sleep(0.1)
    assert calls, "the dial-in started no call"
    assert calls[0]["device"] == "sip_phone", "the phone that dialled is the one rung back"
    call = await stack.wait_final(calls[0]["call_id"])
    assert (call["status"], call["reason"]) == ("failed", "busy")
    await stack.assert_pbx_clean()
    inbound = next(u for u in stack.pbx.user_calls if u.channel_id == channel_id)
    assert inbound.answered and inbound.heard_seconds > 0.3, "the user heard the acknowledgement"


@pytest.mark.parametrize("stack", [BLOCKED_SETTINGS], indirect=True)
async def test_dial_in_to_an_emergency_or_blocked_number_is_refused_and_never_dialled(stack: Stack, caplog):
    # The whole shared list at once, as the phone's keys send each: every dial-in is answered,
    # hears the refusal and is hung up; nothing else is dialled (no company, no call back).
    caplog.set_level(logging.WARNING, logger="app.calls.dial_in")
    dialled = {keyed(number): code for number, code in REFUSED_NUMBERS.items()}
    inbound_ids = {await stack.pbx.place_inbound_call(exten, endpoint=USER_PHONE): exten for exten in dialled}
    assert await stack.pbx.wait_idle(timeout=20.0), f"left behind in the PBX: {stack.pbx.snapshot()}"
    for channel_id, exten in inbound_ids.items():
        inbound = next(u for u in stack.pbx.user_calls if u.channel_id == channel_id)
        assert inbound.answered and inbound.heard_seconds > 0.3, f"{exten}: the user heard no refusal"
    assert not stack.pbx.company_calls, "nothing was dialled"
    assert {u.channel_id for u in stack.pbx.user_calls} == set(inbound_ids), "no phone was rung"
    async with stack.http.get(stack.api.base_url + "/api/calls") as resp:
        assert await resp.json() == []
    rejections = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    problems = []
    for exten, code in dialled.items():
        said = [m for m in rejections if f" to {exten!r} rejected" in m]
        if not said:
            problems.append(f"{exten!r}: no refusal logged")
        elif (problem := refusal_problem(exten, code, said[0])) is not None:
            problems.append(problem)
    assert problems == []


async def test_dial_in_asks_what_the_call_is_about_then_calls_and_rings_back(tmp_path: Path, http, corpus, database_url):
    phone = "PJSIP/talkingphone"
    user_phones = {
        phone: UserPhoneConfig(
            answer_after=0.5, hangup_after=25.0, speech="tts:I want to dispute a charge on my bill.", answers_prompt=True
        )
    }
    async with running_stack(
        tmp_path, http, corpus, database_url, user_phones=user_phones, user_devices={"sip_phone": phone}
    ) as stack:
        channel_id = await stack.pbx.place_inbound_call(LONG_HOLD, endpoint=phone)
        loop = asyncio.get_running_loop()
        deadline, calls = loop.time() + 60, []
        while loop.time() < deadline and not calls:
            async with stack.http.get(stack.api.base_url + "/api/calls") as resp:
                calls = [c for c in await resp.json() if c["number"] == LONG_HOLD]
            await asyncio.sleep(0.2)
        assert calls, "the dial-in started no call"
        assert "dispute" in calls[0]["intent"].lower() and "charge" in calls[0]["intent"].lower(), calls[0]["intent"]
        inbound = next(u for u in stack.pbx.user_calls if u.channel_id == channel_id)
        assert inbound.end_cause is not None, "the app hung up the dial-in before calling"
        assert inbound.heard_seconds > 4, "the user heard the question and the read-back"
        call = await stack.wait_final(calls[0]["call_id"], timeout=120)
        assert (call["status"], call["reason"]) == ("completed", "bridged"), call["detail"]
        callback = [u for u in stack.pbx.user_calls if u.channel_id != channel_id]
        assert callback and callback[-1].endpoint == phone and callback[-1].answered, "the same phone was rung back"
        await stack.assert_pbx_clean()


async def test_dial_in_with_a_bad_number_is_refused_politely(stack: Stack):
    channel_id = await stack.pbx.place_inbound_call("x", endpoint=USER_PHONE)
    inbound = next(u for u in stack.pbx.user_calls if u.channel_id == channel_id)
    await stack.assert_pbx_clean()
    assert inbound.answered and inbound.heard_seconds > 0.3
    async with stack.http.get(stack.api.base_url + "/api/calls") as resp:
        assert await resp.json() == []
