"""The handoff room: when the app speaks to a possible person, and how it carries that out.

``HandoffPolicy`` is pure (stream times in, actions out); ``Handoff`` is driven here with a fake
speaker (records what it was asked to say, plays in fake time, can be cut short) and a fake
hearing (records what the detector was told), no PBX and no TTS.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.audio.types import HumanDetected, HumanRetracted, HumanSuspected
from app.calls.handoff import Handoff, HandoffPolicy, HandoffSettings, Line, Say, Stop

FRAME = 0.02


def suspicion(t: float) -> HumanSuspected:
    return HumanSuspected(t=t, confidence=0.5, evidence={"rule": "speech"})


def frames(policy: HandoffPolicy, start: float, seconds: float, speaking: bool) -> list:
    """Feed frames of far-end speech (or not) from ``start``; the actions they led to, with their times."""
    actions = []
    for i in range(int(round(seconds / FRAME))):
        t = start + i * FRAME
        actions += [(round(t, 2), a) for a in policy.tick(t, speaking)]
    return actions


def test_a_suspicion_is_greeted_at_once_and_again_at_a_pause_if_they_talked_on_over_it():
    policy = HandoffPolicy(HandoffSettings(greet_after_quiet_seconds=0.4, yield_seconds=0.6, barge_in_seconds=0.3))
    assert frames(policy, 0.0, 0.5, True) == []
    policy.on_suspected(suspicion(0.5))
    [(t, opener)] = frames(policy, 0.5, 0.02, True)
    assert opener == Say(Line.GREETING, policy.settings.greeting) and t == pytest.approx(0.5)
    # They talk on: after the time to hear us and stop (0.6 s), 0.3 s more of it stops us.
    [(t, stop)] = frames(policy, 0.52, 1.5, True)
    assert stop == Stop("the far end talks over us") and t == pytest.approx(0.5 + 0.6 + 0.3, abs=1.5 * FRAME)
    policy.on_said(Line.GREETING, t)
    assert frames(policy, 2.02, 1.0, True) == []  # still talking: we wait
    [(t, again)] = frames(policy, 3.02, 1.0, False)
    assert again.line is Line.GREETING and t == pytest.approx(3.02 + 0.4, abs=FRAME)


def test_a_talker_who_stops_when_we_begin_is_not_talked_over():
    policy = HandoffPolicy(HandoffSettings(yield_seconds=0.6, barge_in_seconds=0.3))
    frames(policy, 0.0, 0.5, True)
    policy.on_suspected(suspicion(0.5))
    frames(policy, 0.5, 0.4, True)  # they finish their syllable...
    assert frames(policy, 0.9, 1.5, False) == []  # ... and listen
    assert policy.speaking is Line.GREETING


def test_the_opener_is_followed_by_the_introduction_at_once_when_answered_else_after_a_second():
    answered = HandoffPolicy(HandoffSettings(greet_after_quiet_seconds=0.4, intro_after_quiet_seconds=1.0))
    frames(answered, 0.0, 1.0, True)
    answered.on_suspected(suspicion(0.5))
    [(_, opener)] = frames(answered, 1.0, 0.5, False)
    assert opener == Say(Line.GREETING, answered.settings.greeting)
    answered.on_said(Line.GREETING, 3.0)
    frames(answered, 3.0, 0.3, False)
    frames(answered, 3.3, 0.6, True)  # "hi, yes?"
    [(t, intro)] = frames(answered, 3.9, 1.0, False)
    assert intro == Say(Line.INTRO, answered.settings.intro) and t == pytest.approx(4.3, abs=FRAME)

    silent = HandoffPolicy(HandoffSettings(greet_after_quiet_seconds=0.4, intro_after_quiet_seconds=1.0))
    frames(silent, 0.0, 1.0, True)
    silent.on_suspected(suspicion(0.5))
    frames(silent, 1.0, 0.5, False)
    silent.on_said(Line.GREETING, 3.0)
    [(t, intro)] = frames(silent, 3.0, 2.0, False)
    assert intro.line is Line.INTRO and t == pytest.approx(4.0, abs=FRAME)


def test_after_the_introduction_silence_brings_the_probe():
    policy = HandoffPolicy(HandoffSettings(probe_after_quiet_seconds=2.5, intro_after_quiet_seconds=1.0))
    frames(policy, 0.0, 1.0, True)
    policy.on_suspected(suspicion(0.5))
    [(_, greeting)] = frames(policy, 1.0, 1.0, False)
    assert greeting.line is Line.GREETING
    policy.on_said(Line.GREETING, 3.0)
    [(_, intro)] = frames(policy, 3.0, 1.5, False)
    assert intro.line is Line.INTRO
    policy.on_said(Line.INTRO, 9.0)
    assert frames(policy, 4.5, 6.9, False) == []  # 2.4 s after our words: not yet
    [(t, probe)] = frames(policy, 11.4, 2.0, False)
    assert probe == Say(Line.PROBE, policy.settings.probe) and t == pytest.approx(11.5, abs=FRAME)
    policy.on_said(Line.PROBE, 12.7)
    assert policy.probes == 1


def test_the_far_end_talking_over_us_stops_us_and_our_echo_does_not():
    policy = HandoffPolicy(HandoffSettings(barge_in_seconds=0.3))
    frames(policy, 0.0, 1.0, True)
    policy.on_suspected(suspicion(0.5))
    frames(policy, 1.0, 0.5, False)
    assert policy.speaking is Line.GREETING
    # The pipeline removes our echo before the policy sees a frame: quiet frames while we speak.
    assert frames(policy, 1.5, 2.0, False) == []
    actions = frames(policy, 3.5, 0.5, True)
    assert [a for _, a in actions] == [Stop("the far end talks over us")]
    assert actions[0][0] == pytest.approx(3.5 + 0.3, abs=1.5 * FRAME)


def test_a_retraction_stops_our_words_and_no_probe_follows():
    policy = HandoffPolicy()
    frames(policy, 0.0, 1.0, True)
    policy.on_suspected(suspicion(0.5))
    frames(policy, 1.0, 0.5, False)
    actions = policy.on_retracted(HumanRetracted(t=2.0, confidence=0.8, suspected_t=0.5, evidence={"why": "music came back"}))
    assert actions == [Stop("retracted: music came back")]
    policy.on_said(Line.GREETING, 2.0)
    assert frames(policy, 2.0, 10.0, False) == []


def test_a_new_suspicion_after_a_retraction_is_greeted_again_and_lines_are_capped():
    policy = HandoffPolicy(HandoffSettings(lines_per_suspicion=3, probe_after_quiet_seconds=1.5))
    said = []
    t = 0.0
    for _ in range(2):
        frames(policy, t, 1.0, True)
        policy.on_suspected(suspicion(t + 0.5))
        for i in range(300):
            now = t + 1.0 + i * FRAME
            for action in policy.tick(now, False):
                said.append(action.line)
                policy.on_said(action.line, now)  # said in no time
        t += 20.0
    # Per suspicion: the opener, the introduction and one probe (three lines), then nothing more.
    assert said == [Line.GREETING, Line.INTRO, Line.PROBE] * 2


def test_connecting_introduces_us_to_a_person_not_yet_told_and_keeps_them_on_the_line():
    policy = HandoffPolicy(HandoffSettings(hold_on_after_quiet_seconds=2.0, hold_on_every_seconds=12.0))
    frames(policy, 0.0, 1.0, True)
    policy.on_detected(HumanDetected(t=1.0, confidence=0.9, evidence={"rule": "transcript"}))
    assert policy.on_connecting() == [Say(Line.INTRO, policy.settings.intro)]
    policy.on_said(Line.INTRO, 5.0)
    assert frames(policy, 5.0, 5.0, False) == []  # they said nothing since our words
    frames(policy, 10.0, 1.0, True)  # "hello? anyone there?"
    [(t, hold_on)] = frames(policy, 11.0, 3.0, False)
    assert hold_on.line is Line.HOLD_ON and t == pytest.approx(13.0, abs=FRAME)


# -- the room, with fakes --------------------------------------------------------------------------


class FakeSpeaker:
    """TTS gives 1 s of audio per line; play takes ``seconds_per_line`` of (fake) time unless stopped."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.played: list[int] = []
        self.rendered: list[str] = []
        self._stopped = asyncio.Event()

    async def speech(self, text: str) -> np.ndarray:
        self.rendered.append(text)
        return np.full(8000, 1000, dtype=np.int16)

    async def play(self, pcm: np.ndarray) -> bool:
        self.played.append(len(pcm))
        self._stopped.clear()
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=0.2)
        except TimeoutError:
            self.clock[0] += len(pcm) / 8000
            return True
        return False

    def stop(self) -> None:
        self._stopped.set()


