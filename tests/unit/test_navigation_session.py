"""MenuNavigation (app/calls/navigation.py) against a scripted far end: when a menu is read, what
is done about it, and what is journalled. The host is a fake with its own clock: audio activity
and transcripts appear at scripted call times while the navigation waits, so every timing rule
is exact (the end-to-end behaviour is in test_e2e_navigation.py and test_e2e_nav_scenarios.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from app.audio.activity import ActivityTracker
from app.calls import events as ev
from app.calls.events import EventType
from app.calls.navigation import MenuNavigation, Outcome
from app.ivr.flow import CallFlowStep, StepType
from app.ivr.navigator import OfflineNavigator
from app.ivr.vault import UserDataVault
from app.speech import Transcript
from tests.fakes.clock import ManualClock

STEP = 0.02  # the fake far end advances in 20 ms frames
LOUD = np.full(160, 3000, dtype=np.int16)
QUIET = np.zeros(160, dtype=np.int16)

MENU = "Thank you for calling. For billing, press 1. For technical support, press 2."


@dataclass
class FakeListener:
    provider: str = "local"
    finals: list[Transcript] = field(default_factory=list)

    def text_since(self, t: float) -> str:
        return " ".join(x.text for x in self.finals if x.t_end > t).strip()


@dataclass
class Speech:
    """The far end says ``text`` from ``start`` to ``end``; STT delivers it ``lag`` s later."""

    text: str
    start: float
    end: float
    lag: float = 0.4


class FakeHost:
    call_id = "test"

    def __init__(self, script: list[Speech], clock: ManualClock, listener: FakeListener) -> None:
        self.script = script
        self.clock = clock
        self.listener = listener
        self.activity = ActivityTracker()
        self.events: list[tuple[EventType, dict[str, Any]]] = []
        self.sent: list[str] = []
        self.said: list[str] = []
        self.hold = False
        self.on_input: Callable[[], None] | None = None

    @property
    def media_time(self) -> float:
        return self.clock.t

    @property
    def hold_heard(self) -> bool:
        return self.hold

    @property
    def human_heard(self) -> bool:
        return False

    def _tick(self) -> None:
        t = self.clock.t
        loud = any(s.start <= t < s.end for s in self.script)
        self.activity.push(LOUD if loud else QUIET, t, STEP)
        for speech in self.script:
            done = speech.end + speech.lag
            if done <= t and not any(f.text == speech.text and f.t_start == speech.start for f in self.listener.finals):
                self.listener.finals.append(Transcript(speech.text, speech.start, speech.end, True))
        self.clock.t = round(t + STEP, 6)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        deadline = self.clock.t + (timeout if timeout is not None else 1e9)
        while self.clock.t < deadline:
            if predicate():
                return True
            self._tick()
        return predicate()

    async def send_dtmf(self, digits: str, step_id: str, *, masked: bool = False, **detail: Any) -> None:
        self.sent.append(digits)
        self.emit(ev.IvrDtmfSent(step_id=step_id, digits="*" * len(digits) if masked else digits, **detail))
        if self.on_input:
            self.on_input()

    async def say_text(self, text: str, step_id: str, *, cache: bool = True, masked: bool = False, **detail: Any) -> None:
        self.said.append(text)
        self.emit(ev.IvrSpeechSent(step_id=step_id, text=text, seconds=0.5 * len(text.split()), **detail))

    def emit(self, data: ev.EventData) -> None:
        self.events.append((data.TYPE, data.model_dump(mode="json")))

    def of(self, type_: EventType) -> list[dict[str, Any]]:
        return [data for kind, data in self.events if kind is type_]


def navigation(script: list[Speech], *, vault: UserDataVault | None = None, intent: str = "pay my bill"):
    clock = ManualClock(jumping=True)
    listener = FakeListener()
    host = FakeHost(script, clock, listener)
    mismatches: list[str] = []
    nav = MenuNavigation(
        host,  # type: ignore[arg-type]
        clock=clock,
        navigator=OfflineNavigator(),
        listener=listener,  # type: ignore[arg-type]
        intent=intent,
        vault=vault or UserDataVault(),
        user_data_timeout=30.0,
        on_flow_mismatch=lambda step, check: mismatches.append(step.id),
    )
    return nav, host, mismatches


def listen_step(**metadata: Any) -> CallFlowStep:
    return CallFlowStep(id="menu", type=StepType.LISTEN, metadata=metadata)


async def test_a_menu_is_answered_only_once_it_is_over_and_transcribed():
    # The options come in two utterances with a 1.2 s pause between them: acting after the first
    # would be acting on half a menu ("billing" is the wanted option either way, but the key
    # must come after the whole menu and its transcript).
    script = [
        Speech("Thank you for calling. For technical support, press 2.", 0.5, 4.0),
        Speech("For billing, press 1.", 5.2, 7.0, lag=2.5),  # a slow recogniser
    ]
    nav, host, _ = navigation(script)
    result = await nav.listen(listen_step(), timeout=30.0)

    assert result.outcome is Outcome.ACTED
    assert host.sent == ["1"]
    menu = host.of(EventType.IVR_MENU_DETECTED)[0]
    assert "billing" in menu["transcript"] and {o["key"] for o in menu["options"]} == {"1", "2"}
    # quiet for SETTLED (1.5 s) after the last word at 7.0 is not enough: its transcript is in at 9.5
    assert menu["t_end"] >= 9.5


async def test_a_guess_waits_until_the_menu_has_surely_ended():
    # Nothing fits a letter: the fallback (a person) is a guess, made only after 3 s of quiet.
    script = [Speech("For billing, press 1. For sales, press 2. For an operator, press 0.", 0.5, 5.0)]
    nav, host, _ = navigation(script, intent="a question about a letter I got")
    await nav.listen(listen_step(), timeout=30.0)
    sent = host.of(EventType.IVR_DTMF_SENT)
    assert host.sent == ["0"] and sent[0]["navigator"] == "offline"


async def test_a_learned_step_is_replayed_while_the_menu_matches():
    script = [Speech(MENU, 0.5, 5.0)]
    nav, host, mismatches = navigation(script)
    step = listen_step(expected_transcript=MENU.replace("Thank you", "Thanks"), chosen={"key": "1", "label": "billing"})
    step = step.model_copy(update={"dtmf": "1"})
    result = await nav.listen(step, timeout=30.0)

    assert result.outcome is Outcome.ACTED and host.sent == ["1"]
    assert host.of(EventType.IVR_DTMF_SENT)[0]["navigator"] == "flow"
    replay = host.of(EventType.IVR_MENU_DETECTED)[0]["replay"]
    assert replay["ok"] and replay["similarity"] > 0.8
    assert not mismatches and not host.of(EventType.FLOW_MISMATCH)


async def test_a_changed_menu_is_noticed_and_the_navigator_takes_over():
    changed = "Thank you for calling. For outages, press 1. For technical support, press 2. For billing, press 3."
    script = [Speech(changed, 0.5, 6.0)]
    nav, host, mismatches = navigation(script)
    host.on_input = lambda: setattr(host, "hold", True)  # the key leads to hold music
    step = listen_step(expected_transcript=MENU, chosen={"key": "1", "label": "billing"}).model_copy(update={"dtmf": "1"})
    result = await nav.listen(step, timeout=30.0)

    assert host.sent == ["3"], "billing moved to 3: the flow's 1 is not pressed"
    assert host.of(EventType.IVR_DTMF_SENT)[0]["navigator"] == "offline"
    mismatch = host.of(EventType.FLOW_MISMATCH)[0]
    assert mismatch["step_id"] == "menu" and mismatch["reason"]
    assert mismatches == ["menu"] and nav.exploring
    assert result.outcome is Outcome.HOLD, "exploring goes on until hold"


async def test_missing_data_is_asked_for_then_entered_masked():
    script = [Speech("Please enter your account number, followed by the pound key.", 0.5, 4.0)]
    vault = UserDataVault()
    nav, host, _ = navigation(script, vault=vault)
    host.on_input = lambda: setattr(host, "hold", True)

    answered_at = 12.0
    original_tick = host._tick

    def tick() -> None:
        if host.clock.t >= answered_at and "account_number" not in vault:
            nav.provide_user_data("account_number", "12345678")
        original_tick()

    host._tick = tick  # type: ignore[method-assign]
    result = await nav.listen(listen_step(explore=True), timeout=60.0)

    asked = host.of(EventType.USER_DATA_REQUESTED)
    assert len(asked) == 1 and asked[0]["field"] == "account_number" and asked[0]["timeout_seconds"] > 0
    assert host.of(EventType.USER_DATA_RECEIVED)[0]["field"] == "account_number"
    assert host.sent == ["12345678#"]
    entry = host.of(EventType.IVR_DTMF_SENT)[0]
    assert entry["digits"] == "*********" and entry["purpose"] == "user_data" and entry["field"] == "account_number"
    assert "12345678" not in str(host.events)
    assert result.outcome is Outcome.HOLD


async def test_without_speech_to_text_exploring_waits_for_hold_music():
    clock = ManualClock(jumping=True)
    host = FakeHost([], clock, FakeListener())
    nav = MenuNavigation(host, clock=clock, navigator=OfflineNavigator(), listener=None, intent="x", vault=UserDataVault())  # type: ignore[arg-type]
    host.script = []
    result = await nav.listen(listen_step(explore=True), timeout=5.0)
    assert result.outcome is Outcome.TIMEOUT and not host.sent
    host.hold = True
    assert (await nav.listen(listen_step(explore=True), timeout=5.0)).outcome is Outcome.HOLD


@pytest.mark.parametrize("field_name", ["ssn", "card_number"])
def test_never_entered_fields_are_refused_from_the_api(field_name):
    nav, host, _ = navigation([])
    assert nav.provide_user_data(field_name, "123456789") is False
    assert field_name not in nav.vault and not host.of(EventType.USER_DATA_RECEIVED)
