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
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np

from app.sim.audio import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    AudioLibrary,
    ClipCursor,
    Frame,
    LoopCursor,
    digit_ref,
    entered_node,
    is_voice,
    noise_frame,
)
from app.sim.farend import CompanyCallLog, DialPlan, EndedBy
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


class _HoldRun(_NodeRun):
    """Looped music; announcements pause it and it resumes where it stopped."""

    def __init__(self, node: HoldNode, audio: AudioLibrary) -> None:
        self._node = node
        self._music = LoopCursor(audio.clip(node.music))
        self._announcements = [(audio.sequence(a.audio), a.every_seconds) for a in node.announcements]
        self._next_due = [a.at_seconds for a in node.announcements]
        self._frame_no = 0
        self._speaking: ClipCursor | None = None

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
                return frame
            self._speaking = None
        return self._music.next_frame()

    def _start_due_announcement(self, elapsed: float) -> None:
        for index, due in enumerate(self._next_due):
            if due <= elapsed:
                pcm, every = self._announcements[index]
                self._next_due[index] = due + every if every else float("inf")
                self._speaking = ClipCursor(pcm)
                return


class _AgentRun(_NodeRun):
    """Greets, then leaves an open line with a little noise; replies when due."""

    def __init__(self, node: AgentNode, audio: AudioLibrary, rng: np.random.Generator) -> None:
        self._node = node
        self._audio = audio
        self._rng = rng
        self._replies = list(node.replies)
        self._speaking: ClipCursor | None = ClipCursor(audio.sequence(node.greeting))
        self._frame_no = 0
        self._quiet_frames = 0
        self._heard_voice = 0
        self._heard_pause = 0

    def next_frame(self) -> Frame | None:
        elapsed = self._frame_no * FRAME_SECONDS
        self._frame_no += 1
        hangup_after = self._node.hangup_after_seconds
        if hangup_after is not None and elapsed >= hangup_after:
            self.hangup_cause = NORMAL_CLEARING
            return None
        if self._speaking is not None:
            frame = self._speaking.next_frame()
            if frame is not None:
                return frame
            self._speaking = None
            self._quiet_frames = self._heard_voice = self._heard_pause = 0
        self._quiet_frames += 1
        if self._replies and self._reply_due():
            self._speaking = ClipCursor(self._audio.sequence(self._replies.pop(0).audio))
            return self._speaking.next_frame()
        return noise_frame(self._rng, self._node.noise_dbfs)

    def _reply_due(self) -> bool:
        reply = self._replies[0]
        if self._quiet_frames * FRAME_SECONDS >= reply.after_seconds:
            return True
        caller_replied = self._heard_voice >= _REPLY_VOICE_FRAMES and self._heard_pause >= _REPLY_PAUSE_FRAMES
        return reply.wait_for_speech and caller_replied

    def hear(self, frame: Frame | None) -> None:
        if self._speaking is not None:
            return
        if is_voice(frame):
            self._heard_voice += 1
            self._heard_pause = 0
        elif self._heard_voice:
            self._heard_pause += 1


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

    def answered(self) -> None:
        self._early_started = False
        self._early = None
        self._answered = True
        self._pause_left = _frames(self.scenario.answer_pause_seconds)

    def receive_dtmf(self, digit: str) -> None:
        self.log.dtmf += digit
        if self._run is not None and not self._finished:
            self._run.dtmf(digit)

    def ended(self, cause: int, ended_by: EndedBy) -> None:
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
            self._run = _HoldRun(node, self._audio)
        elif isinstance(node, AgentNode):
            self.log.reached_agent = True
            self._run = _AgentRun(node, self._audio, self._rng)
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
