"""One call, from dialling the company to the user talking with a live agent.

The session composes the rooms of a call, each the one owner of its concern:

- ``context``: the clock, waits and their interrupts, the status, the events (``CallContext``);
- ``legs``: channels and bridges in the PBX, what ARI said about each, their clean-up (``Legs``);
- ``hearing``: the far end's audio in, detector outputs out as events (``Hearing``);
- ``handoff``: what we say to a possible person until the user is on (``Handoff``);
- ``recordings``: what the call keeps of its audio, app-side and the PBX's (``Recordings``);
- ``steps``: the call flow carried out, and the navigation's host (``FlowSteps``);
- ``outcomes``: how a call ends (pure).

The session runs them (``run``), ends the call from anywhere (``cancel``, the interrupts), and
whatever happens, ends it in ``_end`` with a final status and reason, after deleting whatever
this call created in the PBX. It writes nothing to the store itself: the store follows the events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from app.ari.client import AriClient
from app.ari.router import EventRouter
from app.audio.pipeline import AudioPipeline
from app.audio.types import HumanDetected
from app.calls import events as ev
from app.calls.context import CallContext
from app.calls.events import EventBus
from app.calls.handoff import Handoff, HandoffPolicy, HandoffSettings
from app.calls.hearing import Hearing
from app.calls.legs import CallIds, Legs, MediaPorts
from app.calls.listening import CallListener, flow_needs_listener
from app.calls.models import FINAL_STATUSES, CallRequest, CallStatus, EndReason
from app.calls.navigation import MenuNavigation
from app.calls.outcomes import (
    Finish,
    cancelled_outcome,
    company_gone_outcome,
    dial_outcome,
    pbx_lost_outcome,
    sit_outcome,
)
from app.calls.recordings import Recordings
from app.calls.steps import USER_ASKED, FlowSteps, Media, default_flow
from app.clock import Clock, MonotonicClock
from app.config import Settings
from app.devices import Device
from app.ivr.flow import CallFlow, CallFlowStep
from app.ivr.learner import ReplayCheck
from app.ivr.navigator import Navigator, OfflineNavigator
from app.ivr.vault import UserDataVault
from app.speech import SttError, TextToSpeech

log = logging.getLogger(__name__)

# Asterisk stopping ends every channel with a StasisEnd and no cause, then closes ARI: a company
# channel gone without a cause waits this long to learn which of the two it was.
PBX_SETTLE_SECONDS = 2.0

# Before the company answers there is no line to press keys on.
_NOT_ANSWERED = frozenset({CallStatus.PENDING, CallStatus.DIALING, CallStatus.RINGING})

__all__ = ["CallIds", "CallSession", "CallStore", "SessionDeps", "default_flow"]


class CallStore(Protocol):
    """What calls need from the store (``app.store.Store``): the flows, a call's row created
    before its first event, the user's devices (looked up when they are rung, so a change made
    while a call holds is the one used), and the recordings heard on a company's line between calls. Calls
    never write a call's row after that: the store follows the events."""

    def get_flow(self, flow_id: str) -> CallFlow | None: ...

    def find_flow_for_number(self, number: str) -> CallFlow | None: ...

    def upsert_flow(self, flow: CallFlow) -> Any: ...

    def set_flow_stale(self, flow_id: str, stale: bool) -> Any: ...

    def record_flow_outcome(self, flow_id: str, success: bool) -> Any: ...

    def create_call(
        self,
        call_id: str,
        request: CallRequest,
        device: str,
        flow_id: str | None = None,
        company: str | None = None,
        worker: int | None = None,
        node: str | None = None,
    ) -> None: ...

    def list_devices(self) -> list[Device]: ...

    def get_device(self, name: str) -> Device | None: ...

    def line_recordings(self, number: str) -> list[bytes]: ...

    def save_line_recordings(self, number: str, fingerprints: Sequence[bytes]) -> None: ...


class InputRefused(RuntimeError):
    """Keys sent by hand to a call that cannot take them (not answered yet, or over)."""


class _CompanyGone(Exception):
    """The company channel left (hung up, or vanished during an ARI outage)."""


