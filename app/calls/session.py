"""One call, from dialling the company to the user talking with a live agent.

The session composes ARI (channels, bridges), media (RTP endpoints), audio understanding (the
hold/human detector) and the store. Media layout (ARCHITECTURE.md, verified on Asterisk 22):

    company ──┐ hold bridge (mixing,proxy_media) ┌── externalMedia "hold"   <-> RtpEndpoint 1
              └──────────────────────────────────┘
    at the handoff the company moves to the main bridge with the user, and a snoop (spy=in)
    on the company channel keeps feeding us its audio:
    company ──┐ main bridge ┌── user's phone        snoop(company) ── listen bridge ── externalMedia "listen" <-> RtpEndpoint 2

Every id is chosen here before the request (events can beat the REST reply), every event for the
call arrives in order on one queue, and every path ends in ``_finish`` with a final status and
reason, after deleting whatever this call created in the PBX.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.ari import events as ari_events
from app.ari.client import AriClient
from app.ari.errors import AriError
from app.ari.router import EventRouter
from app.audio.activity import ActivityTracker
from app.audio.pipeline import AudioPipeline
from app.audio.tones import ToneEvent
from app.audio.types import Classification, HoldDetected, HumanDetected, HumanRetracted, HumanSuspected
from app.calls.events import EventBus, EventType
from app.calls.handoff import Handoff, HandoffPolicy, HandoffSettings, Line
from app.calls.listening import CallListener, flow_needs_listener
from app.calls.navigation import MenuNavigation, Outcome
from app.calls.models import ARI_ID_PREFIX, CallRequest, CallStatus, EndReason
from app.clock import Clock, MonotonicClock
from app.clock import utc_now as _now
from app.config import Settings
from app.jsonable import event_jsonable as _jsonable
from app.ivr.flow import CallFlow, CallFlowStep, StepType
from app.ivr.learner import ReplayCheck
from app.ivr.navigator import Navigator, OfflineNavigator
from app.ivr.vault import UserDataVault
from app.media.endpoint import RtpEndpoint
from app.media.sounds import SoundError, load_sound
from app.media.recorder import StreamingWavWriter
from app.speech import SttError, TextToSpeech
from app.store.repository import Store

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
DTMF_DURATION_MS = 100
DTMF_BETWEEN_MS = 100
PROMPT_END_QUIET_SECONDS = 1.0  # a menu counts as finished after this much quiet
DEFAULT_LISTEN_TIMEOUT = 30.0
DEFAULT_WAIT_SECONDS = 2.0
STARTUP_TIMEOUT = 10.0  # for a channel's own StasisStart
GREETING_WAIT_SECONDS = 8.0  # the person hears the end of our greeting before the user is on
EXPLORATION_TIMEOUT = 600.0  # menus of a company with no flow: give up finding the way after this

# Q.850 causes that mean the number itself is wrong, or the network could not carry the call.
_NOT_IN_SERVICE_CAUSES = {1, 2, 3, 22, 28}
_CONGESTION_CAUSES = {34, 38, 41, 42, 44}
_NO_ANSWER_CAUSES = {18, 19}
_BUSY_CAUSES = {17}
# Special information tones say why the network could not complete the call, before the
# announcement ends and long before the hang-up cause arrives (which is often just 16).
_SIT_REASONS = {
    "intercept": EndReason.NOT_IN_SERVICE,
    "vacant_code": EndReason.NOT_IN_SERVICE,
    "no_circuit": EndReason.CONGESTION,
    "reorder": EndReason.CONGESTION,
    "ineffective_other": EndReason.CONGESTION,
    "unknown": EndReason.CONGESTION,
}
_DIALSTATUS_REASONS = {
    "BUSY": EndReason.BUSY,
    "NOANSWER": EndReason.NO_ANSWER,
    "CONGESTION": EndReason.CONGESTION,
    "CHANUNAVAIL": EndReason.CONGESTION,
}


# What the HOLD step runs while no hold music was heard yet (see ``_step_hold``).
_STILL_IN_MENUS = CallFlowStep(
    id="hold", type=StepType.LISTEN, description="Answer menus until hold", metadata={"explore": True}
)
# Frequent events the learner does not need (the store keeps them all).
_NOT_JOURNALLED_HERE = frozenset({EventType.AUDIO_CLASSIFIED, EventType.HOLD_PROGRESS, EventType.TONE_DETECTED})


class _Finish(Exception):
    """Ends the call with this outcome."""

    def __init__(self, status: CallStatus, reason: EndReason, detail: str = ""):
        super().__init__(f"{status.value}/{reason.value}: {detail}")
        self.status, self.reason, self.detail = status, reason, detail


class _CompanyGone(Exception):
    """The company channel left (hung up, or vanished during an ARI outage)."""


@dataclass
class ChannelTrack:
    """What the events told us about one channel of this call."""

    started: bool = False  # its own StasisStart arrived: it may be added to bridges
    state: str = "Down"
    gone: bool = False
    cause: int | None = None
    cause_txt: str = ""
    dialstatus: str = ""


@dataclass
class SessionDeps:
    ari: AriClient
    router: EventRouter
    bus: EventBus
    store: Store
    settings: Settings
    clock: Clock = field(default_factory=MonotonicClock)
    detector_factory: Callable[[Settings], AudioPipeline] | None = None
    navigator: Navigator = field(default_factory=OfflineNavigator)  # one per process (runtime.py)
    tts: TextToSpeech | None = None  # one per process; None: the local Piper voice
    on_flow_mismatch: Callable[[str], None] | None = None  # a learned flow no longer fits (flow id)
    on_call_over: Callable[[CallSession, str], Awaitable[None]] | None = None  # final status set, not yet stored


@dataclass(frozen=True)
class CallIds:
    """ARI ids of everything a call creates, derived from the call id."""

    call_id: str

    def _id(self, suffix: str) -> str:
        return f"{ARI_ID_PREFIX}{self.call_id}-{suffix}"

    @property
    def company(self) -> str:
        return self._id("co")

    @property
    def hold_bridge(self) -> str:
        return self._id("hold")

    @property
    def hold_media(self) -> str:
        return self._id("em")

    @property
    def user(self) -> str:
        return self._id("user")

    @property
    def main_bridge(self) -> str:
        return self._id("main")

    @property
    def snoop(self) -> str:
        return self._id("snoop")

    @property
    def listen_media(self) -> str:
        return self._id("em2")

    @property
    def listen_bridge(self) -> str:
        return self._id("listen")

    def all_channels(self) -> list[str]:
        return [self.company, self.hold_media, self.user, self.snoop, self.listen_media]

    def all_bridges(self) -> list[str]:
        return [self.hold_bridge, self.main_bridge, self.listen_bridge]


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


class CallSession:
    def __init__(
        self,
        call_id: str,
        request: CallRequest,
        *,
        device: str,
        flow: CallFlow | None,
        deps: SessionDeps,
    ) -> None:
        self.call_id = call_id
        self.request = request
        self.device = device
        self.flow = flow
        self.deps = deps
        self.settings = deps.settings
        self.ids = CallIds(call_id)
        self.status = CallStatus.PENDING
        self.reason: EndReason | None = None

        self._tracks: dict[str, ChannelTrack] = {}
        self._created_channels: list[str] = []
        self._created_bridges: list[str] = []
        self._change = asyncio.Event()
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self._endpoints: dict[str, RtpEndpoint] = {}
        self._active_source = "hold"  # which RTP stream carries the far end right now
        self._recorder: StreamingWavWriter | None = None
        self._recording_path: Path | None = None
        self._samples_heard = 0
        self._activity = ActivityTracker()
        self._sit: ToneEvent | None = None
        factory = deps.detector_factory or _default_detector
        self._detector = factory(self.settings)
        self.handoff = Handoff(
            HandoffPolicy(_handoff_settings(self.settings)),
            _HoldBridgeSpeaker(self),
            self._detector,
            now=lambda: self.media_time,
            emit=self._emit_line,
        )
        self._in_hold = False
        self._known_at_start = 0  # recordings of this company's line known from earlier calls
        self._hold_started_at: float | None = None
        self._human: HumanDetected | None = None
        self._connected = False
        self._answered = False
        self._cancel_detail: str | None = None
        # Speech-to-text and the navigation, for flows that read their menus or explore them.
        self._listener: CallListener | None = None
        self._transcribing = False
        self._navigation: MenuNavigation | None = None
        self._hold_heard = False  # hold music since our last key press or answer
        self.vault = UserDataVault(request.user_data, request.user_data_permissions)  # type: ignore[arg-type]
        self.flow_mismatched = False
        self.events: list[dict[str, Any]] = []  # this call's events as emitted (the learner reads them)

    # ------------------------------------------------------------------ lifecycle

    @property
    def explored(self) -> bool:
        """The navigator found the way (no flow for the number, or the flow no longer matched)."""
        return self._navigation is not None and (self.flow is None or self.flow_mismatched)

    @property
    def effective_flow(self) -> CallFlow:
        """The flow this call follows: its own, or exploring when the number has none."""
        return self.flow or default_flow(self.request.number, self.device)

    @property
    def media_time(self) -> float:
        """Seconds of far-end audio heard so far (the detector's time axis)."""
        return self._samples_heard / SAMPLE_RATE

    async def run(self) -> None:
        """Run the call to its end. Never raises: every outcome becomes a final status."""
        outcome: _Finish
        try:
            self._queue = self.deps.router.register(self.call_id, self.ids.all_channels() + self.ids.all_bridges())
            self._tasks.append(asyncio.create_task(self._pump_events(), name=f"{self.call_id}-events"))
            if flow_needs_listener(self.effective_flow):
                await self._start_navigation()
            await self._know_the_line()
            await self._place_call()
            await self._run_flow()
            outcome = _Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, "the call flow ended without a transfer")
        except _Finish as finish:
            outcome = finish
        except _CompanyGone:
            # Audio that arrived before the hang-up may not be heard yet (a busy event loop): a
            # special information tone in it says why the company went away.
            self._hear_what_arrived()
            outcome = self._sit_outcome() or self._company_gone_outcome()
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()
            outcome = _Finish(CallStatus.CANCELLED, EndReason.CANCELLED, "cancelled")
        except Exception as exc:  # a bug or an unexpected PBX answer must still end the call cleanly
            log.exception("call %s failed", self.call_id)
            outcome = _Finish(CallStatus.FAILED, EndReason.ERROR, f"{type(exc).__name__}: {exc}")
        await self._end(outcome)

    def reconcile(self, live_channels: set[str]) -> None:
        """After an ARI reconnect: anything we track that Asterisk no longer has is gone."""
        lost = []
        for channel_id, track in self._tracks.items():
            if track.started and not track.gone and channel_id not in live_channels:
                track.gone = True
                track.cause_txt = "disappeared while the ARI websocket was down"
                lost.append(channel_id)
        self._emit(EventType.ARI_RECONNECTED, lost_channels=lost)
        self._notify()

    # ------------------------------------------------------------------ events from ARI

    async def _pump_events(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            try:
                self._apply(event)
            except Exception:
                log.exception("call %s: could not apply %r", self.call_id, event)
            self._notify()

    def _track(self, channel_id: str) -> ChannelTrack:
        return self._tracks.setdefault(channel_id, ChannelTrack())

    def _apply(self, event: ari_events.AriEvent) -> None:
        if isinstance(event, ari_events.StasisStart):
            track = self._track(event.channel.id)
            track.started = True
            track.state = event.channel.state
        elif isinstance(event, ari_events.ChannelStateChange):
            self._track(event.channel.id).state = event.channel.state
        elif isinstance(event, ari_events.Dial):
            if event.peer is not None and event.peer.id == self.ids.company and event.dialstatus:
                self._track(self.ids.company).dialstatus = event.dialstatus
        elif isinstance(event, ari_events.ChannelDestroyed):
            track = self._track(event.channel.id)
            track.gone = True
            track.cause = event.cause
            track.cause_txt = event.cause_txt or ""
        elif isinstance(event, ari_events.StasisEnd):
            # Snoops and inbound channels never get a ChannelDestroyed: StasisEnd is their end.
            self._track(event.channel.id).gone = True

    def _notify(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def _wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until predicate() holds; False on timeout. Raises _CompanyGone if the company leaves."""
        deadline = None if timeout is None else self.deps.clock.now() + timeout
        while True:
            change = self._change
            self._check_interrupts()
            if predicate():
                return True
            remaining = None if deadline is None else deadline - self.deps.clock.now()
            if remaining is not None and remaining <= 0:
                return False
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                async with asyncio.timeout(remaining):
                    await change.wait()
            except TimeoutError:
                pass

    def cancel(self, detail: str = "cancelled by the user") -> None:
        """Ask the call to end; it hangs up and cleans up at its next wait."""
        self._cancel_detail = detail
        self._notify()

    def _sit_outcome(self) -> _Finish | None:
        if self._sit is None:
            return None
        cause = str(self._sit.detail.get("cause", "unknown"))
        return _Finish(CallStatus.FAILED, _SIT_REASONS.get(cause, EndReason.CONGESTION), f"special information tone: {cause}")

    def _check_interrupts(self) -> None:
        if (sit := self._sit_outcome()) is not None:
            raise sit
        if self._cancel_detail is not None:
            if self._connected:  # the user already talked to the agent: that is a success
                raise _Finish(CallStatus.COMPLETED, EndReason.BRIDGED, self._cancel_detail)
            raise _Finish(CallStatus.CANCELLED, EndReason.CANCELLED, self._cancel_detail)
        track = self._tracks.get(self.ids.company)
        if track is None:
            return
        if track.gone:
            raise _CompanyGone()
        reason = _DIALSTATUS_REASONS.get(track.dialstatus)
        if reason is not None and not self._answered:
            # BUSY arrives at once but Asterisk keeps the channel ~5 s: hang up ourselves.
            raise _Finish(CallStatus.FAILED, reason, f"dial status {track.dialstatus}")

    async def _wait_started(self, channel_id: str) -> None:
        if not await self._wait_for(lambda: self._track(channel_id).started, STARTUP_TIMEOUT):
            raise RuntimeError(f"no StasisStart for {channel_id} within {STARTUP_TIMEOUT} s")

    # ------------------------------------------------------------------ placing the call

    async def _know_the_line(self) -> None:
        """The announcements heard on earlier calls to this number are known from the start."""
        stored = await asyncio.to_thread(self.deps.store.line_recordings, self.request.number)
        self._known_at_start = self._detector.know_recordings(stored) if stored else 0

    async def _remember_the_line(self) -> None:
        """Keep what this call heard for the next one (only when it heard something new)."""
        known = self._detector.known_recordings()
        if len(known) > self._known_at_start:
            await asyncio.to_thread(self.deps.store.save_line_recordings, self.request.number, known)

    async def _place_call(self) -> None:
        ari, ids = self.deps.ari, self.ids
        dial_string = self.settings.dial_string(self.request.number)
        await self._set_status(CallStatus.DIALING)
        self._emit(EventType.CALL_DIALING, number=self.request.number, dial_string=dial_string)

        await self._create_channel(ids.company, dial_string, f"company,{self.call_id}")
        await self._create_bridge(ids.hold_bridge, "mixing,proxy_media")
        await ari.add_channel(ids.hold_bridge, ids.company)
        await self._open_media("hold", ids.hold_media, ids.hold_bridge)
        self._start_recording()

        await ari.dial(ids.company, timeout=self.settings.dial_timeout)

        # Early media (ringback, announcements) is heard and classified while we wait.
        company = self._track(ids.company)
        deadline = self.deps.clock.now() + self.settings.dial_timeout + 5.0
        while company.state != "Up":
            state = company.state
            if state == "Ringing" and self.status is not CallStatus.RINGING:
                await self._set_status(CallStatus.RINGING)
                self._emit(EventType.CALL_RINGING)
            remaining = deadline - self.deps.clock.now()
            if remaining <= 0:
                raise _Finish(CallStatus.FAILED, EndReason.NO_ANSWER, "the company never answered")
            await self._wait_for(lambda: company.state != state, remaining)
        self._answered = True
        await self._set_status(CallStatus.NAVIGATING, answered_at=True)
        self._emit(EventType.CALL_ANSWERED)

    async def _create_channel(self, channel_id: str, endpoint: str, app_args: str) -> None:
        self._created_channels.append(channel_id)
        await self.deps.ari.create_channel(endpoint, channel_id, app_args=app_args, formats="ulaw")
        await self._wait_started(channel_id)

    async def _create_bridge(self, bridge_id: str, bridge_type: str) -> None:
        self._created_bridges.append(bridge_id)
        await self.deps.ari.create_bridge(bridge_id, type=bridge_type)

    async def _open_media(self, source: str, channel_id: str, bridge_id: str) -> RtpEndpoint:
        """An RTP endpoint + externalMedia channel in ``bridge_id``; its audio feeds the pipeline."""
        s = self.settings
        endpoint = await RtpEndpoint.open(s.media_host, s.media_port_min, s.media_port_max)
        self._endpoints[source] = endpoint
        host, port = endpoint.local_address
        self._created_channels.append(channel_id)
        channel = await self.deps.ari.external_media(channel_id, f"{host}:{port}", format="ulaw")
        remote = channel.rtp_address()
        if remote is not None:
            endpoint.set_remote(*remote)
        await self._wait_started(channel_id)
        await self.deps.ari.add_channel(bridge_id, channel_id)
        self._tasks.append(asyncio.create_task(self._consume_audio(source, endpoint), name=f"{self.call_id}-{source}"))
        return endpoint

    # ------------------------------------------------------------------ far-end audio

    def _start_recording(self) -> None:
        directory = Path(self.settings.recordings_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self._recording_path = directory / f"{self.call_id}.wav"
        self._recorder = StreamingWavWriter(self._recording_path, SAMPLE_RATE)

    def _hear_what_arrived(self) -> None:
        endpoint = self._endpoints.get(self._active_source)
        if endpoint is not None:
            for frame in endpoint.take_unread():
                self._hear(frame.pcm)

    async def _consume_audio(self, source: str, endpoint: RtpEndpoint) -> None:
        async for frame in endpoint.frames():
            if source != self._active_source:
                continue
            self._hear(frame.pcm)

    def _hear(self, pcm: np.ndarray) -> None:
        t = self.media_time
        duration = len(pcm) / SAMPLE_RATE
        self._samples_heard += len(pcm)
        if self._recorder is not None:
            self._recorder.write(pcm)
        self._activity.push(pcm, t, duration)
        if self._transcribing and self._listener is not None:
            self._listener.push(pcm, t)
        changed = False
        for output in self._detector.push(pcm, t):
            changed = True
            if isinstance(output, ToneEvent):
                self._emit(EventType.TONE_DETECTED, kind=output.kind, t=round(output.t, 3), region=output.region, detail=_jsonable(output.detail))
                if output.kind == "sit" and not self._connected:
                    self._sit = output
            elif isinstance(output, Classification):
                self._emit(
                    EventType.AUDIO_CLASSIFIED,
                    t_start=round(output.t_start, 3),
                    t_end=round(output.t_end, 3),
                    audio_class=output.audio_class.value,
                    confidence=round(output.confidence, 3),
                    features={k: round(float(v), 4) for k, v in output.features.items()},
                )
            elif isinstance(output, HoldDetected):
                self._hold_heard = True
                self._emit(EventType.HOLD_DETECTED, t=round(output.t, 3), confidence=round(output.confidence, 3), evidence=_jsonable(output.evidence))
            elif self._waiting_for_person:
                self._on_person_decision(output)
        if self._waiting_for_person or self.status is CallStatus.TRANSFERRING:
            self.handoff.heard(t, self._detector.far_end_speaking)
        if changed or self._activity.active:
            self._notify()

    @property
    def _waiting_for_person(self) -> bool:
        """On hold (music heard) and no person found yet: the handoff speaks to suspicions."""
        return self._in_hold and self._hold_heard and self._human is None

    def _on_person_decision(self, output: HumanSuspected | HumanRetracted | HumanDetected) -> None:
        """The detector's two stages: a suspicion is greeted, a detection rings the user."""
        if isinstance(output, HumanSuspected):
            self._emit(EventType.HUMAN_SUSPECTED, t=round(output.t, 3), confidence=round(output.confidence, 3), evidence=_jsonable(output.evidence))
            self.handoff.suspected(output)
        elif isinstance(output, HumanRetracted):
            self._emit(
                EventType.HUMAN_RETRACTED,
                t=round(output.t, 3),
                suspected_t=round(output.suspected_t, 3),
                evidence=_jsonable(output.evidence),
            )
            self.handoff.retracted(output)
        elif isinstance(output, HumanDetected):
            self._human = output
            self.handoff.detected(output)

    def _emit_line(self, line: Line, **data: Any) -> None:
        """The handoff said something to the far end."""
        if line is Line.PROBE:
            self._emit(EventType.HUMAN_PROBE, **data)
        else:
            self._emit(EventType.AGENT_GREETED, line=line.value, **data)

    # ------------------------------------------------------------------ the call flow

    async def _run_flow(self) -> None:
        flow = self.effective_flow
        step: CallFlowStep | None = flow.first_step
        visited = 0
        while step is not None:
            visited += 1
            if visited > 200:
                raise _Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, "the call flow loops")
            self._emit(EventType.IVR_STEP, step_id=step.id, step_type=step.type.value, description=step.description)
            handler = {
                StepType.WAIT: self._step_wait,
                StepType.LISTEN: self._step_listen,
                StepType.DTMF: self._step_dtmf,
                StepType.HOLD: self._step_hold,
                StepType.SPEAK: self._step_speak,
                StepType.TRANSFER: self._step_transfer,
            }[step.type]
            jump = await handler(step)
            step = flow.step(jump) if jump else flow.next_of(step)

    async def _step_wait(self, step: CallFlowStep) -> str | None:
        await self._wait_for(lambda: False, step.timeout or DEFAULT_WAIT_SECONDS)
        return None

    async def _step_listen(self, step: CallFlowStep) -> str | None:
        """Let the menu be read to the end, then answer it: with the step's digits, or as the
        learned flow or the navigator says (``app.calls.navigation``)."""
        timeout = step.timeout or DEFAULT_LISTEN_TIMEOUT
        if self._navigation is not None and (not step.dtmf or step.metadata.get("expected_transcript") or self._navigation.exploring):
            if self.status is not CallStatus.NAVIGATING:
                await self._set_status(CallStatus.NAVIGATING)
            result = await self._navigation.listen(step, timeout)
            match result.outcome:
                case Outcome.ACTED:
                    return None
                case Outcome.HOLD:
                    # Music, or an announcement the navigator knew for the queue's: the menus
                    # are over, and whoever speaks next may be the person (who may pick up
                    # before any music plays).
                    self._hold_heard = True
                    return step.conditions.get("on_hold")
                case Outcome.HUMAN:
                    return step.conditions.get("on_human")
                case Outcome.STUCK:
                    raise _Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, f"stuck in the phone menu: {result.detail}")
                case Outcome.TIMEOUT:
                    return step.conditions.get("on_timeout")
        start = self.media_time
        heard_from = self._activity.active_seconds

        def prompt_finished() -> bool:
            spoke = self._activity.active_seconds - heard_from > 0.5
            return spoke and self._activity.quiet_for(self.media_time) >= PROMPT_END_QUIET_SECONDS

        finished = await self._wait_for(prompt_finished, timeout)
        if finished:
            self._emit(
                EventType.IVR_MENU_DETECTED,
                step_id=step.id,
                transcript="",
                options=[],
                heard_seconds=round(self._activity.active_seconds - heard_from, 2),
                listened_seconds=round(self.media_time - start, 2),
                t_start=round(start, 3),
                t_end=round(self.media_time, 3),
                stt="none",
            )
        elif "on_timeout" in step.conditions:
            return step.conditions["on_timeout"]
        if step.dtmf:
            await self._send_dtmf(step.dtmf, step.id, purpose="flow", navigator="flow")
        return None

    # ------------------------------------------------------------------ navigating by what was heard

    async def _start_navigation(self) -> None:
        """Speech-to-text and the navigator, for flows that read their menus (or explore)."""
        listener: CallListener | None = None
        try:
            listener = await CallListener.open(self.settings, lambda _transcript: self._notify())
        except SttError as error:
            # Deaf to words: learned steps are trusted as written, exploring waits for hold music.
            log.warning("call %s: no speech-to-text: %s", self.call_id, error)
        self._listener = listener
        self._transcribing = listener is not None
        self._navigation = MenuNavigation(
            self,
            clock=self.deps.clock,
            navigator=self.deps.navigator,
            listener=listener,
            intent=self.request.intent,
            vault=self.vault,
            user_data_timeout=self.settings.user_data_timeout,
            on_flow_mismatch=self._flow_mismatch,
        )

    def _flow_mismatch(self, step: CallFlowStep, check: ReplayCheck) -> None:
        self.flow_mismatched = True
        if self.deps.on_flow_mismatch is not None and self.flow is not None:
            self.deps.on_flow_mismatch(self.flow.id)

    def provide_user_data(self, field: str, value: str, permission: str | None = None) -> bool:
        """The user's answer to a USER_DATA_REQUESTED (or data given mid-call); see MenuNavigation."""
        if self._navigation is not None:
            stored = self._navigation.provide_user_data(field, value, permission)
        else:
            stored = self.vault.put(field, value, permission)  # type: ignore[arg-type]
        self._notify()
        return stored

    @property
    def activity(self) -> ActivityTracker:
        return self._activity

    @property
    def hold_heard(self) -> bool:
        """The detector heard hold music since our last input: the menus are over."""
        return self._hold_heard

    @property
    def human_heard(self) -> bool:
        return self._human is not None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        return await self._wait_for(predicate, timeout)

    async def send_dtmf(self, digits: str, step_id: str, **detail: Any) -> None:
        await self._send_dtmf(digits, step_id, **detail)

    async def _speech_of(self, text: str, *, cache: bool) -> np.ndarray:
        """8 kHz speech for ``text``: the configured TTS, or the local Piper voice."""
        tts = self.deps.tts
        if tts is None:
            from app.speech import tts_from_settings

            tts = tts_from_settings("piper")
        return await tts.synthesize_async(text, cache=cache)

    async def say_text(self, text: str, step_id: str, *, cache: bool = True, masked: bool = False, **detail: Any) -> None:
        """Speak into the call (TTS through the hold bridge), paced in real time."""
        pcm = await self._speech_of(text, cache=cache)
        await self._endpoints["hold"].play(pcm)
        self._input_sent()
        shown = f"<{detail.get('field', 'value')}>" if masked else text
        self._emit(EventType.IVR_SPEECH_SENT, step_id=step_id, text=shown, seconds=round(len(pcm) / SAMPLE_RATE, 2), **detail)
        self._activity.reset()

    def emit(self, type_: EventType, **data: Any) -> None:
        self._emit(type_, **data)

    def _input_sent(self) -> None:
        """Whatever played before our input says nothing about where it led."""
        self._hold_heard = False
        self._detector.restart_hold_detection()

    async def _step_dtmf(self, step: CallFlowStep) -> str | None:
        await self._send_dtmf(step.dtmf or "", step.id)
        return None

    async def _send_dtmf(self, digits: str, step_id: str, *, masked: bool = False, **detail: Any) -> None:
        """``detail`` (who chose the digits and why) goes into the IVR_DTMF_SENT event; digits
        from the vault are ``masked`` there."""
        await self.deps.ari.send_dtmf(
            self.ids.company, digits, between=DTMF_BETWEEN_MS, duration=DTMF_DURATION_MS
        )
        self._input_sent()
        shown = "*" * len(digits) if masked else digits
        self._emit(EventType.IVR_DTMF_SENT, step_id=step_id, digits=shown, **detail)
        self._detector.expect_dtmf_echo(digits, now=self.media_time)  # our own tones may come back
        # There is no "DTMF finished" event: wait for the tones to play out before listening.
        playing = len(digits) * (DTMF_DURATION_MS + DTMF_BETWEEN_MS) / 1000.0
        await self._wait_for(lambda: False, playing)
        self._activity.reset()

    async def _step_hold(self, step: CallFlowStep) -> str | None:
        limit = self.settings.max_hold_time
        if step.timeout:
            limit = min(limit, step.timeout)
        self._detector.reset_for_hold()
        self._human = None
        self._in_hold = True
        self._hold_started_at = self.deps.clock.now()
        self._tasks.append(asyncio.ensure_future(self.handoff.prepare()))  # TTS of its lines, once
        await self._set_status(CallStatus.ON_HOLD, hold_started_at=True)
        if self._navigation is not None and self._listener is not None and not self.hold_heard:
            # The flow expects hold, but nothing sounded like it yet: a menu may still be asking
            # (a key that did not take, a menu the flow does not know). Answer menus until hold
            # (the detector listens for a person meanwhile).
            result = await self._navigation.listen(_STILL_IN_MENUS, min(limit, EXPLORATION_TIMEOUT))
            if result.outcome is Outcome.STUCK:
                raise _Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, f"stuck in the phone menu: {result.detail}")
            if result.outcome is Outcome.HUMAN and self._human is None:
                self._human = HumanDetected(
                    t=self.media_time, confidence=0.8, evidence={"rule": "transcript", "detail": result.detail}
                )
        self._transcribing = False  # menus are over: do not transcribe hold music
        interval = self.settings.hold_check_interval
        while self._human is None:
            waited = self.deps.clock.now() - self._hold_started_at
            if waited >= limit:
                raise _Finish(CallStatus.FAILED, EndReason.MAX_HOLD_TIME, f"no live person after {waited:.0f} s on hold")
            await self._wait_for(lambda: self._human is not None, min(interval, limit - waited))
            if self._human is None:
                self._emit(EventType.HOLD_PROGRESS, hold_seconds=round(self.deps.clock.now() - self._hold_started_at, 1))
        return await self._human_found(step)

    async def _human_found(self, step: CallFlowStep) -> str | None:
        human = self._human
        assert human is not None
        self._in_hold = False
        hold_seconds = self.deps.clock.now() - (self._hold_started_at or self.deps.clock.now())
        self._emit(
            EventType.HUMAN_DETECTED,
            t=round(human.t, 3),
            confidence=round(human.confidence, 3),
            evidence=_jsonable(human.evidence),
            hold_seconds=round(hold_seconds, 1),
        )
        await self._set_status(CallStatus.HUMAN_DETECTED, human_detected_at=True, hold_seconds=round(hold_seconds, 1))
        return step.conditions.get("on_human")

    async def _step_speak(self, step: CallFlowStep) -> str | None:
        """Say ``metadata.text`` (text-to-speech) or play ``metadata.audio`` (a recording)."""
        if text := step.metadata.get("text"):
            await self.say_text(str(text), step.id, purpose="flow")
            return None
        audio_ref = step.metadata.get("audio")
        if not audio_ref:
            raise _Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, f"step {step.id}: SPEAK needs metadata.text or metadata.audio")
        await self._say(str(audio_ref))
        return None

    async def _say(self, audio_ref: str) -> None:
        """Play a recording to the far end through the hold bridge, paced in real time."""
        try:
            pcm = await asyncio.to_thread(load_sound, audio_ref, self.settings.sounds_dir)
        except SoundError as exc:
            log.warning("call %s: cannot play %s: %s", self.call_id, audio_ref, exc)
            return
        await self._endpoints["hold"].play(pcm)

    # ------------------------------------------------------------------ the handoff

    async def _step_transfer(self, step: CallFlowStep) -> str | None:
        ari, ids = self.deps.ari, self.ids
        # A device the user asked for wins over the flow's; the default comes last.
        device = str(self.request.device or step.metadata.get("device") or self.device)
        dial_string = self.settings.user_devices.get(device)
        if dial_string is None:
            raise _Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, f"unknown user device {device!r}")
        await self._set_status(CallStatus.TRANSFERRING)
        self._emit(EventType.TRANSFER_STARTED, device=device, dial_string=dial_string)

        # Ring the user, greet the agent and prepare the listening path all at once.
        await self._create_bridge(ids.main_bridge, "mixing,proxy_media")
        await self._create_channel(ids.user, dial_string, f"user,{self.call_id}")
        await ari.dial(ids.user, timeout=math.ceil(self.settings.user_answer_timeout))
        self.handoff.connecting()  # keeps the person on the line while the phone rings
        await self._start_listening()

        user = self._track(ids.user)
        answered = await self._wait_for(lambda: user.state == "Up" or user.gone, self.settings.user_answer_timeout + 5)
        if not answered or user.gone:
            raise _Finish(CallStatus.FAILED, EndReason.USER_NO_ANSWER, f"{device} did not answer")
        # Let the person hear the end of what we are telling them before the user is on.
        await self._wait_for(lambda: not self.handoff.speaking or user.gone, GREETING_WAIT_SECONDS)
        if user.gone:
            raise _Finish(CallStatus.FAILED, EndReason.USER_NO_ANSWER, f"{device} hung up before being connected")

        try:
            await ari.remove_channel(ids.hold_bridge, ids.company)
            await ari.add_channel(ids.main_bridge, [ids.company, ids.user])
        except AriError:
            # One side may have hung up between the check and the move: let the events say which.
            await self._wait_for(lambda: user.gone, 1.0)
            if user.gone:
                raise _Finish(CallStatus.FAILED, EndReason.USER_NO_ANSWER, f"{device} hung up before being connected") from None
            raise
        await self.handoff.close()
        self._active_source = "listen"
        self._connected = True
        self._emit(EventType.TRANSFER_COMPLETE, device=device)
        await self._set_status(CallStatus.CONNECTED, connected_at=True)

        # Keep listening until one side hangs up (agents sometimes put people back on hold).
        try:
            await self._wait_for(lambda: user.gone, None)
        except _CompanyGone:
            raise _Finish(CallStatus.COMPLETED, EndReason.BRIDGED, "the agent hung up") from None
        raise _Finish(CallStatus.COMPLETED, EndReason.BRIDGED, "the user hung up")

    async def _start_listening(self) -> None:
        """Snoop on the company channel so we still hear it once it leaves the hold bridge."""
        ari, ids = self.deps.ari, self.ids
        self._created_channels.append(ids.snoop)
        await ari.snoop(ids.company, ids.snoop, spy="in", app_args=f"snoop,{self.call_id}")
        await self._wait_started(ids.snoop)
        await self._create_bridge(ids.listen_bridge, "mixing")
        await ari.add_channel(ids.listen_bridge, ids.snoop)
        await self._open_media("listen", ids.listen_media, ids.listen_bridge)

    # ------------------------------------------------------------------ the end

    def _company_gone_outcome(self) -> _Finish:
        track = self._tracks.get(self.ids.company, ChannelTrack())
        cause, text = track.cause, track.cause_txt or "no cause given"
        detail = f"cause {cause} ({text})" if cause is not None else text
        if self._connected:
            return _Finish(CallStatus.COMPLETED, EndReason.BRIDGED, "the agent hung up")
        if track.dialstatus in _DIALSTATUS_REASONS and not self._answered:
            return _Finish(CallStatus.FAILED, _DIALSTATUS_REASONS[track.dialstatus], detail)
        if cause in _NOT_IN_SERVICE_CAUSES:
            return _Finish(CallStatus.FAILED, EndReason.NOT_IN_SERVICE, detail)
        if cause in _CONGESTION_CAUSES:
            return _Finish(CallStatus.FAILED, EndReason.CONGESTION, detail)
        if not self._answered:
            if cause in _BUSY_CAUSES:
                return _Finish(CallStatus.FAILED, EndReason.BUSY, detail)
            return _Finish(CallStatus.FAILED, EndReason.NO_ANSWER, detail)
        return _Finish(CallStatus.FAILED, EndReason.COMPANY_HANGUP, f"{detail} while {self.status.value}")

    async def _end(self, outcome: _Finish) -> None:
        """Tear down everything this call created, then record the final state (always)."""
        recording = None
        try:
            await self._cleanup_pbx()
            await self.handoff.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for endpoint in self._endpoints.values():
                await endpoint.close()
            if self._listener is not None:
                self._transcribing = False
                await self._listener.close()
            if self._recorder is not None:
                self._recorder.close()
                recording = str(self._recording_path)
                self._emit(EventType.RECORDING_SAVED, path=recording, seconds=round(self.media_time, 2))
        except Exception:
            log.exception("call %s: cleanup failed", self.call_id)
        try:
            await self._remember_the_line()
        except Exception:
            log.exception("call %s: the line's recordings could not be stored", self.call_id)
        finally:
            self.deps.router.unregister(self.call_id)
            self.status, self.reason = outcome.status, outcome.reason
            if self.deps.on_call_over is not None:
                # Before CALL_ENDED: whoever sees the call end also sees what it taught (a learned flow).
                try:
                    await self.deps.on_call_over(self, outcome.detail)
                except Exception:
                    log.exception("call %s: end-of-call hook failed", self.call_id)
            await asyncio.to_thread(
                self.deps.store.update_call,
                self.call_id,
                status=outcome.status,
                reason=outcome.reason,
                detail=outcome.detail,
                ended_at=_now(),
                recording_path=recording,
            )
            self._emit(EventType.CALL_ENDED, status=outcome.status.value, reason=outcome.reason.value, detail=outcome.detail)

    async def _cleanup_pbx(self) -> None:
        """Delete every channel and bridge this call created; anything already gone is fine."""
        ari = self.deps.ari
        for channel_id in reversed(self._created_channels):
            if not self._tracks.get(channel_id, ChannelTrack()).gone:
                await self._best_effort(ari.hangup(channel_id, missing_ok=True), f"hangup {channel_id}")
        for bridge_id in reversed(self._created_bridges):
            await self._best_effort(ari.destroy_bridge(bridge_id, missing_ok=True), f"destroy bridge {bridge_id}")

    async def _best_effort(self, request, what: str) -> None:
        try:
            await request
        except AriError as exc:
            log.warning("call %s: %s failed: %s", self.call_id, what, exc)

    # ------------------------------------------------------------------ status and events

    async def _set_status(self, status: CallStatus, **timestamps: Any) -> None:
        previous, self.status = self.status, status
        fields: dict[str, Any] = {"status": status}
        for name, value in timestamps.items():
            fields[name] = _now() if value is True else value
        await asyncio.to_thread(self.deps.store.update_call, self.call_id, **fields)
        self._emit(EventType.CALL_STATUS, status=status.value, previous=previous.value)

    def _emit(self, type_: EventType, **data: Any) -> None:
        self.deps.bus.emit(type_, self.call_id, **data)
        if type_ not in _NOT_JOURNALLED_HERE:
            self.events.append({"type": type_.value, "call_id": self.call_id, "data": data, "seq": len(self.events)})


def _default_detector(settings: Settings) -> AudioPipeline:
    return AudioPipeline(window_seconds=settings.classifier_window_seconds)


def _handoff_settings(settings: Settings) -> HandoffSettings:
    return HandoffSettings(
        greeting=settings.human_greeting,
        intro=settings.intro_text(),
        probe=settings.human_probe_text,
        hold_on=settings.human_hold_on_text,
        probe_enabled=settings.human_probe,
    )


class _HoldBridgeSpeaker:
    """The handoff speaks through the hold bridge's RTP endpoint, with the call's TTS."""

    def __init__(self, session: CallSession) -> None:
        self._session = session

    async def speech(self, text: str) -> np.ndarray:
        return await self._session._speech_of(text, cache=True)

    async def play(self, pcm: np.ndarray) -> bool:
        return await self._session._endpoints["hold"].play(pcm)

    def stop(self) -> None:
        endpoint = self._session._endpoints.get("hold")
        if endpoint is not None:
            endpoint.clear_outgoing()
