"""A simulated company on one call: runs a ``Scenario`` frame by frame.

Pure logic: the PBX model calls the signalling methods, the media engine pulls one 20 ms frame
per tick and pushes what the company hears. Time inside the scenario is counted in frames, so
a hold of 6 s is exactly 300 ticks however the event loop is scheduled.

Two things happen off the tick, in worker threads, and come back as callbacks on the event
loop: loading the scenario's audio (``tts:`` prompts are synthesised; the company stays silent
until they are ready) and transcribing what the caller says to a speech menu (``Transcriber``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np

from app.sim.audio import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    AudioLibrary,
    ClipCursor,
    Frame,
    LoopCursor,
    digit_ref,
    entered_node,
    is_voice,
    noise_frame,
)
from app.sim.farend import CompanyCallLog, DialPlan, EndedBy, Utterance
from app.sim.scenario import (
    FAILURE_CAUSES,
    HANGUP,
    AgentNode,
    AnnouncementNode,
    CollectNode,
    HoldNode,
    MenuNode,
    Scenario,
)

log = logging.getLogger(__name__)

NORMAL_CLEARING = 16
# A caller's reply counts once the agent heard this much voice followed by this much quiet.
_REPLY_VOICE_FRAMES = int(0.5 / FRAME_SECONDS)
_REPLY_PAUSE_FRAMES = int(0.8 / FRAME_SECONDS)
_MAX_HANDOVERS_PER_FRAME = 4  # bounds a loop of nodes that play nothing

Speak = Callable[[list[str]], np.ndarray]  # audio references -> the PCM to play
TextCallback = Callable[[str], None]
Recognise = Callable[[np.ndarray, TextCallback], None]


def _frames(seconds: float) -> int:
    return int(round(seconds / FRAME_SECONDS))


class Transcriber(Protocol):
    def transcribe(self, pcm: np.ndarray, done: TextCallback) -> None:
        """Start transcribing int16 8 kHz ``pcm``; ``done(text)`` is called later, on the event
        loop ("" when nothing was understood). Must not block."""


class CallerSpeech:
    """Cuts what the caller says into utterances by energy, as a speech IVR's endpointer does:
    at least ``MIN_VOICE`` of voice-level frames, ended by ``END_QUIET`` of quiet."""

    MIN_VOICE = _frames(0.3)
    END_QUIET = _frames(0.8)
    LEAD_IN = _frames(0.2)  # quiet kept before the first word: the recogniser needs an onset
    TAIL = _frames(0.3)  # quiet kept after the last word
    LONGEST = _frames(10.0)  # a caller who never pauses is cut here

    def __init__(self) -> None:
        self._lead_in: collections.deque[np.ndarray] = collections.deque(maxlen=self.LEAD_IN)
        self._frames: list[np.ndarray] = []
        self._voice = 0
        self._quiet = 0

    @property
    def speaking(self) -> bool:
        """An utterance has started (enough voice) and not ended yet."""
        return self._voice >= self.MIN_VOICE

    def feed(self, frame: Frame | None) -> np.ndarray | None:
        """One 20 ms frame of what the caller sends; the utterance's PCM when one just ended."""
        voice = is_voice(frame)
        pcm = frame if frame is not None else np.zeros(FRAME_SAMPLES, np.int16)
        if not self._frames and not voice:
            self._lead_in.append(pcm)
            return None
        if not self._frames:
            self._frames = list(self._lead_in)
            self._lead_in.clear()
        self._frames.append(pcm)
        self._voice += voice
        self._quiet = 0 if voice else self._quiet + 1
        if self._quiet < self.END_QUIET and len(self._frames) < self.LONGEST:
            return None
        utterance = None
        if self.speaking:
            end = len(self._frames) - max(0, self._quiet - self.TAIL)
            utterance = np.concatenate(self._frames[:end])
        self._frames, self._voice, self._quiet = [], 0, 0  # a cough or a click is forgotten
        return utterance


class _NodeRun:
    """One visit to a scenario node. Sets ``goto`` or ``hangup_cause`` when it is over."""

    goto: str | None = None
    hangup_cause: int | None = None

    def next_frame(self) -> Frame | None:
        raise NotImplementedError

    def dtmf(self, digit: str) -> None:
        """Most nodes ignore keys."""

    def hear(self, frame: Frame | None) -> None:
        """Most nodes do not listen."""

    def _leave(self, target: str, cause: int = NORMAL_CLEARING) -> None:
        if target == HANGUP:
            self.hangup_cause = cause
        else:
            self.goto = target