class FakeHearing:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def our_speech_started(self, t: float, pcm: np.ndarray) -> None:
        self.calls.append(("started", t))

    def our_speech_ended(self, t: float) -> None:
        self.calls.append(("ended", t))


async def test_the_room_says_the_greeting_and_tells_the_detector_when():
    clock = [0.0]
    speaker, hearing, events = FakeSpeaker(clock), FakeHearing(), []
    handoff = Handoff(
        HandoffPolicy(), speaker, hearing, now=lambda: clock[0], emit=lambda line, **data: events.append((line, data))
    )
    await handoff.prepare()
    s = handoff.policy.settings
    assert set(speaker.rendered) == {s.greeting, s.intro, s.probe, s.hold_on}
    for i in range(50):
        clock[0] = i * FRAME
        handoff.heard(clock[0], True)
    handoff.suspected(suspicion(0.5))
    for i in range(50, 80):
        clock[0] = i * FRAME
        handoff.heard(clock[0], False)
    assert handoff.speaking
    await handoff.finish_speaking(timeout=2.0)
    assert not handoff.speaking
    started, ended = hearing.calls[:2]
    assert started[0] == "started" and ended[0] == "ended" and ended[1] == pytest.approx(started[1] + 1.0)
    assert events[0][0] is Line.GREETING and events[0][1]["text"] == handoff.policy.settings.greeting
    assert handoff.said[0][0] is Line.GREETING and handoff.said[0][3] is True  # said whole


