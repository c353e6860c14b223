"""The contract between the PBX model and whatever sits at the far end of an outgoing channel.

A company scenario (``company.py``) and a user's phone (``phone.py``) both implement ``FarEnd``:
the model drives the signalling half (dial plan, answer, DTMF, end), the media engine the audio
half (one 20 ms frame out and one in per tick).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

EndedBy = Literal["far_end", "app", "pbx"]  # pbx: it stopped


@dataclass(frozen=True)
class DialPlan:
    """How the far end reacts to being dialled."""

    outcome: Literal["answer", "busy", "no_answer"]
    ring_seconds: float = 0.0
    progress_after: float | None = None  # Dial PROGRESS (early media) this long after RINGING


class FarEnd(Protocol):
    def dial_plan(self) -> DialPlan: ...

    def progress(self) -> None:
        """Early media starts (Dial PROGRESS)."""

    def answered(self) -> None: ...

    def receive_dtmf(self, digit: str) -> None: ...

    def ended(self, cause: int, ended_by: EndedBy) -> None: ...

    def next_frame(self) -> np.ndarray | None:
        """What the far end sends for the next 20 ms (None = silence); called once per tick."""

    def hear(self, frame: np.ndarray | None) -> None:
        """What the far end receives in this tick."""

    def take_hangup(self) -> int | None:
        """A Q.850 cause once the far end has decided to hang up, else None."""


@dataclass
class Utterance:
    """Something the agent said: ``what`` is greeting, answer, hello or reply; times are
    ``time.monotonic()`` (the event loop's clock) and stream seconds since the company answered
    (counted in 20 ms frames, as sent)."""

    what: str
    started_at: float
    stream_seconds: float
    seconds: float


@dataclass
class CompanyCallLog:
    """What happened on one company call, from the company's side.

    ``path``: the scenario nodes entered, in order (a node entered twice is listed twice);
    ``entered``: collect node -> the last entry keyed there (without the terminator);
    ``heard``: (menu node, transcript) of every utterance a speech menu transcribed.

    The agent (times are ``time.monotonic()``, the event loop's clock, and ``*_stream_seconds``
    count the frames the company sent since it answered): ``agent_first_word_at`` is the first
    voice-level frame of the person's own speech (not the music under it, not an announcement);
    ``utterances`` everything the person said; ``heard_caller_at`` when the person first heard
    the caller finish a turn (voice, then a pause), ``caller_turns`` how many; ``lost_person``:
    the person hung up because nobody answered (``hangup_if_unanswered_seconds``).
    """

    channel_id: str
    number: str
    scenario: str
    dtmf: str = ""
    path: list[str] = field(default_factory=list)
    reached_agent: bool = False
    agent_heard_seconds: float = 0.0
    end_cause: int | None = None
    ended_by: EndedBy | None = None
    entered: dict[str, str] = field(default_factory=dict)
    heard: list[tuple[str, str]] = field(default_factory=list)
    answered_at: float | None = None
    agent_at: float | None = None
    agent_first_word_at: float | None = None
    agent_first_word_stream_seconds: float | None = None
    utterances: list[Utterance] = field(default_factory=list)
    heard_caller_at: float | None = None
    heard_caller_stream_seconds: float | None = None
    caller_turns: int = 0
    lost_person: bool = False
    agent_hung_up_at: float | None = None
    ended_at: float | None = None

    def reached(self, node: str) -> bool:
        """The call got to ``node`` (an intent's destination) at some point."""
        return node in self.path


@dataclass
class UserCallLog:
    """What happened on one call to the user's phone."""

    channel_id: str
    endpoint: str
    answered: bool = False
    heard_seconds: float = 0.0
    end_cause: int | None = None
    dialled_at: float | None = None  # time.monotonic() when the PBX started ringing the phone
    answered_at: float | None = None
