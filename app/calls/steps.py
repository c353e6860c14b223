"""The steps of a call flow, carried out: WAIT, LISTEN, DTMF, HOLD, SPEAK, TRANSFER.

``FlowSteps`` interprets a ``CallFlow`` one step at a time and is the navigation's host (what
``app.calls.navigation`` may do to the call: wait, send keys, speak). It composes the other rooms:
the call context (waits, events, status), the legs (the PBX), hearing (what the far end says) and
the handoff (what we say to the person).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.ari.errors import AriError
from app.audio.activity import ActivityTracker
from app.audio.types import HumanDetected
from app.calls import events as ev
from app.calls.context import CallContext
from app.calls.handoff import Handoff
from app.calls.hearing import SAMPLE_RATE, Hearing
from app.calls.legs import Legs
from app.calls.models import CallRequest, CallStatus, EndReason
from app.calls.navigation import MenuNavigation, Outcome
from app.calls.outcomes import Finish
from app.calls.recordings import Recordings
from app.config import Settings
from app.devices import Device
from app.ivr.flow import CallFlow, CallFlowStep, StepType
from app.ivr.menu import prompt_finished
from app.media.endpoint import RtpEndpoint
from app.media.health import MediaHealth
from app.media.sounds import SoundError, load_sound
from app.speech import TextToSpeech

log = logging.getLogger(__name__)

DTMF_DURATION_MS = 100
DTMF_BETWEEN_MS = 100
DEFAULT_LISTEN_TIMEOUT = 30.0
DEFAULT_WAIT_SECONDS = 2.0
GREETING_WAIT_SECONDS = 8.0  # the person hears the end of our greeting before the user is on
EXPLORATION_TIMEOUT = 600.0  # menus of a company with no flow: give up finding the way after this
MAX_STEPS = 200  # a flow that visits more steps than this loops
USER_ASKED = "the user asked"  # the rule of a person "found" because the user said: put me through

# What the HOLD step runs while no hold music was heard yet (see ``FlowSteps.hold``).
_STILL_IN_MENUS = CallFlowStep(
    id="hold", type=StepType.LISTEN, description="Answer menus until hold", metadata={"explore": True}
)


def default_flow(phone_number: str, device: str) -> CallFlow:
    """With no stored flow: explore the menus (if any) until hold, wait for a person, bring the user in."""
    return CallFlow.model_validate(
        {
            "id": "explore-hold-and-transfer",
            "name": "Explore the menus, wait for a person, then transfer",
            "company": "",
            "phone_number": phone_number,
            "steps": [
                {
                    "id": "explore",
                    "type": "LISTEN",
                    "description": "Find the way through the phone menu",
                    "timeout": EXPLORATION_TIMEOUT,
                    "metadata": {"explore": True},
                    "conditions": {"on_hold": "hold", "on_human": "transfer", "on_timeout": "hold"},
                },
                {"id": "hold", "type": "HOLD", "description": "Wait on hold for a live person"},
                {"id": "transfer", "type": "TRANSFER", "description": "Bridge the user", "metadata": {"device": device}},
            ],
        }
    )


@dataclass
class Media:
    """The call's RTP endpoints by source ("hold", "listen") and the tasks that read them."""

    endpoints: dict[str, RtpEndpoint] = field(default_factory=dict)
    tasks: list[asyncio.Task] = field(default_factory=list)
    on_task_done: Callable[[], None] | None = None  # wakes the call's waits (a task that died ends it)

    def add(self, task: asyncio.Future) -> None:
        self.tasks.append(task)  # type: ignore[arg-type]
        if self.on_task_done is not None:
            task.add_done_callback(lambda _task: self.on_task_done() if self.on_task_done else None)

    def crashed(self) -> tuple[str, BaseException] | None:
        """A task of the call that died of an error (a bug in hearing, say), and the error."""
        for task in self.tasks:
            if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                name = task.get_name() if isinstance(task, asyncio.Task) else "a task of the call"
                return name, error
        return None

    def health(self) -> MediaHealth:
        """The received audio's counters, over every endpoint of the call."""
        return MediaHealth.total(MediaHealth.of(endpoint.stats) for endpoint in self.endpoints.values())