async def test_the_room_cuts_its_words_short_when_talked_over():
    clock = [0.0]
    speaker, hearing = FakeSpeaker(clock), FakeHearing()
    handoff = Handoff(HandoffPolicy(), speaker, hearing, now=lambda: clock[0], emit=lambda *a, **k: None)
    handoff.heard(0.0, True)
    handoff.suspected(suspicion(0.5))
    for i in range(1, 40):
        handoff.heard(i * FRAME, False)
    await asyncio.sleep(0)  # the greeting starts
    for i in range(40, 60):
        handoff.heard(i * FRAME, True)  # barge-in
    await handoff.finish_speaking(timeout=2.0)
    assert handoff.said[0][0] is Line.GREETING and handoff.said[0][3] is False
    assert hearing.calls[-1][0] == "ended"
    assert handoff.policy.speaking is None


async def test_winding_down_lets_the_line_under_way_end_and_begins_no_other():
    """Seen in a bridged call: the user answered between two of our lines, the introduction began
    just after, and the bridge cut it off at its first word. Once the user is about to be put
    through, the line under way ends whole and no new one begins."""
    clock = [0.0]
    speaker, hearing, events = FakeSpeaker(clock), FakeHearing(), []
    handoff = Handoff(
        HandoffPolicy(), speaker, hearing, now=lambda: clock[0], emit=lambda line, **data: events.append((line, data))
    )
    handoff.heard(0.0, True)
    handoff.suspected(suspicion(0.5))
    for i in range(1, 40):
        handoff.heard(i * FRAME, False)
    await asyncio.sleep(0)  # the greeting starts
    assert handoff.speaking
    handoff.wind_down()
    await handoff.finish_speaking(timeout=2.0)
    assert [line for line, _ in events] == [Line.GREETING] and handoff.said[0][3] is True
    handoff.detected(HumanDetected(t=clock[0], confidence=0.9, evidence={"rule": "reply"}))
    handoff.connecting()
    for i in range(200):  # the person waits in silence: the policy would speak again
        handoff.heard(clock[0] + i * FRAME, False)
    await asyncio.sleep(0)
    assert not handoff.speaking and [line for line, _ in events] == [Line.GREETING]
