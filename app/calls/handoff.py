"""The handoff: keep a possible person on the line until the user is there.

Two stages (``app.audio.human``): a **suspected** person is spoken to at once — harmless if it
was a recording — and a **detected** one rings the user. Between them and after them, the app
must never leave a person talking to silence:

- a suspicion is greeted at once, in two lines: a short opener ("Hi, thanks for picking up!")
  and the introduction ("I'm an automated assistant calling for Alex; I'm connecting them now,
  one moment please") once they have answered or let a second pass. Speaking at once is also
  the test: a person who hears us stops talking and then answers; a recording carries on;
- our words are interruptible: a far end that goes on talking over them (not our echo) stops
  them, and the opener is tried again at the next pause in their words;
- when words on hold are followed by silence and nothing has decided, the app asks
  ("Hello? Are you there?");
- a retraction (music came back, the audio proved to be a recording) stops them too;
- once the user's phone rings, a person who speaks and then waits is told we are connecting.

Two parts. ``HandoffPolicy`` is pure: it is told what the detector decided and, frame by frame,
whether the far end is talking; it answers with actions (say this, stop). ``Handoff`` is the
room of the call session that carries the actions out: text to speech, sending the audio into
the call, telling the detector what we said and when (so our words and their echo are never a
reply), and emitting the events. It knows nothing of ARI: the session gives it a ``Speaker``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np

from app.audio.types import HumanDetected, HumanRetracted, HumanSuspected

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000


class Line(str, Enum):
    """What the app says to the far end, and why."""

    GREETING = "greeting"  # to a suspected person: a short opener they answer at once
    INTRO = "intro"  # who we are, that the user is coming
    PROBE = "probe"  # words stopped and nothing decided: are you there?
    HOLD_ON = "hold_on"  # the user's phone is ringing and the person waits


@dataclass(frozen=True)
class HandoffSettings:
    greeting: str = "Hi, thanks for picking up!"
    intro: str = "I'm an automated assistant calling for a customer; I'm connecting them now, one moment please."
    probe: str = "Hello? Are you there?"
    hold_on: str = "Thank you for waiting. I'm connecting them now, one moment please."
    probe_enabled: bool = True
    greet_after_quiet_seconds: float = 0.4  # a pause in their words, to try the opener again
    intro_after_quiet_seconds: float = 1.5  # after the opener, when no answer came (people answer in 0.2-1.2 s)
    probe_after_quiet_seconds: float = 2.5  # words, then this long with nothing decided and nothing said
    yield_seconds: float = 0.6  # a talker who hears us begin stops within this
    barge_in_seconds: float = 0.3  # ... and one who talks on over us this long after it stops us
    lines_per_suspicion: int = 4  # opener, introduction and probes to one suspected talker
    probes_per_call: int = 6
    hold_on_after_quiet_seconds: float = 2.0  # while the user's phone rings
    hold_on_every_seconds: float = 12.0
    hold_ons_per_call: int = 4


@dataclass(frozen=True)
class Say:
    line: Line
    text: str


@dataclass(frozen=True)
class Stop:
    reason: str


Action = Say | Stop


@dataclass
class HandoffPolicy:
    """When to speak to the far end; pure (stream times in, actions out)."""

    settings: HandoffSettings = field(default_factory=HandoffSettings)
    speaking: Line | None = None
    suspicion: HumanSuspected | None = None
    detected: HumanDetected | None = None
    connecting: bool = False  # the user's phone is ringing: keep the person on the line
    greeted: bool = False  # the current suspicion has heard the opener (or was talked over: retry)
    introduced: bool = False  # ... and the introduction
    lines_to_suspicion: int = 0
    probes: int = 0
    hold_ons: int = 0
    _words_since: float | None = None  # far-end speech frames since this time, uninterrupted
    _last_words_t: float | None = None  # the far end's newest speech frame
    _last_ours_t: float | None = None  # the end of our newest words
    _last_hold_on_t: float = -1e9
    _stop_sent: bool = False
    _speaking_since: float = 0.0

    # -- what the detector decided ---------------------------------------------------------

    def on_suspected(self, suspicion: HumanSuspected) -> list[Action]:
        """Each suspicion is a talker of its own (a person right after an announcement): greeted anew."""
        self.greeted = self.introduced = False
        self.lines_to_suspicion = 0
        self.suspicion = suspicion
        return []

    def on_retracted(self, retraction: HumanRetracted) -> list[Action]:
        self.suspicion = None
        if self.speaking is not None and self.detected is None:
            return self._stop(f"retracted: {retraction.evidence.get('why', '')}")
        return []

    def on_detected(self, detection: HumanDetected) -> list[Action]:
        self.detected = detection
        return []

    def on_connecting(self) -> list[Action]:
        """The user's phone rings from now on; a person never greeted is greeted now."""
        self.connecting = True
        if not self.introduced and self.speaking is None:
            self.introduced = True
            return self._say(Line.INTRO, self.settings.intro, self._last_words_t or 0.0)
        return []

    # -- what we said ----------------------------------------------------------------------

    def on_said(self, line: Line, t_end: float) -> None:
        """Our words ended (played out or stopped) at stream time ``t_end``."""
        if self.speaking is line:
            self.speaking = None
        self._last_ours_t = t_end
        self._stop_sent = False

    # -- frame by frame --------------------------------------------------------------------

    def tick(self, t: float, far_end_speaking: bool) -> list[Action]:
        """The newest far-end frame (our echo already removed) at stream time ``t``."""
        s = self.settings
        if far_end_speaking:
            if self._words_since is None:
                self._words_since = t
            self._last_words_t = t
        else:
            self._words_since = None
        if self.speaking is not None:
            # Talking over us counts once they have had the time to hear us and stop.
            since = None if self._words_since is None else max(self._words_since, self._speaking_since + s.yield_seconds)
            if since is not None and t - since >= s.barge_in_seconds:
                if self.speaking is Line.GREETING:
                    self.greeted = False  # they did not hear it: again at their next pause
                return self._stop("the far end talks over us")
            return []
        quiet = self._quiet_for(t)
        if self.connecting:
            return self._hold_on(t, quiet)
        if self.detected is not None or self.suspicion is None or self.lines_to_suspicion >= s.lines_per_suspicion:
            return []
        first_try = self.lines_to_suspicion == 0
        if not self.greeted and (first_try or (quiet is not None and quiet >= s.greet_after_quiet_seconds)):
            self.greeted = True
            return self._say(Line.GREETING, s.greeting, t)
        if quiet is None:
            return []
        answered = self._last_words_t is not None and self._last_ours_t is not None and self._last_words_t > self._last_ours_t
        if (
            self.greeted
            and not self.introduced
            and quiet >= (s.greet_after_quiet_seconds if answered else s.intro_after_quiet_seconds)
        ):
            self.introduced = True
            return self._say(Line.INTRO, s.intro, t)
        if s.probe_enabled and quiet >= s.probe_after_quiet_seconds and self.probes < s.probes_per_call:
            self.probes += 1
            return self._say(Line.PROBE, s.probe, t)
        return []

    def _hold_on(self, t: float, quiet: float | None) -> list[Action]:
        """While the user's phone rings: a person who spoke and waits hears that we are connecting."""
        s = self.settings
        if (
            quiet is not None
            and self._last_words_t is not None
            and (self._last_ours_t is None or self._last_words_t > self._last_ours_t)
            and quiet >= s.hold_on_after_quiet_seconds
            and t - self._last_hold_on_t >= s.hold_on_every_seconds
            and self.hold_ons < s.hold_ons_per_call
        ):
            self.hold_ons += 1
            self._last_hold_on_t = t
            return self._say(Line.HOLD_ON, s.hold_on, t)
        return []

    def _quiet_for(self, t: float) -> float | None:
        """How long neither side has spoken; None while the far end talks or never has."""
        if self._words_since is not None or self._last_words_t is None:
            return None
        since = max(self._last_words_t, self._last_ours_t or self._last_words_t)
        return t - since

    def _say(self, line: Line, text: str, t: float) -> list[Action]:
        self.speaking = line
        self._speaking_since = t
        if line is not Line.HOLD_ON:
            self.lines_to_suspicion += 1
        return [Say(line, text)]

    def _stop(self, reason: str) -> list[Action]:
        if self._stop_sent:
            return []
        self._stop_sent = True
        return [Stop(reason)]


