"""A simulated company on one call: runs a ``Scenario`` frame by frame.

Pure logic: the PBX model calls the signalling methods, the media engine pulls one 20 ms frame
per tick and pushes what the company hears. Time inside the scenario is counted in frames, so
a hold of 6 s is exactly 300 ticks however the event loop is scheduled.
"""

from __future__ import annotations

import numpy as np

from app.sim.audio import FRAME_SECONDS, AudioLibrary, ClipCursor, Frame, LoopCursor, is_voice, noise_frame
from app.sim.farend import CompanyCallLog, DialPlan, EndedBy
from app.sim.scenario import (
    FAILURE_CAUSES,
    HANGUP,
    AgentNode,
    AnnouncementNode,
    HoldNode,
    MenuNode,
    Scenario,
)

NORMAL_CLEARING = 16
# A caller's reply counts once the agent heard this much voice followed by this much quiet.
_REPLY_VOICE_FRAMES = int(0.5 / FRAME_SECONDS)
_REPLY_PAUSE_FRAMES = int(0.8 / FRAME_SECONDS)
_MAX_HANDOVERS_PER_FRAME = 4  # bounds a loop of nodes that play nothing


def _frames(seconds: float) -> int:
    return int(round(seconds / FRAME_SECONDS))


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
    """BackGround-style menu: a key interrupts the prompt at once."""

    def __init__(self, node: MenuNode, audio: AudioLibrary) -> None:
        self._node = node
        self._prompt = audio.sequence(node.prompt)
        self._invalid = audio.sequence(node.invalid_prompt)
        self._plays = 0
        self._wait_left = 0
        self._cursor: ClipCursor | None = None
        self._play_prompt()

    def _play_prompt(self) -> None:
        self._plays += 1
        self._cursor = ClipCursor(self._prompt)
        self._after_cursor_wait = True

    def next_frame(self) -> Frame | None:
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
        self._cursor = ClipCursor(self._invalid)
        self._after_cursor_wait = False


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
    """The far end of one company channel (implements ``FarEnd``)."""

    def __init__(self, scenario: Scenario, audio: AudioLibrary, log: CompanyCallLog, rng: np.random.Generator) -> None:
        self.scenario = scenario
        self.log = log
        self._audio = audio
        self._rng = rng
        self._early: ClipCursor | LoopCursor | None = None
        self._run: _NodeRun | None = None
        self._pause_left = 0
        self._hangup_cause: int | None = None
        self._finished = False

    # --- signalling (called by the PBX model) ---

    def dial_plan(self) -> DialPlan:
        scenario = self.scenario
        if scenario.outcome in ("busy", "no_answer"):
            return DialPlan(scenario.outcome, ring_seconds=scenario.ring_seconds)
        early = scenario.early_media
        progress = early.after_seconds if early and early.after_seconds < scenario.ring_seconds else None
        return DialPlan("answer", ring_seconds=scenario.ring_seconds, progress_after=progress)

    def progress(self) -> None:
        early = self.scenario.early_media
        if early is not None:
            pcm = self._audio.sequence(early.audio)
            self._early = LoopCursor(pcm) if early.loop else ClipCursor(pcm)

    def answered(self) -> None:
        self._early = None
        self._pause_left = _frames(self.scenario.answer_pause_seconds)
        outcome = self.scenario.outcome
        if outcome in FAILURE_CAUSES:
            pcm = self._audio.sequence(self.scenario.failure_prompt())
            self._run = _AnnouncementRun(pcm, HANGUP, FAILURE_CAUSES[outcome])
        else:
            self._enter(self.scenario.start_node)

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
        if self._run is None:
            return self._early.next_frame() if self._early is not None else None
        if self._pause_left > 0:
            self._pause_left -= 1
            return None
        # A node that ends hands over within the same frame: no gap between music and agent.
        for _ in range(_MAX_HANDOVERS_PER_FRAME):
            run = self._run
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

    def _finish(self, cause: int) -> None:
        self._finished = True
        self._hangup_cause = cause

    def _enter(self, name: str) -> None:
        node = self.scenario.nodes[name]
        self.log.path.append(name)
        if isinstance(node, MenuNode):
            self._run = _MenuRun(node, self._audio)
        elif isinstance(node, HoldNode):
            self._run = _HoldRun(node, self._audio)
        elif isinstance(node, AgentNode):
            self.log.reached_agent = True
            self._run = _AgentRun(node, self._audio, self._rng)
        else:
            assert isinstance(node, AnnouncementNode)
            self._run = _AnnouncementRun(self._audio.sequence(node.audio), node.then, node.hangup_cause)