@dataclass
class SessionDeps:
    ari: AriClient
    router: EventRouter
    bus: EventBus
    store: CallStore
    settings: Settings
    clock: Clock = field(default_factory=MonotonicClock)
    detector_factory: Callable[[Settings], AudioPipeline] | None = None
    navigator: Navigator = field(default_factory=OfflineNavigator)  # one per process (runtime.py)
    tts: TextToSpeech | None = None  # one per process; None: the local Piper voice
    on_flow_mismatch: Callable[[str], None] | None = None  # a learned flow no longer fits (flow id)
    on_call_over: Callable[[CallSession, str], Awaitable[None]] | None = None  # final status set, CALL_ENDED not yet sent
    ari_connected: Callable[[], bool] | None = None  # the event websocket is up (None: assume it is)
    recording_failures: Counter[str] = field(default_factory=Counter)  # by kind, over every call of the process


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
        self.settings = settings = deps.settings
        self.reason: EndReason | None = None
        self.detail = ""  # the final detail, once ended
        self.flow_mismatched = False
        self.vault = UserDataVault(request.user_data, request.user_data_permissions)  # type: ignore[arg-type]
        self._cancel_detail: str | None = None
        self._cancel_reason = EndReason.CANCELLED
        self._pbx_lost_detail: str | None = None
        self._known_at_start = 0  # recordings of this company's line known from earlier calls

        self.ctx = CallContext(call_id, deps.bus, deps.clock)
        self.legs = Legs(self.ctx, deps.ari, MediaPorts(settings.media_host, settings.media_port_min, settings.media_port_max))
        self.hearing = Hearing(self.ctx, (deps.detector_factory or _default_detector)(settings))
        self.recordings = Recordings(self.ctx, self.legs, failures=deps.recording_failures)
        self.hearing.recordings = self.recordings
        self.media = Media(on_task_done=self.ctx.notify)
        self.handoff = Handoff(
            HandoffPolicy(_handoff_settings(settings)),
            _HoldBridgeSpeaker(self),
            self.hearing.detector,
            now=lambda: self.hearing.media_time,
            emit=self.hearing.said,
        )
        self.hearing.handoff = self.handoff
        self.steps = FlowSteps(
            self.ctx, self.legs, self.hearing, self.handoff, self.media,
            settings=settings, request=request, device=device, tts=deps.tts, devices=deps.store.get_device,
            recordings=self.recordings,
        )  # fmt: skip
        self.ctx.on_interrupt(self._check_interrupts)

    # ------------------------------------------------------------------ what others see

    @property
    def ids(self) -> CallIds:
        return self.legs.ids

    @property
    def status(self) -> CallStatus:
        return self.ctx.status

    @property
    def events(self) -> list[dict[str, Any]]:
        """This call's events as emitted, but for the frequent ones (the learner reads them)."""
        return self.ctx.journal

    @property
    def media_time(self) -> float:
        return self.hearing.media_time

    @property
    def explored(self) -> bool:
        """The navigator found the way (no flow for the number, or the flow no longer matched)."""
        return self.steps.navigation is not None and (self.flow is None or self.flow_mismatched)

    @property
    def effective_flow(self) -> CallFlow:
        """The flow this call follows: its own, or exploring when the number has none."""
        return self.flow or default_flow(self.request.number, self.device)

    def emit(self, data: ev.EventData) -> None:
        self.ctx.emit(data)

    def cancel(self, detail: str = "cancelled by the user", reason: EndReason = EndReason.CANCELLED) -> None:
        """Ask the call to end; it hangs up and cleans up at its next wait."""
        self._cancel_detail, self._cancel_reason = detail, reason
        self.ctx.notify()

    def pbx_lost(self, detail: str) -> None:
        """The PBX is gone (no ARI connection for the bound): end the call, ``pbx_lost``."""
        self._pbx_lost_detail = detail
        self.ctx.notify()

    def reconcile(self, live_channels: set[str]) -> None:
        """After an ARI reconnect: anything we track that Asterisk no longer has is gone."""
        lost = self.legs.reconcile(live_channels)
        self.ctx.emit(ev.AriReconnected(lost_channels=lost))
        self.ctx.notify()

    def transfer_now(self) -> bool:
        """The user wants to be put through now (they know a person is there, or will wait on
        the line themselves): the call goes on as if the detector had found the person. False
        when the call is not answered yet, already past the person, or over."""
        if not self.steps.answered or self.hearing.human is not None or self.status in FINAL_STATUSES:
            return False
        if self.status not in (CallStatus.NAVIGATING, CallStatus.ON_HOLD):
            return False
        self.hearing.human = HumanDetected(t=self.media_time, confidence=1.0, evidence={"rule": USER_ASKED})
        self.ctx.notify()
        return True

    def provide_user_data(self, field: str, value: str, permission: str | None = None) -> bool:
        """The user's answer to a USER_DATA_REQUESTED (or data given mid-call); see MenuNavigation."""
        if self.steps.navigation is not None:
            stored = self.steps.navigation.provide_user_data(field, value, permission)
        else:
            stored = self.vault.put(field, value, permission)  # type: ignore[arg-type]
        self.ctx.notify()
        return stored

    async def send_dtmf(self, digits: str) -> None:
        """Press keys by hand (REST, MCP): to the company's line, journalled as a manual step."""
        if self.status in FINAL_STATUSES or self._cancel_detail is not None:
            raise InputRefused(f"call {self.call_id} has ended ({self.status.value}): no keys can be sent")
        if self.status in _NOT_ANSWERED:
            raise InputRefused(f"call {self.call_id} is not answered yet ({self.status.value}): no keys can be sent")
        await self.steps.send_dtmf(digits, step_id="manual", purpose="manual")

    # ------------------------------------------------------------------ the run

    async def run(self) -> None:
        """Run the call to its end. Never raises: every outcome becomes a final status."""
        outcome: Finish
        try:
            queue = self.deps.router.register(
                self.call_id, self.ids.all_channels() + self.ids.all_bridges() + self.ids.all_recordings()
            )
            self.media.add(asyncio.create_task(self.legs.follow(queue), name=f"{self.call_id}-events"))
            if flow_needs_listener(self.effective_flow):
                await self._start_navigation()
            await self._know_the_line()
            await self.steps.place_call()
            await self.steps.run(self.effective_flow)
            outcome = Finish(CallStatus.FAILED, EndReason.FLOW_FAILED, "the call flow ended without a transfer")
        except Finish as finish:
            outcome = finish
        except _CompanyGone:
            # Audio that arrived before the hang-up may not be heard yet (a busy event loop): a
            # special information tone in it says why the company went away.
            self.hearing.hear_what_arrived(self.media.endpoints.get(self.hearing.active_source))
            outcome = self._sit_outcome() or await self._company_gone_outcome()
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()
            outcome = Finish(CallStatus.CANCELLED, self._cancel_reason, self._cancel_detail or "cancelled")
        except Exception as exc:  # a bug or an unexpected PBX answer must still end the call cleanly
            log.exception("call %s failed", self.call_id)
            outcome = Finish(CallStatus.FAILED, EndReason.ERROR, f"{type(exc).__name__}: {exc}")
        await self._end(outcome)

    def _sit_outcome(self) -> Finish | None:
        sit = self.hearing.sit
        return None if sit is None else sit_outcome(sit.detail)

    def _pbx_down(self) -> bool:
        return self._pbx_lost_detail is not None or (self.deps.ari_connected is not None and not self.deps.ari_connected())

    async def _company_gone_outcome(self) -> Finish:
        company = self.legs.company
        if company.cause is None and not company.lost and self.deps.ari_connected is not None:
            # No ChannelDestroyed (yet): a hang-up has one right behind its StasisEnd; Asterisk
            # going away has none and closes ARI next. Wait to see which, never blaming the company.
            await self.ctx.wait_for(lambda: company.cause is not None or self._pbx_down(), PBX_SETTLE_SECONDS, interruptible=False)
            if company.cause is None and self._pbx_down():
                return pbx_lost_outcome(
                    f"the PBX ended the call and closed its ARI connection while {self.status.value}",
                    connected=self.steps.connected,
                )
        return company_gone_outcome(
            company.cause,
            company.cause_txt,
            company.dialstatus,
            connected=self.steps.connected,
            answered=self.steps.answered,
            status=self.status,
            lost=company.lost,
        )

    def _check_interrupts(self) -> None:
        """Run at every wake-up of every wait: raises to end the call."""
        if (sit := self._sit_outcome()) is not None:
            raise sit
        if self._cancel_detail is not None:
            raise cancelled_outcome(self._cancel_detail, connected=self.steps.connected, reason=self._cancel_reason)
        if self._pbx_lost_detail is not None:
            raise pbx_lost_outcome(self._pbx_lost_detail, connected=self.steps.connected)
        if (crashed := self.media.crashed()) is not None:
            # The call cannot go on deaf or blind: it ends now, and says why.
            name, error = crashed
            log.error("call %s: %s crashed", self.call_id, name, exc_info=error)
            raise Finish(CallStatus.FAILED, EndReason.ERROR, f"{name} crashed: {type(error).__name__}: {error}")
        company = self.legs.tracks.get(self.ids.company)
        if company is None:
            return
        if company.gone:
            raise _CompanyGone()
        if (dialled := dial_outcome(company.dialstatus, answered=self.steps.answered)) is not None:
            raise dialled

    async def _start_navigation(self) -> None:
        """Speech-to-text and the navigator, for flows that read their menus (or explore)."""
        listener: CallListener | None = None
        try:
            listener = await CallListener.open(self.settings, lambda _transcript: self.ctx.notify())
        except SttError as error:
            # Deaf to words: learned steps are trusted as written, exploring waits for hold music.
            log.warning("call %s: no speech-to-text: %s", self.call_id, error)
        self.hearing.listener = listener
        self.hearing.transcribing = listener is not None
        self.steps.navigation = MenuNavigation(
            self.steps,
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

    async def _know_the_line(self) -> None:
        """The announcements heard on earlier calls to this number are known from the start."""
        stored = await asyncio.to_thread(self.deps.store.line_recordings, self.request.number)
        self._known_at_start = self.hearing.detector.know_recordings(stored) if stored else 0

    async def _remember_the_line(self) -> None:
        """Keep what this call heard for the next one (only when it heard something new)."""
        known = self.hearing.detector.known_recordings()
        if len(known) > self._known_at_start:
            await asyncio.to_thread(self.deps.store.save_line_recordings, self.request.number, known)

    # ------------------------------------------------------------------ the end

    async def _end(self, outcome: Finish) -> None:
        """Tear down everything this call created, then send the final state (always)."""
        try:
            if self._pbx_down():
                # Requests to a PBX that is not there would only wait out their time-outs; what it
                # still holds of this call is swept when it is back (CallManager.on_ari_reconnect).
                log.warning("call %s: the PBX is not reachable: its channels are left to the reconnect", self.call_id)
            else:
                await self.recordings.stop_bridge()  # before the bridge goes
                await self.legs.clean_up()
                await self.recordings.bridge_finished()  # its RecordingFinished, while the events still flow
            await self.handoff.close()
            for task in self.media.tasks:
                task.cancel()
            await asyncio.gather(*self.media.tasks, return_exceptions=True)
            for endpoint in self.media.endpoints.values():
                await endpoint.close()
            if self.media.endpoints:
                self.ctx.emit(ev.MediaHealthReport(**self.media.health().as_dict()))
            if self.hearing.listener is not None:
                self.hearing.transcribing = False
                await self.hearing.listener.close()
        except Exception:
            log.exception("call %s: cleanup failed", self.call_id)
        try:
            await self.recordings.finish()  # the files complete, fetched and announced
        except Exception:
            log.exception("call %s: the recordings could not be finished", self.call_id)
        try:
            await self._remember_the_line()
        except Exception:
            log.exception("call %s: the line's recordings could not be stored", self.call_id)
        finally:
            self.deps.router.unregister(self.call_id)
            self.ctx.status, self.reason, self.detail = outcome.status, outcome.reason, outcome.detail
            if self.deps.on_call_over is not None:
                # Before CALL_ENDED: whoever sees the call end also sees what it taught (a learned flow).
                try:
                    await self.deps.on_call_over(self, outcome.detail)
                except Exception:
                    log.exception("call %s: end-of-call hook failed", self.call_id)
            self.ctx.emit(ev.CallEnded(status=outcome.status.value, reason=outcome.reason.value, detail=outcome.detail))


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
        return await self._session.steps.speech_of(text, cache=True)

    async def play(self, pcm: np.ndarray) -> bool:
        return await self._session.media.endpoints["hold"].play(pcm)

    def stop(self) -> None:
        endpoint = self._session.media.endpoints.get("hold")
        if endpoint is not None:
            endpoint.clear_outgoing()