class Speaker(Protocol):
    """How the handoff speaks into the call (the session's hold-bridge RTP endpoint and TTS)."""

    async def speech(self, text: str) -> np.ndarray:
        """8 kHz int16 audio of ``text`` (cached: the same text is rendered once)."""

    async def play(self, pcm: np.ndarray) -> bool:
        """Send the audio, paced; True when all of it went out, False when ``stop`` cut it."""

    def stop(self) -> None:
        """Drop what is still queued (barge-in)."""


class Hearing(Protocol):
    """What the handoff tells the detector (``AudioPipeline``)."""

    def our_speech_started(self, t: float, pcm: np.ndarray) -> None: ...

    def our_speech_ended(self, t: float) -> None: ...


class Handoff:
    """The room of a call that talks to the possible person (see the module docstring)."""

    def __init__(
        self,
        policy: HandoffPolicy,
        speaker: Speaker,
        hearing: Hearing,
        *,
        now: Callable[[], float],
        emit: Callable[..., None],
    ) -> None:
        self.policy = policy
        self._speaker = speaker
        self._hearing = hearing
        self._now = now  # the stream time of the newest far-end frame
        self._emit = emit
        self._task: asyncio.Task[None] | None = None
        self._winding_down = False
        self.said: list[tuple[Line, float, float, bool]] = []  # (line, start, end, whole)

    @property
    def speaking(self) -> bool:
        return self._task is not None and not self._task.done()

    def prepare(self) -> Awaitable[Any]:
        """Render the lines ahead of time (in the background), so the greeting leaves at once."""
        s = self.policy.settings
        lines = (s.greeting, s.intro, s.probe, s.hold_on)
        return asyncio.gather(*(self._speaker.speech(text) for text in lines), return_exceptions=True)

    def suspected(self, suspicion: HumanSuspected) -> None:
        self._act(self.policy.on_suspected(suspicion))

    def retracted(self, retraction: HumanRetracted) -> None:
        self._act(self.policy.on_retracted(retraction))

    def detected(self, detection: HumanDetected) -> None:
        self._act(self.policy.on_detected(detection))

    def connecting(self) -> None:
        self._act(self.policy.on_connecting())

    def heard(self, t: float, far_end_speaking: bool) -> None:
        """A far-end frame was heard (our echo removed)."""
        self._act(self.policy.tick(t, far_end_speaking))

    def wind_down(self) -> None:
        """Begin no new line: the user is about to be put through. What is being said goes on
        (the person should hear its end); a line begun now would be cut off by the bridge."""
        self._winding_down = True

    async def finish_speaking(self, timeout: float) -> None:
        """Let the words under way end (a greeting the person should hear before the user comes)."""
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Stop):
                self._speaker.stop()
            elif not self.speaking and not self._winding_down:
                self._task = asyncio.create_task(self._say(action), name=f"handoff-{action.line.value}")

    async def _say(self, say: Say) -> None:
        started = self._now()
        whole = False
        try:
            pcm = await self._speaker.speech(say.text)
            started = self._now()
            self._hearing.our_speech_started(started, pcm)
            self._emit(say.line, text=say.text, t=round(started, 3), seconds=round(len(pcm) / SAMPLE_RATE, 2))
            whole = await self._speaker.play(pcm)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - words that cannot be said leave the other cues to decide
            log.warning("the %s could not be said", say.line.value, exc_info=True)
        finally:
            ended = self._now()
            self._hearing.our_speech_ended(ended)
            self.policy.on_said(say.line, ended)
            self.said.append((say.line, started, ended, whole))
