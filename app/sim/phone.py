"""The user's own phone, as the simulated PBX sees it when it is dialled."""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.sim.audio import FRAME_SECONDS, AudioLibrary, ClipCursor, Frame, check_audio_ref, is_voice
from app.sim.farend import DialPlan, EndedBy, UserCallLog

NORMAL_CLEARING = 16
_SPEECH_DELAY_SECONDS = 0.5  # people say "hello" a moment after picking up
_ANSWER_AFTER_QUIET_SECONDS = 0.7  # a question has ended: the caller answers


@dataclass(frozen=True)
class UserPhoneConfig:
    answer_after: float | None = 1.0  # seconds of ringing; None = never answers
    hangup_after: float | None = None  # seconds after answer; None = stays until the other side ends
    speech: str | None = None  # corpus reference the user "says" after answering
    # Dialling in: the user waits for the app's question and answers once it has finished
    # (speech after 0.7 s of quiet following words heard), instead of at once.
    answers_prompt: bool = False
    # Says ``speech`` (again) into this many seconds of a line on which nothing was heard or said,
    # as people do when a call seems dead; once heard, they answer each turn. None: speaks once.
    hello_after_quiet: float | None = None

    def __post_init__(self) -> None:
        if self.answer_after is not None and self.answer_after < 0:
            raise ValueError("answer_after must be >= 0 or None")
        if self.hangup_after is not None and self.hangup_after <= 0:
            raise ValueError("hangup_after must be > 0 or None")
        if self.speech is not None:
            check_audio_ref(self.speech)
        if self.hello_after_quiet is not None and (self.hello_after_quiet <= 0 or self.speech is None):
            raise ValueError("hello_after_quiet must be > 0 and needs speech")


class UserPhone:
    """The far end of a channel to the user's phone (implements ``FarEnd``)."""

    def __init__(self, config: UserPhoneConfig, audio: AudioLibrary, log: UserCallLog) -> None:
        self.config = config
        self.log = log
        self._audio = audio
        self._answered_frames: int | None = None
        self._speech: ClipCursor | None = None
        self._hangup_cause: int | None = None
        self._finished = False
        self._last_voice_frame: int | None = None  # when the phone last heard words (answered frames)
        self._spoke = 0  # times the user said their words
        self._last_spoke_frame: int | None = None  # when the user last finished saying them

    def dial_plan(self) -> DialPlan:
        self.log.dialled_at = time.monotonic()
        if self.config.answer_after is None:
            return DialPlan("no_answer")
        return DialPlan("answer", ring_seconds=self.config.answer_after)

    def progress(self) -> None:
        """Phones have no early media."""

    def answered(self) -> None:
        self.log.answered = True
        self.log.answered_at = time.monotonic()
        self._answered_frames = 0

    def receive_dtmf(self, digit: str) -> None:
        """Nobody listens for keys on the user's phone."""

    def ended(self, cause: int, ended_by: EndedBy) -> None:
        self._finished = True
        self.log.end_cause = cause

    def next_frame(self) -> Frame | None:
        if self._finished or self._answered_frames is None:
            return None
        self._answered_frames += 1
        elapsed = self._answered_frames * FRAME_SECONDS
        if self.config.hangup_after is not None and elapsed >= self.config.hangup_after:
            self._finished = True
            self._hangup_cause = NORMAL_CLEARING
            return None
        if self.config.speech and self._speech is None and elapsed >= _SPEECH_DELAY_SECONDS and self._may_speak():
            self._speech = ClipCursor(self._audio.clip(self.config.speech))
        if self._speech is None:
            return None
        frame = self._speech.next_frame()
        if frame is None:
            self._speech = None
            self._spoke += 1
            self._last_spoke_frame = self._answered_frames
        return frame

    def _may_speak(self) -> bool:
        assert self._answered_frames is not None
        now = self._answered_frames
        repeats = self.config.hello_after_quiet is not None
        if self._spoke and not repeats:
            return False
        spoke = self._last_spoke_frame if self._last_spoke_frame is not None else 0
        heard = self._last_voice_frame
        if repeats and (now - max(spoke, heard or 0)) * FRAME_SECONDS >= self.config.hello_after_quiet:
            return True  # "Hello?" into a line that seems dead
        if not self.config.answers_prompt:
            return not self._spoke
        if heard is None or (self._spoke and heard <= spoke):
            return False  # the question (or the next turn) has not come yet
        return (now - heard) * FRAME_SECONDS >= _ANSWER_AFTER_QUIET_SECONDS

    def hear(self, frame: Frame | None) -> None:
        if self._answered_frames is not None and not self._finished and is_voice(frame):
            self.log.heard_seconds += FRAME_SECONDS
            self._last_voice_frame = self._answered_frames

    def take_hangup(self) -> int | None:
        cause, self._hangup_cause = self._hangup_cause, None
        return cause