class _MenuRun(_NodeRun):
    """BackGround-style menu: a key interrupts the prompt at once.

    A menu with speech options also listens: the caller's speech interrupts the prompt
    (barge-in) and holds the menu's timeout; once the utterance ends it is transcribed and
    leads to the matching node, or to the no-match message and the menu again.
    """

    def __init__(self, node: MenuNode, speak: Speak, recognise: Recognise) -> None:
        self._node = node
        self._prompt = speak(node.prompt)
        self._invalid = speak(node.invalid_prompt)
        self._no_match = speak(node.no_match_prompt) if node.listens else self._invalid  # (said only when listening)
        self._recognise = recognise
        self._speech = CallerSpeech() if node.listens else None
        self._utterances = 0
        self._transcribing: int | None = None  # number of the utterance being transcribed
        self._plays = 0
        self._wait_left = 0
        self._cursor: ClipCursor | None = None
        self._play_prompt()

    def _play_prompt(self) -> None:
        self._plays += 1
        self._cursor = ClipCursor(self._prompt)
        self._after_cursor_wait = True

    def _play_message(self, pcm: np.ndarray) -> None:
        """An error message, after which the menu starts over."""
        self._cursor = ClipCursor(pcm)
        self._after_cursor_wait = False

    @property
    def _caller_has_floor(self) -> bool:
        return self._transcribing is not None or (self._speech is not None and self._speech.speaking)

    def next_frame(self) -> Frame | None:
        if self._caller_has_floor:
            return None  # quiet, and the timeout does not run
        if self._cursor is not None:
            frame = self._cursor.next_frame()
            if frame is not None:
                return frame
            self._cursor = None
            if not self._after_cursor_wait:  # the "invalid" message: replay the menu
                self._plays = 0
                self._play_prompt()
                return self._cursor.next_frame()
            self._wait_left = _frames(self._node.timeout_seconds)
        if self._wait_left > 0:
            self._wait_left -= 1
            return None
        if self._plays < self._node.repeats:
            self._play_prompt()
            return self._cursor.next_frame()
        self._leave(self._node.on_timeout)
        return None

    def dtmf(self, digit: str) -> None:
        if self.goto or self.hangup_cause:
            return
        target = self._node.options.get(digit)
        if target is not None:
            self._leave(target)
            return
        self._play_message(self._invalid)

    def hear(self, frame: Frame | None) -> None:
        if self._speech is None or self._transcribing is not None or self.goto or self.hangup_cause:
            return
        was_speaking = self._speech.speaking
        utterance = self._speech.feed(frame)
        if utterance is None:
            if self._speech.speaking and not was_speaking:
                self._cursor, self._wait_left = None, 0  # barge-in
            return
        self._utterances += 1
        number = self._transcribing = self._utterances
        self._recognise(utterance, lambda text: self._understood(number, text))

    def _understood(self, number: int, text: str) -> None:
        if number != self._transcribing or self.goto or self.hangup_cause:
            return
        self._transcribing = None
        target = self._node.speech_target(text)
        if target is not None:
            self._leave(target)
        else:
            self._play_message(self._no_match)