class FlowSteps:
    def __init__(
        self,
        ctx: CallContext,
        legs: Legs,
        hearing: Hearing,
        handoff: Handoff,
        media: Media,
        *,
        settings: Settings,
        request: CallRequest,
        device: str,
        tts: TextToSpeech | None,
        devices: Callable[[str], Device | None],
        recordings: Recordings | None = None,
    ) -> None:
        self.ctx = ctx
        self.call_id = ctx.call_id
        self.legs = legs
        self.hearing = hearing
        self.handoff = handoff
        self.media = media
        self.settings = settings
        self.request = request
        self.device = device
        self.devices = devices  # the user's device of a name, as stored now (blocking: run in a thread)
        self.tts = tts
        self.recordings = recordings
        self.navigation: MenuNavigation | None = None
        self.answered = False
        self.connected = False
        self.hold_started_at: float | None = None

    # ------------------------------------------------------------------ what navigation may do

    @property
    def activity(self) -> ActivityTracker:
        return self.hearing.activity

    @property
    def media_time(self) -> float:
        return self.hearing.media_time

    @property
    def hold_heard(self) -> bool:
        """The detector heard hold music since our last input: the menus are over."""
        return self.hearing.hold_heard

    @property
    def human_heard(self) -> bool:
        return self.hearing.human is not None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        return await self.ctx.wait_for(predicate, timeout)

    def emit(self, data: ev.EventData) -> None:
        self.ctx.emit(data)

    async def send_dtmf(self, digits: str, step_id: str, *, masked: bool = False, **detail: Any) -> None:
        """``detail`` (who chose the digits and why) goes into the IVR_DTMF_SENT event; digits
        from the vault are ``masked`` there."""
        await self.legs.ari.send_dtmf(self.legs.ids.company, digits, between=DTMF_BETWEEN_MS, duration=DTMF_DURATION_MS)
        if self.recordings is not None:
            self.recordings.keys(digits, on_ms=DTMF_DURATION_MS, off_ms=DTMF_BETWEEN_MS, masked=masked)
        self.hearing.input_sent()
        shown = "*" * len(digits) if masked else digits
        self.ctx.emit(ev.IvrDtmfSent(step_id=step_id, digits=shown, **detail))
        self.hearing.detector.expect_dtmf_echo(digits, now=self.media_time)  # our own tones may come back
        # There is no "DTMF finished" event: wait for the tones to play out before listening.
        await self.ctx.sleep(len(digits) * (DTMF_DURATION_MS + DTMF_BETWEEN_MS) / 1000.0)
        self.activity.reset()

    async def speech_of(self, text: str, *, cache: bool) -> np.ndarray:
        """8 kHz speech for ``text``: the configured TTS, or the local Piper voice."""
        tts = self.tts
        if tts is None:
            from app.speech import tts_from_settings

            tts = tts_from_settings("piper")
        return await tts.synthesize_async(text, cache=cache)

    async def say_text(self, text: str, step_id: str, *, cache: bool = True, masked: bool = False, **detail: Any) -> None:
        """Speak into the call (TTS through the hold bridge), paced in real time."""
        pcm = await self.speech_of(text, cache=cache)
        with self.recordings.masked() if masked and self.recordings is not None else contextlib.nullcontext():
            await self.media.endpoints["hold"].play(pcm)
        self.hearing.input_sent()
        shown = f"<{detail.get('field', 'value')}>" if masked else text
        self.ctx.emit(ev.IvrSpeechSent(step_id=step_id, text=shown, seconds=round(len(pcm) / SAMPLE_RATE, 2), **detail))
        self.activity.reset()

    # ------------------------------------------------------------------ placing the call

    async def open_media(self, source: str, channel_id: str, bridge_id: str) -> None:
        endpoint = await self.legs.open_media(channel_id, bridge_id)
        self.media.endpoints[source] = endpoint
        if source == "hold" and self.recordings is not None:
            endpoint.on_sent = self.recordings.sent  # all the app says to the company leaves here
        self.media.add(asyncio.create_task(self.hearing.consume(source, endpoint), name=f"{self.call_id}-{source}"))

    async def place_call(self) -> None:
        legs, ids = self.legs, self.legs.ids
        dial_string = self.settings.dial_string(self.request.number)
        self.ctx.set_status(CallStatus.DIALING)
        self.ctx.emit(ev.CallDialing(number=self.request.number, dial_string=dial_string))

        await legs.create_channel(ids.company, dial_string, f"company,{self.call_id}")
        await legs.create_bridge(ids.hold_bridge, "mixing,proxy_media")
        await legs.ari.add_channel(ids.hold_bridge, ids.company)
        await self.open_media("hold", ids.hold_media, ids.hold_bridge)
        if self.recordings is not None:
            self.recordings.start(self.settings.recordings_dir)

        await legs.ari.dial(ids.company, timeout=self.settings.dial_timeout)

        # Early media (ringback, announcements) is heard and classified while we wait.
        company = legs.company
        deadline = self.ctx.clock.now() + self.settings.dial_timeout + 5.0
        while company.state != "Up":
            state = company.state
            if state == "Ringing" and self.ctx.status is not CallStatus.RINGING:
                self.ctx.set_status(CallStatus.RINGING)
                self.ctx.emit(ev.CallRinging())
            remaining = deadline - self.ctx.clock.now()
            if remaining <= 0:
                raise Finish(CallStatus.FAILED, EndReason.NO_ANSWER, "the company never answered")
            await self.ctx.wait_for(lambda: company.state != state, remaining)
        self.answered = True
        self.ctx.set_status(CallStatus.NAVIGATING)
        self.ctx.emit(ev.CallAnswered())

    # ------------------------------------------------------------------ the flow

    async def run(self, flow: CallFlow) -> None:
        step: CallFlowStep | None = flow.first_step
        visited = 0
        while step is not None:
            visited += 1
            if visited > MAX_STEPS:
                raise Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, "the call flow loops")
            self.ctx.emit(ev.IvrStep(step_id=step.id, step_type=step.type.value, description=step.description))
            handler = {
                StepType.WAIT: self.wait,
                StepType.LISTEN: self.listen,
                StepType.DTMF: self.dtmf,
                StepType.HOLD: self.hold,
                StepType.SPEAK: self.speak,
                StepType.TRANSFER: self.transfer,
            }[step.type]
            jump = await handler(step)
            step = flow.step(jump) if jump else flow.next_of(step)

    async def wait(self, step: CallFlowStep) -> str | None:
        await self.ctx.sleep(step.timeout or DEFAULT_WAIT_SECONDS)
        return None

    async def listen(self, step: CallFlowStep) -> str | None:
        """Let the menu be read to the end, then answer it: with the step's digits, or as the
        learned flow or the navigator says (``app.calls.navigation``)."""
        timeout = step.timeout or DEFAULT_LISTEN_TIMEOUT
        navigation = self.navigation
        if navigation is not None and (not step.dtmf or step.metadata.get("expected_transcript") or navigation.exploring):
            if self.ctx.status is not CallStatus.NAVIGATING:
                self.ctx.set_status(CallStatus.NAVIGATING)
            result = await navigation.listen(step, timeout)
            match result.outcome:
                case Outcome.ACTED:
                    return None
                case Outcome.HOLD:
                    # Music, or an announcement the navigator knew for the queue's: the menus
                    # are over, and whoever speaks next may be the person (who may pick up
                    # before any music plays).
                    self.hearing.hold_heard = True
                    return step.conditions.get("on_hold")
                case Outcome.HUMAN:
                    return step.conditions.get("on_human")
                case Outcome.STUCK:
                    raise Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, f"stuck in the phone menu: {result.detail}")
                case Outcome.TIMEOUT:
                    return step.conditions.get("on_timeout")
        start = self.media_time
        heard_from = self.activity.active_seconds

        def finished_now() -> bool:
            return prompt_finished(self.activity.active_seconds - heard_from, self.activity.quiet_for(self.media_time))

        finished = await self.ctx.wait_for(finished_now, timeout)
        if finished:
            self.ctx.emit(
                ev.IvrMenuDetected(
                    step_id=step.id,
                    heard_seconds=round(self.activity.active_seconds - heard_from, 2),
                    listened_seconds=round(self.media_time - start, 2),
                    t_start=round(start, 3),
                    t_end=round(self.media_time, 3),
                    stt="none",
                )
            )
        elif "on_timeout" in step.conditions:
            return step.conditions["on_timeout"]
        if step.dtmf:
            await self.send_dtmf(step.dtmf, step.id, purpose="flow", navigator="flow")
        return None

    async def dtmf(self, step: CallFlowStep) -> str | None:
        await self.send_dtmf(step.dtmf or "", step.id)
        return None

    async def hold(self, step: CallFlowStep) -> str | None:
        hearing, ctx = self.hearing, self.ctx
        limit = self.settings.max_hold_time
        if step.timeout:
            limit = min(limit, step.timeout)
        hearing.detector.reset_for_hold()
        hearing.human = None
        hearing.in_hold = True
        self.hold_started_at = ctx.clock.now()
        self.media.add(asyncio.ensure_future(self.handoff.prepare()))  # TTS of its lines, once
        ctx.set_status(CallStatus.ON_HOLD)
        if self.navigation is not None and hearing.listener is not None and not hearing.hold_heard:
            # The flow expects hold, but nothing sounded like it yet: a menu may still be asking
            # (a key that did not take, a menu the flow does not know). Answer menus until hold
            # (the detector listens for a person meanwhile).
            result = await self.navigation.listen(_STILL_IN_MENUS, min(limit, EXPLORATION_TIMEOUT))
            if result.outcome is Outcome.STUCK:
                raise Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, f"stuck in the phone menu: {result.detail}")
            if result.outcome is Outcome.HUMAN and hearing.human is None:
                hearing.human = HumanDetected(
                    t=self.media_time, confidence=0.8, evidence={"rule": "transcript", "detail": result.detail}
                )
        hearing.transcribing = False  # menus are over: do not transcribe hold music
        interval = self.settings.hold_check_interval
        while hearing.human is None:
            waited = ctx.clock.now() - self.hold_started_at
            if waited >= limit:
                raise Finish(CallStatus.FAILED, EndReason.MAX_HOLD_TIME, f"no live person after {waited:.0f} s on hold")
            await ctx.wait_for(lambda: hearing.human is not None, min(interval, limit - waited))
            if hearing.human is None:
                ctx.emit(ev.HoldProgress(hold_seconds=round(ctx.clock.now() - self.hold_started_at, 1)))
        return self._human_found(step, hearing.human)

    def _human_found(self, step: CallFlowStep, human: HumanDetected) -> str | None:
        self.hearing.in_hold = False
        now = self.ctx.clock.now()
        hold_seconds = now - (self.hold_started_at or now)
        self.ctx.emit(
            ev.HumanDetected(
                t=round(human.t, 3),
                confidence=round(human.confidence, 3),
                evidence=human.evidence,
                hold_seconds=round(hold_seconds, 1),
            )
        )
        self.ctx.set_status(CallStatus.HUMAN_DETECTED)
        return step.conditions.get("on_human")

    async def speak(self, step: CallFlowStep) -> str | None:
        """Say ``metadata.text`` (text-to-speech) or play ``metadata.audio`` (a recording)."""
        if text := step.metadata.get("text"):
            await self.say_text(str(text), step.id, purpose="flow")
            return None
        audio_ref = step.metadata.get("audio")
        if not audio_ref:
            raise Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, f"step {step.id}: SPEAK needs metadata.text or metadata.audio")
        await self._play(str(audio_ref))
        return None

    async def _play(self, audio_ref: str) -> None:
        """Play a recording to the far end through the hold bridge, paced in real time."""
        try:
            pcm = await asyncio.to_thread(load_sound, audio_ref, self.settings.sounds_dir)
        except SoundError as exc:
            log.warning("call %s: cannot play %s: %s", self.call_id, audio_ref, exc)
            return
        await self.media.endpoints["hold"].play(pcm)

    async def transfer(self, step: CallFlowStep) -> str | None:
        legs, ids, ctx = self.legs, self.legs.ids, self.ctx
        # A device the user asked for wins over the flow's; the default comes last. Devices are
        # looked up now: a change made while the call waited on hold is the one rung.
        flow_device = step.metadata.get("device")
        device = str(self.request.device or flow_device or self.device)
        found = await asyncio.to_thread(self.devices, device)
        if found is None and not self.request.device and flow_device and device != self.device:
            # The flow names a device the user no longer has (deleted through the API): ring the
            # call's own rather than lose the person at the very end.
            log.warning("call %s: the flow's device %r is gone; ringing %r", self.call_id, device, self.device)
            device = self.device
            found = await asyncio.to_thread(self.devices, device)
        if found is None:
            raise Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, f"unknown user device {device!r}")
        dial_string = found.dial_string
        ctx.set_status(CallStatus.TRANSFERRING)
        ctx.emit(ev.TransferStarted(device=device, dial_string=dial_string))

        # Ring the user, greet the agent and prepare the listening path all at once.
        await legs.create_bridge(ids.main_bridge, "mixing,proxy_media")
        await legs.create_channel(ids.user, dial_string, f"user,{self.call_id}")
        await legs.ari.dial(ids.user, timeout=math.ceil(self.settings.user_answer_timeout))
        self.handoff.connecting()  # keeps the person on the line while the phone rings
        # Snoop on the company channel so we still hear it once it leaves the hold bridge.
        await legs.snoop_company()
        await self.open_media("listen", ids.listen_media, ids.listen_bridge)

        user = legs.user
        answered = await ctx.wait_for(lambda: user.state == "Up" or user.gone, self.settings.user_answer_timeout + 5)
        if not answered or user.gone:
            raise Finish(CallStatus.FAILED, EndReason.USER_NO_ANSWER, f"{device} did not answer")
        # Let the person hear the end of what we are telling them before the user is on (not when
        # the user asked to be put through: they are waiting on the line for whatever is there).
        asked = self.hearing.human is not None and self.hearing.human.evidence.get("rule") == USER_ASKED
        self.handoff.wind_down()
        if not asked:
            await ctx.wait_for(lambda: not self.handoff.speaking or user.gone, GREETING_WAIT_SECONDS)
        if user.gone:
            raise Finish(CallStatus.FAILED, EndReason.USER_NO_ANSWER, f"{device} hung up before being connected")

        try:
            await legs.ari.remove_channel(ids.hold_bridge, ids.company)
            await legs.ari.add_channel(ids.main_bridge, [ids.company, ids.user])
        except AriError:
            # One side may have hung up between the check and the move: let the events say which.
            await ctx.wait_for(lambda: user.gone, 1.0)
            if user.gone:
                raise Finish(CallStatus.FAILED, EndReason.USER_NO_ANSWER, f"{device} hung up before being connected") from None
            raise
        if self.recordings is not None:
            await self.recordings.record_bridge()  # the user and the person, mixed by Asterisk
        await self.handoff.close()
        self.hearing.active_source = "listen"
        self.hearing.connected = self.connected = True
        ctx.emit(ev.TransferComplete(device=device))
        ctx.set_status(CallStatus.CONNECTED)

        # Keep listening until one side hangs up (agents sometimes put people back on hold).
        await ctx.wait_for(lambda: user.gone, None)
        raise Finish(CallStatus.COMPLETED, EndReason.BRIDGED, "the user hung up")
