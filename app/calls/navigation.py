"""Finding the way through a phone menu during a call: hear, read, decide, act, check.

The session hands a LISTEN step to ``MenuNavigation.listen``. Three ways to answer it:

- **Replay** a learned step (``metadata.expected_transcript``): wait for the prompt, compare what
  was heard with what the flow expects (``app.ivr.learner.check_replay``) and, while it matches,
  do what the flow says, with no navigator decision. On a mismatch the flow is reported stale
  (``on_flow_mismatch``) and the call explores from this menu on.
- **Navigate** one menu (a LISTEN step without digits): the navigator chooses, once.
- **Explore** (``metadata.explore``, the step used when a number has no flow, or after a
  mismatch): menus are answered one after the other until hold music, a queue announcement or a
  person is heard.

Reading a menu only once it is over is what keeps a navigator from acting on half of it: the far
end must have been quiet for ``SETTLED_SILENCE_SECONDS`` *and* the transcripts must reach the
last sound heard (speech-to-text trails the audio); a weak guess (a fallback such as "press 0")
waits for ``GIVE_UP_SILENCE_SECONDS`` in case the options were still to come.

Everything the navigation does is an event (IVR_MENU_DETECTED, IVR_DTMF_SENT, IVR_SPEECH_SENT,
USER_DATA_REQUESTED/RECEIVED, IVR_STUCK, FLOW_MISMATCH), so the journal of a call is enough to
learn its flow afterwards (``app.ivr.learner``). Vault values never appear in events: digits
keyed from the vault are masked and spoken values are named by field.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from app.audio.activity import ActivityTracker
from app.calls import events as ev
from app.calls.listening import CallListener
from app.clock import Clock
from app.ivr.flow import CallFlowStep
from app.ivr.learner import ReplayCheck, check_replay
from app.ivr.loops import LoopDetector
from app.ivr.menu import GIVE_UP_SILENCE_SECONDS, DataRequest, Menu, parse_menu, prompt_finished
from app.ivr.navigator import (
    Action,
    Decision,
    EnterUserData,
    NavigationContext,
    Navigator,
    PressDigits,
    ReportHold,
    ReportHuman,
    ReportStuck,
    RequestUserData,
    Say,
    Turn,
    Wait,
    action_to_dict,
    describe_action,
    selection_of,
)
from app.ivr.vault import UserDataVault, VaultError, question_for

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25  # silence wakes nobody: re-read the menu's trailing quiet this often
TRANSCRIPT_SLACK_SECONDS = 0.6  # the last transcript ends this close to the last sound: it is all in
CONFIDENT = 0.6  # below this a choice is a guess, made only once the menu has surely ended
DEFAULT_USER_DATA_TIMEOUT = 120.0


class Outcome(str, Enum):
    ACTED = "acted"  # the menu was answered: go on with the flow
    HOLD = "hold"  # hold music or a queue announcement: the menus are over
    HUMAN = "human"  # a person answered
    TIMEOUT = "timeout"  # no menu to answer within the step's time
    STUCK = "stuck"  # no way through: the call should end


@dataclass(frozen=True)
class ListenResult:
    outcome: Outcome
    detail: str = ""


class NavigationHost(Protocol):
    """What navigation needs from the call session."""

    call_id: str
    activity: ActivityTracker

    @property
    def media_time(self) -> float: ...

    @property
    def hold_heard(self) -> bool: ...

    @property
    def human_heard(self) -> bool: ...  # the hold detector decided a person is on the line

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool: ...

    async def send_dtmf(self, digits: str, step_id: str, **detail: Any) -> None: ...

    async def say_text(self, text: str, step_id: str, *, cache: bool = True, **detail: Any) -> None: ...

    def emit(self, data: ev.EventData) -> None: ...


class MenuNavigation:
    def __init__(
        self,
        host: NavigationHost,
        *,
        clock: Clock,
        navigator: Navigator,
        listener: CallListener | None,
        intent: str,
        vault: UserDataVault,
        user_data_timeout: float = DEFAULT_USER_DATA_TIMEOUT,
        on_flow_mismatch: Callable[[CallFlowStep, ReplayCheck], None] | None = None,
    ) -> None:
        self.host = host
        self.clock = clock
        self.navigator = navigator
        self.listener = listener
        self.intent = intent
        self.vault = vault
        self.user_data_timeout = user_data_timeout
        self.on_flow_mismatch = on_flow_mismatch
        self.exploring = False  # a learned flow no longer matches: the navigator takes over
        self.history: list[Turn] = []
        self.selections: list[str] = []
        self.started_at: float | None = None
        self.loops: LoopDetector | None = None
        self.pending_request: RequestUserData | None = None

    # ------------------------------------------------------------------ entry points

    async def listen(self, step: CallFlowStep, timeout: float) -> ListenResult:
        if self.started_at is None:
            self.started_at = self.clock.now()
            self.loops = LoopDetector(started_at=0.0)
        deadline = self.clock.now() + timeout
        if self.exploring or step.metadata.get("explore"):
            return await self._navigate(step, deadline, until_hold=True)
        if step.metadata.get("expected_transcript"):
            return await self._replay(step, deadline)
        return await self._navigate(step, deadline, until_hold=False)

    def provide_user_data(self, field: str, value: str, permission: str | None = None) -> bool:
        """An answer from the user (API): stored in the vault; False for a never-entered field.
        Raises ValueError for a malformed field or value."""
        stored = self.vault.put(field, value, permission)  # type: ignore[arg-type]
        if stored:
            self.host.emit(ev.UserDataReceived(field=field, requested=self.pending_request is not None))
        return stored

    # ------------------------------------------------------------------ replaying a learned step

    async def _replay(self, step: CallFlowStep, deadline: float) -> ListenResult:
        start = self.host.media_time
        heard_from = self.host.activity.active_seconds
        if self.listener is None:
            # No speech-to-text: nothing to check against, so the flow is trusted as written.
            await self.host.wait_for(lambda: self._prompt_over(heard_from) or self.host.hold_heard, deadline - self.clock.now())
            if self.host.hold_heard:
                return ListenResult(Outcome.HOLD, "hold music before the menu")
            await self._act_as_learned(step)
            return ListenResult(Outcome.ACTED)
        menu = await self._hear_menu(start, heard_from, deadline, asked_at=-1)
        if menu is None:
            return self._no_menu(step)
        if isinstance(menu, Outcome):
            return ListenResult(menu)
        transcript = self.listener.text_since(start)
        check = check_replay(step, transcript, menu)
        self._menu_heard(step, transcript, menu, start, heard_from, replay=ev.ReplayCheckResult(ok=check.ok, similarity=round(check.similarity, 3), reason=check.reason))
        if check.ok:
            await self._act_as_learned(step)
            return ListenResult(Outcome.ACTED)
        self.host.emit(ev.FlowMismatch(
            step_id=step.id,
            expected_transcript=step.metadata.get("expected_transcript"),
            heard_transcript=transcript,
            similarity=round(check.similarity, 3),
            reason=check.reason))
        if self.on_flow_mismatch is not None:
            self.on_flow_mismatch(step, check)
        self.exploring = True
        return await self._navigate(step, deadline, until_hold=True, start=start, heard_from=heard_from, first_menu=(transcript, menu))

    async def _act_as_learned(self, step: CallFlowStep) -> None:
        detail = {"navigator": "flow", "purpose": "flow", "reason": "the learned flow"}
        if step.dtmf:
            await self.host.send_dtmf(step.dtmf, step.id, **detail)
        elif text := step.metadata.get("say"):
            await self.host.say_text(str(text), step.id, **detail)
        elif entry := step.metadata.get("user_data"):
            mode = entry.get("mode", "dtmf")
            request = DataRequest(
                field=str(entry["field"]),
                modes=frozenset({mode}),
                terminator=entry.get("terminator"),
                length=entry.get("length"),
            )
            if request.field not in self.vault:
                # This call's user did not give it: ask, as when exploring.
                ask = RequestUserData(request.field, question_for(request.field))
                await self._ask_user(step, ask, "", self.clock.now() + self.user_data_timeout)
            await self._enter(EnterUserData(request.field, mode), request, step.id, detail)

    # ------------------------------------------------------------------ the navigator's loop

    async def _navigate(
        self,
        step: CallFlowStep,
        deadline: float,
        *,
        until_hold: bool,
        start: float | None = None,
        heard_from: float | None = None,
        first_menu: tuple[str, Menu] | None = None,
    ) -> ListenResult:
        """Read each menu, let the navigator decide, act; once (a navigated step) or until hold."""
        if self.listener is None:
            # Deaf to words: only the detector can still tell that the menus are over.
            held = await self.host.wait_for(lambda: self.host.hold_heard, deadline - self.clock.now())
            return ListenResult(Outcome.HOLD if held else Outcome.TIMEOUT, "no speech-to-text")
        assert self.loops is not None
        start = self.host.media_time if start is None else start
        heard_from = self.host.activity.active_seconds if heard_from is None else heard_from
        asked_at = -1  # transcripts count at the last decision: ask again only on new speech
        while True:
            if first_menu is not None:
                transcript, menu = first_menu
                first_menu = None
            else:
                heard = await self._hear_menu(start, heard_from, deadline, asked_at)
                if heard is None:
                    return self._no_menu(step)
                if isinstance(heard, Outcome):
                    return ListenResult(heard)
                menu = heard
                transcript = self.listener.text_since(start)
                self._menu_heard(step, transcript, menu, start, heard_from)
            asked_at = len(self.listener.finals)
            self.loops.observe_prompt(transcript, menu)
            decision = await self._decide(transcript, menu)
            if self._is_guess(decision) and self.host.activity.quiet_for(self.host.media_time) < GIVE_UP_SILENCE_SECONDS:
                # Maybe more options are coming: decide again once the menu has surely ended.
                count = len(self.listener.finals)
                await self.host.wait_for(
                    lambda: len(self.listener.finals) > count
                    or self.host.activity.quiet_for(self.host.media_time) >= GIVE_UP_SILENCE_SECONDS,
                    deadline - self.clock.now(),
                )
                if len(self.listener.finals) > count:
                    continue
                transcript = self.listener.text_since(start)
                menu = parse_menu(transcript, trailing_silence_seconds=self.host.activity.quiet_for(self.host.media_time))
                decision = await self._decide(transcript, menu)
            assessment = self.loops.assess(self._elapsed())
            if assessment is not None:
                self.host.emit(ev.IvrStuck(
                    step_id=step.id,
                    problem=assessment.problem.value,
                    recovery=assessment.recovery.value,
                    reason=assessment.reason))
                if assessment.action is not None:
                    decision = Decision(assessment.action, f"recovery: {assessment.reason}", 0.5, "loop-detector")
            result = await self._carry_out(step, decision, transcript, menu, deadline)
            if result is not None:
                return result
            if isinstance(decision.action, RequestUserData) and decision.action.field in self.vault:
                first_menu = (transcript, menu)  # the answer came: enter it now, the menu is waiting
                continue
            if not until_hold and self._answered(decision.action):
                return ListenResult(Outcome.ACTED)
            if self._answered(decision.action):
                # A new menu (or hold) follows: hear it from here.
                start, heard_from = self.host.media_time, self.host.activity.active_seconds
                asked_at = -1

    async def _decide(self, transcript: str, menu: Menu) -> Decision:
        assert self.loops is not None
        ctx = NavigationContext(
            intent=self.intent,
            transcript=transcript,
            menu=menu,
            history=list(self.history),
            previous_selections=list(self.selections),
            available_data=self.vault.available(),
            attempt=max(1, self.loops.hearings(menu)),
            elapsed_seconds=round(self._elapsed(), 2),
            warnings=self.loops.warnings(),
        )
        return await self.navigator.decide(ctx)

    async def _carry_out(
        self, step: CallFlowStep, decision: Decision, transcript: str, menu: Menu, deadline: float
    ) -> ListenResult | None:
        """Do what was decided; a result when the step is over, None to keep listening."""
        assert self.loops is not None and self.listener is not None
        action = decision.action
        detail = _decision_data(decision)
        purpose = "recovery" if decision.navigator == "loop-detector" else "selection"
        self._remember(transcript, action)
        match action:
            case PressDigits(digits=digits):
                await self.host.send_dtmf(digits, step.id, purpose=purpose, **detail)
            case Say(text=text):
                await self.host.say_text(text, step.id, purpose=purpose, **detail)
            case EnterUserData():
                request = next((r for r in menu.data_requests if r.field == action.field), None)
                await self._enter(action, request, step.id, detail)
            case RequestUserData():
                self._emit_decision(step, decision)
                await self._ask_user(step, action, transcript, deadline)
            case Wait(seconds=seconds):
                self._emit_decision(step, decision)
                count = len(self.listener.finals)
                until = min(deadline, self.clock.now() + seconds)
                await self.host.wait_for(lambda: len(self.listener.finals) > count or self.host.hold_heard, until - self.clock.now())
                if self.host.hold_heard:
                    return ListenResult(Outcome.HOLD)
            case ReportHold():
                self._emit_decision(step, decision)
                return ListenResult(Outcome.HOLD, decision.reason)
            case ReportHuman():
                self._emit_decision(step, decision)
                return ListenResult(Outcome.HUMAN, decision.reason)
            case ReportStuck(reason=reason):
                self._emit_decision(step, decision)
                return ListenResult(Outcome.STUCK, reason)
        self.loops.observe_action(action, self._elapsed())
        return None

    # ------------------------------------------------------------------ user data

    async def _enter(self, action: EnterUserData, request: DataRequest | None, step_id: str, detail: dict[str, Any]) -> bool:
        try:
            value = self.vault.render(
                action.field,
                action.mode,
                terminator=request.terminator if request else None,
                date_format=request.date_format if request else None,
                length=request.length if request else None,
            )
        except VaultError as error:
            log.info("call %s: cannot enter %s: %s", self.host.call_id, action.field, error)
            self.host.emit(ev.IvrStep(step_id=step_id, note=f"could not enter the {action.field}: {error}"))
            return False
        extra = {**detail, "purpose": "user_data", "field": action.field}
        if action.mode == "dtmf":
            await self.host.send_dtmf(value, step_id, masked=True, **extra)
        else:
            await self.host.say_text(value, step_id, cache=False, masked=True, **extra)
        return True

    async def _ask_user(self, step: CallFlowStep, action: RequestUserData, transcript: str, deadline: float) -> None:
        """Ask the user (through the event stream) and wait for the answer instead of guessing."""
        request_id = uuid.uuid4().hex[:8]
        self.pending_request = action
        timeout = max(0.0, min(self.user_data_timeout, deadline - self.clock.now()))
        self.host.emit(ev.UserDataRequested(
            step_id=step.id,
            request_id=request_id,
            field=action.field,
            question=action.question,
            transcript=transcript,
            timeout_seconds=round(timeout, 1)))
        try:
            await self.host.wait_for(lambda: action.field in self.vault, timeout)
        finally:
            self.pending_request = None

    # ------------------------------------------------------------------ hearing a menu

    def _prompt_over(self, heard_from: float) -> bool:
        activity = self.host.activity
        return prompt_finished(activity.active_seconds - heard_from, activity.quiet_for(self.host.media_time))

    async def _hear_menu(self, start: float, heard_from: float, deadline: float, asked_at: int) -> Menu | Outcome | None:
        """The menu heard since ``start``, once it is over and transcribed; an Outcome when hold
        music came instead; None when the time is up."""
        listener = self.listener
        assert listener is not None

        def ready() -> Menu | Outcome | None:
            if self.host.human_heard:
                return Outcome.HUMAN
            if self.host.hold_heard:
                return Outcome.HOLD
            if len(listener.finals) == asked_at or not self._prompt_over(heard_from):
                return None
            text = listener.text_since(start)
            if not text:
                return None  # the prompt ended but its transcript is still being made
            quiet = self.host.activity.quiet_for(self.host.media_time)
            last_sound = self.host.activity.last_active_t or 0.0
            if listener.finals[-1].t_end < last_sound - TRANSCRIPT_SLACK_SECONDS and quiet < GIVE_UP_SILENCE_SECONDS:
                return None  # the last words are still being transcribed
            menu = parse_menu(text, trailing_silence_seconds=quiet)
            if menu.is_empty and not menu.is_hold_message and not menu.sounds_human and quiet < GIVE_UP_SILENCE_SECONDS:
                return None  # a greeting ("... you may dial it at any time"): the options are still to come
            return menu if menu.complete else None

        while True:
            found = ready()
            if found is not None:
                return found
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                return None
            await self.host.wait_for(lambda: ready() is not None, min(POLL_SECONDS, remaining))

    def _menu_heard(
        self,
        step: CallFlowStep,
        transcript: str,
        menu: Menu,
        start: float,
        heard_from: float,
        replay: ev.ReplayCheckResult | None = None,
    ) -> None:
        assert self.listener is not None
        self.host.emit(ev.IvrMenuDetected(
            step_id=step.id,
            transcript=transcript,
            options=[
                {"key": o.key, "spoken": o.spoken, "label": o.label, "kind": o.kind.value} for o in menu.options
            ],
            data_requests=[
                {"field": r.field, "modes": sorted(r.modes), "terminator": r.terminator, "length": r.length}
                for r in menu.data_requests
            ],
            open_question=menu.open_question,
            is_hold_message=menu.is_hold_message,
            t_start=round(start, 3),
            t_end=round(self.host.media_time, 3),
            heard_seconds=round(self.host.activity.active_seconds - heard_from, 2),
            listened_seconds=round(self.host.media_time - start, 2),
            stt=self.listener.provider,
            replay=replay))

    def _no_menu(self, step: CallFlowStep) -> ListenResult:
        if self.host.hold_heard:
            return ListenResult(Outcome.HOLD)
        return ListenResult(Outcome.TIMEOUT, f"no menu to answer within step {step.id}'s time")

    # ------------------------------------------------------------------ helpers

    def _remember(self, transcript: str, action: Action) -> None:
        self.history.append(Turn(transcript, action, round(self._elapsed(), 2)))
        if (selection := selection_of(action)) is not None:
            self.selections.append(selection)

    def _elapsed(self) -> float:
        return self.clock.now() - (self.started_at if self.started_at is not None else self.clock.now())

    @staticmethod
    def _answered(action: Action) -> bool:
        return isinstance(action, (PressDigits, Say, EnterUserData))

    @staticmethod
    def _is_guess(decision: Decision) -> bool:
        return isinstance(decision.action, (PressDigits, Say)) and decision.confidence < CONFIDENT

    def _emit_decision(self, step: CallFlowStep, decision: Decision) -> None:
        self.host.emit(ev.IvrStep(
            step_id=step.id,
            step_type=step.type.value,
            description=step.description,
            decision=describe_action(decision.action),
            **_decision_data(decision)))


def _decision_data(decision: Decision) -> dict[str, Any]:
    return {
        "navigator": decision.navigator,
        "reason": decision.reason,
        "confidence": round(decision.confidence, 3),
        "action": action_to_dict(decision.action),
    }