class _CollectRun(_NodeRun):
    """Data entry, as Asterisk's ``Read``: a key stops the prompt; the entry ends with the
    terminator, at ``max_digits`` keys, or after ``timeout_seconds`` without a key."""

    def __init__(self, node: CollectNode, speak: Speak, record: TextCallback) -> None:
        self._node = node
        self._prompt = speak(node.prompt)
        self._invalid = speak(node.invalid_prompt)
        self._record = record
        self._failures = 0
        self._entry = ""
        self._then: Literal["wait", "retry", "fail"] = "wait"  # after the audio now playing
        self._wait_left = 0
        self._cursor: ClipCursor | None = ClipCursor(self._prompt)

    def next_frame(self) -> Frame | None:
        if self._cursor is not None:
            frame = self._cursor.next_frame()
            if frame is not None:
                return frame
            self._cursor = None
            if self._then == "fail":
                self._leave(self._node.on_fail)
                return None
            if self._then == "retry":
                self._prompt_again()
                return self._cursor.next_frame()  # type: ignore[union-attr]  # just set
            self._wait_left = _frames(self._node.timeout_seconds)
        if self._wait_left > 0:
            self._wait_left -= 1
            return None
        if self._entry:
            self._complete()  # a pause after some keys ends the entry
        else:
            self._failed(said_invalid=False)
        return self._cursor.next_frame() if self._cursor is not None else None

    def dtmf(self, digit: str) -> None:
        if self.goto or self.hangup_cause or self._then == "fail":
            return
        self._cursor, self._then = None, "wait"
        if digit == self._node.terminator:
            self._complete()
            return
        self._entry += digit
        if len(self._entry) >= self._node.max_digits:
            self._complete()
        else:
            self._wait_left = _frames(self._node.timeout_seconds)

    def _complete(self) -> None:
        entry, self._entry = self._entry, ""
        self._record(entry)
        if self._node.accepts(entry):
            self._leave(self._node.next)
        else:
            self._failed(said_invalid=True)

    def _failed(self, *, said_invalid: bool) -> None:
        self._failures += 1
        self._then = "fail" if self._failures >= self._node.attempts else "retry"
        if said_invalid:
            self._cursor = ClipCursor(self._invalid)
        elif self._then == "fail":
            self._leave(self._node.on_fail)
        else:
            self._prompt_again()

    def _prompt_again(self) -> None:
        self._cursor, self._then = ClipCursor(self._prompt), "wait"


class _Playlist:
    """Music on hold: one looped track, or a playlist of tracks with a short silence between them
    (a real MOH class plays its files one after the other, with a gap between files)."""

    def __init__(self, tracks: list[np.ndarray], gap_seconds: float) -> None:
        gap = np.zeros(int(round(gap_seconds * SAMPLE_RATE)), np.int16)
        self._single = LoopCursor(tracks[0]) if len(tracks) == 1 and not len(gap) else None
        self._parts = [part for track in tracks for part in ((track, gap) if len(gap) else (track,))]
        self._index = 0
        self._cursor = ClipCursor(self._parts[0]) if self._single is None else None

    def next_frame(self) -> Frame:
        if self._single is not None:
            return self._single.next_frame()
        assert self._cursor is not None
        frame = self._cursor.next_frame()
        while frame is None:  # (a zero-length part is skipped)
            self._index = (self._index + 1) % len(self._parts)
            self._cursor = ClipCursor(self._parts[self._index])
            frame = self._cursor.next_frame()
        return frame


class _HoldRun(_NodeRun):
    """Looped music (or a playlist); announcements pause it and it resumes where it stopped, or
    are mixed over it (``over_music``). Random announcements come at seeded times."""

    def __init__(self, node: HoldNode, audio: AudioLibrary, rng: np.random.Generator) -> None:
        self._node = node
        self.music = _Playlist([audio.clip(ref) for ref in node.playlist], node.track_gap_seconds)
        self._announcements = [(audio.sequence(a.audio), a.every_seconds) for a in node.announcements]
        self._next_due = [a.at_seconds for a in node.announcements]
        self._frame_no = 0
        self._speaking: ClipCursor | None = None
        self._bed_gain = 10 ** (node.music_bed_db / 20)
        random = node.random_announcements
        self._random = random
        self._random_choices = [audio.sequence(choice) for choice in random.choices] if random else []
        self._random_rng = np.random.default_rng(random.seed if random and random.seed is not None else rng.integers(2**32))
        self._random_due = self._draw(random.first_after_seconds) if random else float("inf")
        self._random_playing = False
        self.random_log: list[tuple[float, int]] = []  # (seconds into the hold, choice) of each random announcement

    def _draw(self, bounds: tuple[float, float]) -> float:
        return float(self._random_rng.uniform(bounds[0], bounds[1]))

    def next_frame(self) -> Frame | None:
        elapsed = self._frame_no * FRAME_SECONDS
        self._frame_no += 1
        hangup_after = self._node.hangup_after_seconds
        if hangup_after is not None and elapsed >= hangup_after:
            self.hangup_cause = NORMAL_CLEARING
            return None
        if elapsed >= self._node.seconds:
            self.goto = self._node.next
            return None
        if self._speaking is None:
            self._start_due_announcement(elapsed)
        if self._speaking is not None:
            frame = self._speaking.next_frame()
            if frame is not None:
                if not self._node.over_music:
                    return frame
                bed = self.music.next_frame().astype(np.float32) * self._bed_gain
                return np.clip(np.round(frame + bed), -32768, 32767).astype(np.int16)
            self._speaking = None
            if self._random_playing:
                self._random_playing = False
                assert self._random is not None
                self._random_due = elapsed + self._draw(self._random.gap_seconds)
        return self.music.next_frame()

    def _start_due_announcement(self, elapsed: float) -> None:
        for index, due in enumerate(self._next_due):
            if due <= elapsed:
                pcm, every = self._announcements[index]
                self._next_due[index] = due + every if every else float("inf")
                self._speaking = ClipCursor(pcm)
                return
        if self._random_due <= elapsed:
            choice = int(self._random_rng.integers(len(self._random_choices)))
            self.random_log.append((round(elapsed, 2), choice))
            self._speaking = ClipCursor(self._random_choices[choice])
            self._random_playing = True
            self._random_due = float("inf")


