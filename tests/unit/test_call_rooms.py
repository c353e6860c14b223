"""The rooms of a call session, each built alone with fakes (no PBX, no sockets, no audio models).

``CallContext`` (waits, interrupts, events, status), ``Legs`` (the PBX through a fake ARI host),
``Hearing`` (audio in, detector outputs out as events, through a scripted detector) and
``outcomes`` (pure). ``FlowSteps`` is covered here where it needs no audio path; end to end in
``test_e2e_*``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.audio.tones import ToneEvent
from app.audio.types import AudioClass, Classification, HoldDetected, HumanDetected, HumanRetracted, HumanSuspected
from app.calls import events as ev
from app.calls import legs as legs_module
from app.calls.context import CallContext
from app.calls.events import EventBus, EventType
from app.calls.handoff import Line
from app.calls.hearing import Hearing
from app.calls.legs import CallIds, Legs, MediaPorts
from app.calls.models import CallRequest, CallStatus, EndReason
from app.calls.outcomes import (
    Finish,
    cancelled_outcome,
    company_gone_outcome,
    dial_outcome,
    pbx_lost_outcome,
    sit_outcome,
)
from app.calls.steps import FlowSteps, Media
from app.media.jitter import Frame
from app.clock import MonotonicClock
from app.config import Settings
from app.devices import Device
from app.ivr.flow import CallFlow, CallFlowStep, StepType
from tests.ari_fake import channel
from tests.fakes.ari_host import FakeAriHost

FRAME = np.zeros(160, dtype=np.int16)


def context(call_id: str = "c1") -> tuple[CallContext, list[ev.CallEvent]]:
    """A call context on a real bus, with the list of everything it published."""
    bus = EventBus()
    published: list[ev.CallEvent] = []
    publish = bus.publish

    def recording(event: ev.CallEvent) -> ev.CallEvent:
        published.append(stamped := publish(event))
        return stamped

    bus.publish = recording  # type: ignore[method-assign]
    return CallContext(call_id, bus, MonotonicClock()), published


def types(published: list[ev.CallEvent]) -> list[EventType]:
    return [e.type for e in published]


# ---------------------------------------------------------------------------- outcomes (pure)


@pytest.mark.parametrize(
    ("cause", "answered", "reason"),
    [
        (1, True, EndReason.NOT_IN_SERVICE),  # unallocated number, even after an announcement "answered"
        (34, True, EndReason.CONGESTION),
        (17, False, EndReason.BUSY),
        (19, False, EndReason.NO_ANSWER),
        (16, False, EndReason.NO_ANSWER),
        (16, True, EndReason.COMPANY_HANGUP),
        (None, True, EndReason.COMPANY_HANGUP),
    ],
)
def test_the_company_leaving_ends_the_call_by_its_cause_and_where_the_call_was(cause, answered, reason):
    finish = company_gone_outcome(cause, "", "", connected=False, answered=answered, status=CallStatus.ON_HOLD)
    assert (finish.status, finish.reason) == (CallStatus.FAILED, reason)
    if reason is EndReason.COMPANY_HANGUP:
        assert finish.detail.endswith("while on_hold")


def test_a_company_channel_the_pbx_lost_is_never_blamed_on_the_company():
    # Missing after a reconnect, no cause ever heard: the PBX restarted or lost the call.
    lost = company_gone_outcome(None, "", "", connected=False, answered=True, status=CallStatus.ON_HOLD, lost=True)
    assert (lost.status, lost.reason) == (CallStatus.FAILED, EndReason.PBX_LOST)
    assert "reconnected" in lost.detail and lost.detail.endswith("while on_hold")
    # A hang-up heard before the outage keeps its cause.
    heard = company_gone_outcome(16, "Normal Clearing", "", connected=False, answered=True, status=CallStatus.ON_HOLD, lost=True)
    assert heard.reason is EndReason.COMPANY_HANGUP


def test_the_pbx_lost_after_the_user_was_connected_is_still_a_success():
    assert (pbx_lost_outcome("gone", connected=False).status, pbx_lost_outcome("gone", connected=False).reason) == (
        CallStatus.FAILED, EndReason.PBX_LOST,
    )  # fmt: skip
    after = pbx_lost_outcome("gone", connected=True)
    assert (after.status, after.reason) == (CallStatus.COMPLETED, EndReason.BRIDGED)


def test_a_call_ended_by_stopping_the_app_says_so():
    stopped = cancelled_outcome("Hold Slayer is shutting down", connected=False, reason=EndReason.SHUTDOWN)
    assert (stopped.status, stopped.reason) == (CallStatus.CANCELLED, EndReason.SHUTDOWN)
    assert cancelled_outcome("by the user", connected=False).reason is EndReason.CANCELLED


def test_the_agent_hanging_up_after_the_user_was_connected_is_a_success():
    finish = company_gone_outcome(16, "Normal Clearing", "", connected=True, answered=True, status=CallStatus.CONNECTED)
    assert (finish.status, finish.reason, finish.detail) == (CallStatus.COMPLETED, EndReason.BRIDGED, "the agent hung up")


def test_a_dial_status_ends_only_an_unanswered_call():
    busy = dial_outcome("BUSY", answered=False)
    assert busy is not None and (busy.reason, busy.detail) == (EndReason.BUSY, "dial status BUSY")
    assert dial_outcome("BUSY", answered=True) is None
    assert dial_outcome("ANSWER", answered=False) is None


def test_a_special_information_tone_names_the_reason():
    assert sit_outcome({"cause": "intercept"}).reason is EndReason.NOT_IN_SERVICE
    assert sit_outcome({"cause": "no_circuit"}).reason is EndReason.CONGESTION
    assert sit_outcome({}).detail == "special information tone: unknown"


def test_cancelling_after_the_user_talked_to_the_agent_is_a_success():
    assert cancelled_outcome("bye", connected=True).status is CallStatus.COMPLETED
    assert cancelled_outcome("bye", connected=False).status is CallStatus.CANCELLED


# ---------------------------------------------------------------------------- the call context


async def test_a_wait_ends_when_its_condition_holds_after_a_notify():
    ctx, _ = context()
    flag = {"set": False}

    async def later() -> None:
        await asyncio.sleep(0.01)
        flag["set"] = True
        ctx.notify()

    task = asyncio.create_task(later())
    assert await ctx.wait_for(lambda: flag["set"], 5.0)
    await task


async def test_a_wait_times_out_with_false():
    ctx, _ = context()
    assert not await ctx.wait_for(lambda: False, 0.02)


async def test_an_interrupt_ends_every_wait_at_its_next_wake_up():
    ctx, _ = context()
    ended = {"now": False}

    def check() -> None:
        if ended["now"]:
            raise Finish(CallStatus.CANCELLED, EndReason.CANCELLED, "by the user")

    ctx.on_interrupt(check)
    waiting = asyncio.create_task(ctx.wait_for(lambda: False, None))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    ended["now"] = True
    ctx.notify()
    with pytest.raises(Finish, match="by the user"):
        await asyncio.wait_for(waiting, 1.0)


def test_events_are_published_and_journalled_but_for_the_frequent_ones():
    ctx, published = context()
    ctx.emit(ev.CallDialing(number="100", dial_string="PJSIP/100@trunk"))
    ctx.emit(ev.HoldProgress(hold_seconds=2.0))
    ctx.set_status(CallStatus.ON_HOLD)
    assert types(published) == [EventType.CALL_DIALING, EventType.HOLD_PROGRESS, EventType.CALL_STATUS]
    assert [e["type"] for e in ctx.journal] == ["CALL_DIALING", "CALL_STATUS"]
    assert ctx.journal[1]["data"] == {"status": "on_hold", "previous": "pending"}
    assert ctx.status is CallStatus.ON_HOLD


# ---------------------------------------------------------------------------- legs


def legs_with_fake() -> tuple[Legs, FakeAriHost, CallContext]:
    ctx, _ = context("c1")
    ari = FakeAriHost()
    legs = Legs(ctx, ari, MediaPorts("127.0.0.1", 40000, 40100))  # type: ignore[arg-type]
    return legs, ari, ctx


async def test_a_channel_is_created_under_an_id_chosen_before_the_request_and_waited_for():
    legs, ari, _ = legs_with_fake()
    following = asyncio.create_task(legs.follow(ari.queue))
    await asyncio.wait_for(legs.create_channel(legs.ids.company, "PJSIP/100@trunk", "company,c1"), 2.0)
    following.cancel()
    name, (endpoint, channel_id, options) = ari.requests[0]
    assert (name, endpoint, channel_id) == ("create_channel", "PJSIP/100@trunk", "hs-c1-co")
    assert options["formats"] == "ulaw"
    assert legs.company.started and legs.created_channels == ["hs-c1-co"]


async def test_a_channel_that_never_starts_fails_the_call_after_the_startup_time(monkeypatch):
    monkeypatch.setattr(legs_module, "STARTUP_TIMEOUT", 0.05)
    legs, ari, _ = legs_with_fake()
    ari.start_channels = False
    with pytest.raises(RuntimeError, match="no StasisStart for hs-c1-co"):
        await legs.create_channel(legs.ids.company, "PJSIP/100@trunk", "company,c1")


async def test_media_is_opened_on_a_real_socket_and_answers_to_where_asterisk_said():
    legs, ari, _ = legs_with_fake()
    following = asyncio.create_task(legs.follow(ari.queue))
    endpoint = await asyncio.wait_for(legs.open_media(legs.ids.hold_media, legs.ids.hold_bridge), 2.0)
    try:
        host, port = endpoint.local_address
        assert 40000 <= port <= 40100
        assert ("external_media", (legs.ids.hold_media, f"{host}:{port}", "ulaw")) in ari.requests
        assert ari.names()[-1] == "add_channel"  # only after its own StasisStart
    finally:
        following.cancel()
        await endpoint.close()


def test_ari_events_update_what_is_known_of_each_channel():
    legs, ari, _ = legs_with_fake()
    ids = legs.ids
    for event in (
        ("StasisStart", {"args": [], "channel": channel(ids.company, "Down")}),
        ("ChannelStateChange", {"channel": channel(ids.company, "Ringing")}),
        ("Dial", {"peer": channel(ids.company, "Ringing"), "dialstatus": "BUSY"}),
        ("ChannelDestroyed", {"cause": 17, "cause_txt": "User busy", "channel": channel(ids.company, "Busy")}),
        ("StasisEnd", {"channel": channel(ids.snoop)}),
    ):
        ari.push(event[0], **event[1])
    while not ari.queue.empty():
        legs.apply(ari.queue.get_nowait())
    company = legs.company
    assert (company.state, company.dialstatus, company.gone, company.cause, company.cause_txt) == (
        "Ringing", "BUSY", True, 17, "User busy",
    )  # fmt: skip
    assert legs.track(ids.snoop).gone  # snoops end with StasisEnd and no ChannelDestroyed


def test_reconcile_marks_what_asterisk_lost_while_the_websocket_was_down():
    legs, _, _ = legs_with_fake()
    legs.track(legs.ids.company).started = True
    legs.track(legs.ids.hold_media).started = True
    lost = legs.reconcile({legs.ids.hold_media})
    assert lost == [legs.ids.company]
    assert legs.company.gone and "websocket" in legs.company.cause_txt
    assert legs.company.lost and not legs.track(legs.ids.hold_media).lost


def test_ids_name_their_call_and_nothing_else_does():
    ids = CallIds("abc123")
    assert {CallIds.call_of(i) for i in ids.all_channels() + ids.all_bridges()} == {"abc123"}
    for foreign in ("PJSIP/alice-0001", "1733500000.12", "hs-", "hs-nodash", "someone-hs-abc-co"):
        assert CallIds.call_of(foreign) is None, foreign


async def test_clean_up_deletes_what_the_call_created_newest_first_and_survives_errors():
    legs, ari, _ = legs_with_fake()
    legs.created_channels[:] = ["hs-c1-co", "hs-c1-em", "hs-c1-user"]
    legs.created_bridges[:] = ["hs-c1-hold", "hs-c1-main"]
    legs.track("hs-c1-user").gone = True  # already gone: not hung up again
    ari.refuse.add("hangup")  # and every hang-up fails: the bridges still go
    await legs.clean_up()
    assert ari.requests == [
        ("hangup", ("hs-c1-em",)),
        ("hangup", ("hs-c1-co",)),
        ("destroy_bridge", ("hs-c1-main",)),
        ("destroy_bridge", ("hs-c1-hold",)),
    ]


# ---------------------------------------------------------------------------- hearing


class ScriptedDetector:
    """Stands in for ``AudioPipeline``: gives the outputs scripted for each pushed frame."""

    def __init__(self, script: list[list[Any]]) -> None:
        self.script = list(script)
        self.far_end_speaking = False
        self.restarted = 0
        self.concealed: list[bool] = []  # per pushed frame: made up for a lost packet

    def push(self, pcm: np.ndarray, t: float, *, concealed: bool = False) -> list[Any]:
        self.concealed.append(concealed)
        return self.script.pop(0) if self.script else []

    def restart_hold_detection(self) -> None:
        self.restarted += 1

    def reset_for_hold(self) -> None:
        self.script.clear()


class RecordingHandoff:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def suspected(self, output: Any) -> None:
        self.calls.append(("suspected", output))

    def retracted(self, output: Any) -> None:
        self.calls.append(("retracted", output))

    def detected(self, output: Any) -> None:
        self.calls.append(("detected", output))

    def heard(self, t: float, speaking: bool) -> None:
        self.calls.append(("heard", t))

    async def prepare(self) -> None:
        self.calls.append(("prepare", None))


def hearing_with(script: list[list[Any]]) -> tuple[Hearing, RecordingHandoff, list[ev.CallEvent]]:
    ctx, published = context()
    hearing = Hearing(ctx, ScriptedDetector(script))  # type: ignore[arg-type]
    handoff = RecordingHandoff()
    hearing.handoff = handoff  # type: ignore[assignment]
    return hearing, handoff, published


def test_detector_outputs_become_events_and_a_sit_is_kept():
    sit = ToneEvent(kind="sit", t=0.0, region="intercept", detail={"cause": "intercept"})
    window = Classification(t_start=0.0, t_end=0.5, audio_class=AudioClass.MUSIC, confidence=0.9, features={"f": np.float32(0.5)})
    hold = HoldDetected(t=0.02, confidence=0.8, evidence={"rule": "music"})
    hearing, _, published = hearing_with([[sit, window], [hold]])
    hearing.hear(FRAME)
    hearing.hear(FRAME)
    assert types(published) == [EventType.TONE_DETECTED, EventType.AUDIO_CLASSIFIED, EventType.HOLD_DETECTED]
    assert published[1].data.features == {"f": 0.5}
    assert hearing.sit is sit and hearing.hold_heard
    assert hearing.media_time == pytest.approx(0.04)


def test_person_decisions_reach_the_handoff_only_while_waiting_on_hold():
    suspicion = HumanSuspected(t=1.0, confidence=0.6, evidence={"rule": "speech"})
    retraction = HumanRetracted(t=2.0, confidence=0.8, suspected_t=1.0, evidence={"why": "music came back"})
    detection = HumanDetected(t=3.0, confidence=0.9, evidence={"rule": "reply"})
    hearing, handoff, published = hearing_with([[suspicion], [suspicion], [retraction], [detection]])
    hearing.hear(FRAME)  # in the menus: nobody to greet yet
    assert handoff.calls == [] and published == []
    hearing.in_hold = hearing.hold_heard = True
    for _ in range(3):
        hearing.hear(FRAME)
    assert [name for name, _ in handoff.calls if name != "heard"] == ["suspected", "retracted", "detected"]
    assert types(published) == [EventType.HUMAN_SUSPECTED, EventType.HUMAN_RETRACTED]
    assert hearing.human is detection and not hearing.waiting_for_person


async def test_frames_made_up_for_lost_packets_reach_the_detector_marked_as_such():
    hearing, _, _ = hearing_with([])

    class Endpoint:
        async def frames(self):
            for concealed in (False, True, True, False):
                yield Frame(np.zeros(160, np.int16), seq=0, arrival=0.0, concealed=concealed)

    await hearing.consume("hold", Endpoint())  # type: ignore[arg-type]
    assert hearing.detector.concealed == [False, True, True, False]  # type: ignore[attr-defined]
    assert hearing.media_time == pytest.approx(0.08)  # they still take their time


def test_what_the_handoff_says_becomes_greeting_or_probe_events():
    hearing, _, published = hearing_with([])
    hearing.said(Line.GREETING, text="Hi!", t=1.0, seconds=0.5)
    hearing.said(Line.PROBE, text="Hello?", t=5.0, seconds=0.6)
    assert isinstance(published[0].data, ev.AgentGreeted) and published[0].data.line == "greeting"
    assert isinstance(published[1].data, ev.HumanProbe) and published[1].data.text == "Hello?"


def test_input_sent_forgets_the_hold_heard_before_it():
    hearing, _, _ = hearing_with([])
    hearing.hold_heard = True
    hearing.input_sent()
    assert not hearing.hold_heard and hearing.detector.restarted == 1  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- steps


def steps_with_fakes(**settings: Any) -> tuple[FlowSteps, FakeAriHost, list[ev.CallEvent]]:
    ctx, published = context()
    ari = FakeAriHost()
    legs = Legs(ctx, ari, MediaPorts("127.0.0.1", 40000, 40100))  # type: ignore[arg-type]
    hearing = Hearing(ctx, ScriptedDetector([]))  # type: ignore[arg-type]
    hearing.detector.expect_dtmf_echo = lambda digits, now: None  # type: ignore[attr-defined]
    steps = FlowSteps(
        ctx, legs, hearing, RecordingHandoff(), Media(),  # type: ignore[arg-type]
        settings=Settings(**settings),
        request=CallRequest(number="8005550100"), device="sip_phone", tts=None,
        devices={"sip_phone": Device("sip_phone", "PJSIP/phone", is_default=True)}.get,
    )  # fmt: skip
    return steps, ari, published


async def test_keys_from_the_vault_are_sent_but_never_shown():
    steps, ari, published = steps_with_fakes()
    await steps.send_dtmf("1234", "account", masked=True, purpose="user_data", field="account_number")
    assert ari.requests[0] == ("send_dtmf", ("hs-c1-co", "1234", {"between": 100, "duration": 100}))
    sent = published[-1].data
    assert isinstance(sent, ev.IvrDtmfSent) and sent.digits == "****" and sent.field == "account_number"


async def test_a_flow_that_goes_round_in_circles_ends_the_call():
    steps, _, _ = steps_with_fakes()
    flow = CallFlow.model_validate(
        {
            "id": "loop",
            "name": "loop",
            "phone_number": "8005550100",
            "steps": [
                {"id": "a", "type": "WAIT", "timeout": 0.0001, "next_step": "b"},
                {"id": "b", "type": "WAIT", "timeout": 0.0001, "next_step": "a"},
            ],
        }
    )
    with pytest.raises(Finish, match="loops") as finish:
        await steps.run(flow)
    assert finish.value.reason is EndReason.FLOW_FAILED


async def test_a_transfer_to_a_device_nobody_configured_fails_before_ringing_anyone():
    steps, ari, _ = steps_with_fakes()
    step = CallFlowStep(id="t", type=StepType.TRANSFER)
    steps.request = CallRequest(number="8005550100", device="desk")  # deleted since the call was placed
    with pytest.raises(Finish, match="unknown user device 'desk'"):
        await steps.transfer(step)
    assert ari.requests == []
    steps.request, steps.device = CallRequest(number="8005550100"), "gone"
    with pytest.raises(Finish, match="unknown user device 'gone'"):
        await steps.transfer(step)
    assert ari.requests == []


async def test_a_flow_naming_a_device_the_user_no_longer_has_rings_the_calls_own():
    steps, _, published = steps_with_fakes()
    steps.request = CallRequest(number="8005550100")  # no device asked for: the call's is sip_phone

    def started() -> list[ev.EventData]:
        return [e.data for e in published if isinstance(e.data, ev.TransferStarted)]

    ringing = asyncio.create_task(steps.transfer(CallFlowStep(id="t", type=StepType.TRANSFER, metadata={"device": "desk"})))
    for _ in range(200):
        if started() or ringing.done():
            break
        await asyncio.sleep(0.01)
    ringing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ringing
    assert started() == [ev.TransferStarted(device="sip_phone", dial_string="PJSIP/phone")]


async def test_hold_ends_the_call_after_the_longest_hold_allowed():
    steps, _, published = steps_with_fakes(max_hold_time=0.05, hold_check_interval=0.02)
    steps.hearing.hold_heard = True
    with pytest.raises(Finish) as finish:
        await steps.hold(CallFlowStep(id="hold", type=StepType.HOLD))
    assert finish.value.reason is EndReason.MAX_HOLD_TIME
    assert EventType.HOLD_PROGRESS in types(published)
    assert steps.ctx.status is CallStatus.ON_HOLD


async def test_a_person_found_on_hold_is_announced_with_the_time_held():
    steps, _, published = steps_with_fakes(max_hold_time=5.0, hold_check_interval=0.02)
    steps.hearing.hold_heard = True
    step = CallFlowStep(id="hold", type=StepType.HOLD, conditions={"on_human": "transfer"})
    holding = asyncio.create_task(steps.hold(step))
    while steps.ctx.status is not CallStatus.ON_HOLD:  # the hold has begun (a loaded machine is slow to start it)
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    steps.hearing.human = HumanDetected(t=9.0, confidence=0.9, evidence={"rule": "reply"})
    steps.ctx.notify()
    assert await asyncio.wait_for(holding, 2.0) == "transfer"
    detected = next(e.data for e in published if isinstance(e.data, ev.HumanDetected))
    assert detected.evidence == {"rule": "reply"} and 0.04 <= detected.hold_seconds <= 2.0
    assert steps.ctx.status is CallStatus.HUMAN_DETECTED