Clock = Callable[[], tuple[float, float]]  # -> (time.monotonic(), stream seconds since answer)
_CLICK = np.zeros(FRAME_SAMPLES, np.int16)
_CLICK[:24] = (np.exp(-np.arange(24) / 5.0) * 14000 * np.where(np.arange(24) % 2 == 0, 1, -1)).astype(np.int16)
_GATE_RMS = 32768 * 10 ** (-50 / 20)  # a noise suppressor's gate: quieter frames become digital zero
_GATE_BELOW_SPEECH_DB = 18.0  # ... and so do frames this far under the utterance's loud frames


def _gate_level(pcm: np.ndarray) -> float:
    """Where a noise suppressor closes for this utterance: 18 dB under its loud frames (the
    90th percentile of frame RMS), never under -50 dBFS: the recording's own room noise between
    the words is cut to digital zero."""
    usable = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
    if not usable:
        return _GATE_RMS
    frames = pcm[:usable].astype(np.float32).reshape(-1, FRAME_SAMPLES)
    loud = float(np.percentile(np.sqrt(np.mean(frames * frames, axis=1)), 90))
    return max(_GATE_RMS, loud * 10 ** (-_GATE_BELOW_SPEECH_DB / 20))


class _AgentRun(_NodeRun):
    """A person on the line.

    Optional announcement and pickup (a click and a gap, or greeting over the hold music as it
    fades), the greeting, then an open line: scheduled ``replies``; ``answers`` when the caller
    speaks and pauses (energy endpointing, then a human delay); "Hello?" into a silent line; and
    a hang-up when nobody answers. The line is noise, gated (digital zero between words) or a
    call centre (voices behind); with ``echo`` it returns what it hears, attenuated and delayed.
    """

    def __init__(
        self,
        node: AgentNode,
        audio: AudioLibrary,
        rng: np.random.Generator,
        log: CompanyCallLog | None = None,
        clock: Clock | None = None,
        music: _Playlist | None = None,
    ) -> None:
        self._node = node
        self._audio = audio
        self._rng = rng
        self._log = log if log is not None else CompanyCallLog(channel_id="", number="", scenario="")
        self._clock: Clock = clock if clock is not None else (lambda: (time.monotonic(), 0.0))
        self._replies = list(node.replies)
        self._answers = [audio.sequence(answer) for answer in node.answers]
        self._hello = audio.sequence(node.hello) if node.hello_after_seconds is not None else None
        self._hello_again = [audio.sequence(again) for again in node.hello_again] if self._hello is not None else []
        self._frame_no = 0
        self._quiet_frames = 0
        self._heard_voice = 0
        self._heard_pause = 0
        # what the company plays before the person is there: (kind, pcm) in order
        self._intro: list[tuple[str, np.ndarray]] = []
        if node.announcement:
            self._intro.append(("announcement", audio.sequence(node.announcement)))
        if node.pickup == "click":
            self._intro.append(("click", _CLICK))
        gap = int(round(node.pickup_gap_seconds * SAMPLE_RATE))
        if gap:
            self._intro.append(("gap", np.zeros(gap, np.int16)))
        self._intro_cursor: ClipCursor | None = None
        self._intro_kind = ""
        self._music = music if node.pickup == "over_music" else None
        self._music_frames = 0
        self._fade_frames = max(1, _frames(node.music_fade_seconds))
        self._speaking: ClipCursor | None = None
        self._speaking_what = ""
        self._gate = _GATE_RMS
        self._greeted = False
        self._background: LoopCursor | None = None
        self._background_gain = 0.0
        if node.line == "call_centre":
            room = audio.sequence(node.background)
            self._background = LoopCursor(room)
            self._background_gain = 32768 * 10 ** (node.background_dbfs / 20) / max(_rms(room), 1.0)
        # listening
        self._segment_voice = 0
        self._segment_quiet = 0
        self._end_of_turn = _frames(node.end_of_turn_seconds)
        self._answer_due: int | None = None
        self._last_engaged = 0  # frame of the last thing that kept the person on the line
        self._hellos_said = 0
        # echo: what the person hears, as samples, for the delayed copy sent back
        self._echo_delay = int(round(node.echo.delay_ms * SAMPLE_RATE / 1000)) if node.echo else 0
        self._echo_gain = 10 ** (-node.echo.attenuation_db / 20) if node.echo else 0.0
        self._echo_buffer: collections.deque[np.ndarray] = collections.deque()
        self._echo_buffered = 0
        self._start_next_intro()

    @property
    def _present(self) -> bool:
        """The person is on the line (the intro is over)."""
        return self._intro_cursor is None and not self._intro

    def _start_next_intro(self) -> None:
        if self._intro:
            self._intro_kind, pcm = self._intro.pop(0)
            self._intro_cursor = ClipCursor(pcm)
            return
        self._intro_cursor = None
        self._say("greeting", self._audio.sequence(self._node.greeting))

    def _say(self, what: str, pcm: np.ndarray) -> None:
        wall, stream = self._clock()
        self._log.utterances.append(Utterance(what, wall, round(stream, 3), round(len(pcm) / SAMPLE_RATE, 3)))
        self._speaking = ClipCursor(pcm)
        self._speaking_what = what
        if self._node.line == "gated":
            self._gate = _gate_level(pcm)

    def next_frame(self) -> Frame | None:
        frame = self._person_frame()
        if self._echo_gain and self._echo_buffered >= self._echo_delay:
            echo = self._take_echo()
            if echo.any():
                mixed = echo if frame is None else frame.astype(np.float32) + echo
                frame = np.clip(np.round(mixed), -32768, 32767).astype(np.int16)
        return frame

    def _person_frame(self) -> Frame | None:
        elapsed = self._frame_no * FRAME_SECONDS
        self._frame_no += 1
        hangup_after = self._node.hangup_after_seconds
        if hangup_after is not None and elapsed >= hangup_after:
            self._hang_up()
            return None
        while self._intro_cursor is not None:
            frame = self._intro_cursor.next_frame()
            if frame is None:
                self._start_next_intro()  # the next part of the intro, or the greeting
                continue
            if self._intro_kind == "announcement":
                return frame
            # the click, the gap: the line (and the music that may still play)
            return self._line(frame if self._intro_kind == "click" else None, speech=False)
        if self._speaking is not None:
            frame = self._speaking.next_frame()
            if frame is not None:
                return self._line(frame, speech=True)
            if self._speaking_what != "hello":
                self._last_engaged = self._frame_no
            self._speaking = None
            self._greeted = True
            self._quiet_frames = self._heard_voice = self._heard_pause = 0
        self._quiet_frames += 1
        if self._replies and self._reply_due():
            self._say("reply", self._audio.sequence(self._replies.pop(0).audio))
            return self._next_spoken()
        if self._answer_due is not None and self._frame_no >= self._answer_due:
            self._answer_due = None
            if self._answers:
                self._say("answer", self._answers.pop(0))
                return self._next_spoken()
        unanswered = (self._frame_no - self._last_engaged) * FRAME_SECONDS
        hangup = self._node.hangup_if_unanswered_seconds
        if hangup is not None and unanswered >= hangup and self._segment_voice < CallerSpeech.MIN_VOICE:
            self._log.lost_person = True
            self._hang_up()
            return None
        hello_after = self._node.hello_after_seconds
        if (
            self._hello is not None
            and hello_after is not None
            and self._hellos_said < self._node.hellos
            and unanswered >= hello_after * (self._hellos_said + 1)
            and self._segment_voice == 0
        ):
            self._hellos_said += 1
            again = self._hello_again[(self._hellos_said - 2) % len(self._hello_again)] if self._hello_again else None
            self._say("hello", self._hello if self._hellos_said == 1 or again is None else again)
            return self._next_spoken()
        return self._line(None, speech=False)

    def _next_spoken(self) -> Frame | None:
        assert self._speaking is not None
        return self._line(self._speaking.next_frame(), speech=True)

    def _hang_up(self) -> None:
        self.hangup_cause = NORMAL_CLEARING
        self._log.agent_hung_up_at = self._clock()[0]

    def _line(self, frame: Frame | None, *, speech: bool) -> Frame | None:
        """The person's own sound (or None) as the line carries it: music fading under the
        first words, the room behind, noise or the gate between words."""
        if speech and frame is not None and self._log.agent_first_word_at is None and is_voice(frame):
            wall, stream = self._clock()
            self._log.agent_first_word_at = wall
            self._log.agent_first_word_stream_seconds = round(stream, 3)
        node = self._node
        if node.line == "gated" and frame is not None and _rms(frame) < self._gate:
            frame = None
        mix: np.ndarray | None = None if frame is None else frame.astype(np.float32)
        if self._music is not None:
            gain = 1.0
            if self._greeted or (self._speaking is not None and self._speaking_what == "greeting"):
                self._music_frames += 1
                gain = max(0.0, 1.0 - self._music_frames / self._fade_frames)
            if gain <= 0:
                self._music = None
            else:
                music = self._music.next_frame().astype(np.float32) * gain
                mix = music if mix is None else mix + music
        if self._background is not None:
            room = self._background.next_frame().astype(np.float32) * self._background_gain
            mix = room if mix is None else mix + room
        if node.line != "gated" and (frame is None or node.line == "call_centre"):
            noise = noise_frame(self._rng, node.noise_dbfs).astype(np.float32)
            mix = noise if mix is None else mix + noise
        if mix is None:
            return None
        return np.clip(np.round(mix), -32768, 32767).astype(np.int16)

    def _reply_due(self) -> bool:
        reply = self._replies[0]
        if self._quiet_frames * FRAME_SECONDS >= reply.after_seconds:
            return True
        caller_replied = self._heard_voice >= _REPLY_VOICE_FRAMES and self._heard_pause >= _REPLY_PAUSE_FRAMES
        return reply.wait_for_speech and caller_replied

    def hear(self, frame: Frame | None) -> None:
        if self._echo_gain:
            self._echo_buffer.append(np.zeros(FRAME_SAMPLES, np.int16) if frame is None else frame)
            self._echo_buffered += FRAME_SAMPLES
        voice = is_voice(frame)
        if self._present:
            self._listen(voice)
        if self._speaking is not None:
            return
        if voice:
            self._heard_voice += 1
            self._heard_pause = 0
        elif self._heard_voice:
            self._heard_pause += 1

    def _listen(self, voice: bool) -> None:
        """Energy endpointing of the caller's turns (like the speech menus): at least 0.3 s of
        voice, ended by ``end_of_turn_seconds`` of quiet; then an answer after a human delay."""
        if voice:
            self._segment_voice += 1
            self._segment_quiet = 0
            if self._segment_voice >= CallerSpeech.MIN_VOICE:
                self._last_engaged = self._frame_no
                if self._log.heard_caller_at is None:
                    wall, stream = self._clock()
                    self._log.heard_caller_at = wall
                    self._log.heard_caller_stream_seconds = round(stream, 3)
            return
        if not self._segment_voice:
            return
        self._segment_quiet += 1
        if self._segment_quiet < self._end_of_turn:
            return
        if self._segment_voice >= CallerSpeech.MIN_VOICE:
            self._log.caller_turns += 1
            self._last_engaged = self._frame_no
            if self._answers and self._answer_due is None:
                low, high = self._node.answer_delay_seconds
                self._answer_due = self._frame_no + _frames(float(self._rng.uniform(low, high)))
        self._segment_voice = self._segment_quiet = 0

    def _take_echo(self) -> np.ndarray:
        """The next frame of echo: what was heard ``delay`` samples ago, attenuated."""
        # The buffer ends with the last frame heard (the tick before this one): the sample sent
        # now at offset i was heard delay samples earlier (delay >= one frame, so it is there).
        heard = np.concatenate(self._echo_buffer)
        start = self._echo_buffered - self._echo_delay
        chunk = heard[start : start + FRAME_SAMPLES].astype(np.float32) * self._echo_gain
        keep_from = start + FRAME_SAMPLES
        drop_frames = keep_from // FRAME_SAMPLES
        for _ in range(drop_frames):
            self._echo_buffer.popleft()
        self._echo_buffered -= drop_frames * FRAME_SAMPLES
        return chunk


def _rms(frame: np.ndarray) -> float:
    samples = frame.astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples)))


class _AnnouncementRun(_NodeRun):
    def __init__(self, pcm: np.ndarray, then: str, cause: int) -> None:
        self._cursor = ClipCursor(pcm)
        self._then = then
        self._cause = cause

    def next_frame(self) -> Frame | None:
        frame = self._cursor.next_frame()
        if frame is None:
            self._leave(self._then, self._cause)
        return frame


class CompanyCall:
    """The far end of one company channel (implements ``FarEnd``).

    Created with the channel: the scenario's audio that is not loaded yet (its ``tts:`` prompts,
    usually) starts loading in a worker thread at once, and the company stays silent after
    answering until it is there. Speech menus hand what the caller said to ``transcriber``
    (default: the local Whisper, ``WhisperTranscriber``).
    """

    def __init__(
        self,
        scenario: Scenario,
        audio: AudioLibrary,
        log: CompanyCallLog,
        rng: np.random.Generator,
        transcriber: Transcriber | None = None,
    ) -> None:
        self.scenario = scenario
        self.log = log
        self._audio = audio
        self._rng = rng
        self._transcriber = transcriber if transcriber is not None else WhisperTranscriber()
        self._early: ClipCursor | LoopCursor | None = None
        self._early_started = False
        self._answered = False
        self._run: _NodeRun | None = None
        self._pause_left = 0
        self._hangup_cause: int | None = None
        self._finished = False
        self._sent_frames = 0  # ticks since the answer (the stream clock of the agents' log)
        self._audio_state: Literal["loading", "ready", "failed"] = self._load_audio()

    def _load_audio(self) -> Literal["loading", "ready"]:
        needed = self.scenario.audio_refs() | self.scenario.tts_refs()
        if not self._audio.missing(needed):
            return "ready"
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a script or a unit test without an event loop: nothing to keep responsive
            for ref in needed:
                self._audio.clip(ref)
            return "ready"
        self._audio.prepare(needed).add_done_callback(self._audio_loaded)
        return "loading"

    def _audio_loaded(self, loading: asyncio.Future[None]) -> None:
        if loading.cancelled():
            return
        error = loading.exception()
        if error is None:
            self._audio_state = "ready"
            return
        log.error("company %r (%s) cannot play its audio: %s", self.scenario.name, self.scenario.number, error)
        self._audio_state = "failed"

    # --- signalling (called by the PBX model) ---

    def dial_plan(self) -> DialPlan:
        scenario = self.scenario
        if scenario.outcome in ("busy", "no_answer"):
            return DialPlan(scenario.outcome, ring_seconds=scenario.ring_seconds)
        early = scenario.early_media
        progress = early.after_seconds if early and early.after_seconds < scenario.ring_seconds else None
        return DialPlan("answer", ring_seconds=scenario.ring_seconds, progress_after=progress)

    def progress(self) -> None:
        self._early_started = self.scenario.early_media is not None

    def _clock(self) -> tuple[float, float]:
        """(time.monotonic(), seconds of stream the company has sent since it answered)."""
        return time.monotonic(), max(0, self._sent_frames - 1) * FRAME_SECONDS

    def answered(self) -> None:
        self.log.answered_at = time.monotonic()
        self._early_started = False
        self._early = None
        self._answered = True
        self._pause_left = _frames(self.scenario.answer_pause_seconds)

    def receive_dtmf(self, digit: str) -> None:
        self.log.dtmf += digit
        if self._run is not None and not self._finished:
            self._run.dtmf(digit)

    def ended(self, cause: int, ended_by: EndedBy) -> None:
        self.log.ended_at = time.monotonic()
        self._finished = True
        self.log.end_cause = cause
        self.log.ended_by = ended_by

    # --- media (called by the media engine, once per tick) ---

    def next_frame(self) -> Frame | None:
        if self._finished:
            return None
        if self._audio_state != "ready":
            if self._audio_state == "failed" and self._answered:
                self._finish(NORMAL_CLEARING)  # nothing to say: the line drops
            return None
        if not self._answered:
            return self._early_frame()
        self._sent_frames += 1
        if self._run is None:
            self._begin()
        if self._pause_left > 0:
            self._pause_left -= 1
            return None
        # A node that ends hands over within the same frame: no gap between music and agent.
        for _ in range(_MAX_HANDOVERS_PER_FRAME):
            run = self._run
            assert run is not None
            if run.hangup_cause is not None:
                self._finish(run.hangup_cause)
                return None
            if run.goto is not None:
                self._enter(run.goto)
                continue
            frame = run.next_frame()
            if frame is not None or (run.goto is None and run.hangup_cause is None):
                return frame
        return None

    def hear(self, frame: Frame | None) -> None:
        if self._finished or self._run is None:
            return
        if isinstance(self._run, _AgentRun) and is_voice(frame):
            self.log.agent_heard_seconds += FRAME_SECONDS
        self._run.hear(frame)

    def take_hangup(self) -> int | None:
        cause, self._hangup_cause = self._hangup_cause, None
        return cause

    def _early_frame(self) -> Frame | None:
        early = self.scenario.early_media
        if self._early is None and self._early_started and early is not None:
            pcm = self._audio.sequence(early.audio)
            self._early = LoopCursor(pcm) if early.loop else ClipCursor(pcm)
        return self._early.next_frame() if self._early is not None else None

    def _begin(self) -> None:
        outcome = self.scenario.outcome
        if outcome in FAILURE_CAUSES:
            pcm = self._audio.sequence(self.scenario.failure_prompt())
            self._run = _AnnouncementRun(pcm, HANGUP, FAILURE_CAUSES[outcome])
        else:
            self._enter(self.scenario.start_node)

    def _finish(self, cause: int) -> None:
        self._finished = True
        self._hangup_cause = cause

    def _enter(self, name: str) -> None:
        node = self.scenario.nodes[name]
        self.log.path.append(name)
        if isinstance(node, MenuNode):
            self._run = _MenuRun(node, self._speak, lambda pcm, done: self._recognise(name, pcm, done))
        elif isinstance(node, CollectNode):
            self._run = _CollectRun(node, self._speak, lambda entry: self.log.entered.__setitem__(name, entry))
        elif isinstance(node, HoldNode):
            self._run = _HoldRun(node, self._audio, self._rng)
        elif isinstance(node, AgentNode):
            self.log.reached_agent = True
            self.log.agent_at = time.monotonic()
            music = self._run.music if isinstance(self._run, _HoldRun) else None
            self._run = _AgentRun(node, self._audio, self._rng, self.log, self._clock, music)
        else:
            assert isinstance(node, AnnouncementNode)
            self._run = _AnnouncementRun(self._speak(node.audio), node.then, node.hangup_cause)

    def _speak(self, refs: list[str]) -> np.ndarray:
        """The clips one after the other; ``entered:NODE`` says the digits keyed at that node."""
        if not any(entered_node(ref) for ref in refs):
            return self._audio.sequence(refs)
        parts: list[np.ndarray] = []
        for ref in refs:
            node = entered_node(ref)
            if node is None:
                parts.append(self._audio.clip(ref))
            else:
                entry = self.log.entered.get(node, "")
                parts.extend(self._audio.clip(digit_ref(key)) for key in entry if key.isdigit())
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def _recognise(self, node: str, pcm: np.ndarray, done: TextCallback) -> None:
        def heard(text: str) -> None:
            self.log.heard.append((node, text))
            if not self._finished:
                done(text)

        self._transcriber.transcribe(pcm, heard)


class WhisperTranscriber:
    """``Transcriber`` with the local Whisper (the process-wide model the app shares), each
    utterance in a worker thread."""

    def __init__(self) -> None:
        self._running: set[asyncio.Future[str]] = set()

    def transcribe(self, pcm: np.ndarray, done: TextCallback) -> None:
        running = asyncio.ensure_future(asyncio.to_thread(_whisper_text, pcm))
        self._running.add(running)  # the loop keeps only weak references to tasks

        def finished(task: asyncio.Future[str]) -> None:
            self._running.discard(task)
            if task.cancelled():
                return
            error = task.exception()
            if error is not None:
                log.error("the simulated company could not transcribe the caller: %s", error)
            done("" if error is not None else task.result())

        running.add_done_callback(finished)


def _whisper_text(pcm: np.ndarray) -> str:
    # Imported on first use: most scenarios never listen.
    from app.speech.whisper_local import WhisperRecognizer, WhisperSettings

    transcript = WhisperRecognizer.shared(WhisperSettings()).transcribe(pcm, 0.0)
    return transcript.text if transcript is not None else ""
