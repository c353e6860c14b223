"""What the audio detectors emit: one classification per window and the call decisions.

The live person is decided in two stages. ``HumanSuspected`` is fast and cheap when wrong: the
session speaks to the possible person at once. ``HumanDetected`` is sure and rings the user.
``HumanRetracted`` withdraws a suspicion (music came back, the audio proved to be a recording).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class AudioClass(str, Enum):
    SILENCE = "SILENCE"  # nothing, or only a noise floor
    RINGING = "RINGING"  # ringback (440+480 Hz)
    BUSY = "BUSY"  # busy / reorder (480+620 Hz)
    SIT = "SIT"  # special information tones (number not in service...)
    DTMF = "DTMF"
    MUSIC = "MUSIC"
    IVR_PROMPT = "IVR_PROMPT"  # speech judged to be a recording
    SPEECH = "SPEECH"  # speech whose source (recording or person) is not known yet
    LIVE_HUMAN = "LIVE_HUMAN"  # speech judged to come from a live person


@dataclass(frozen=True)
class Classification:
    """The class of one analysis window ``[t_start, t_end)`` in stream time (seconds)."""

    t_start: float
    t_end: float
    audio_class: AudioClass
    confidence: float  # 0..1
    features: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HoldDetected:
    """The call is on hold (music, possibly with announcements); ``t`` is the stream time of the decision."""

    t: float
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HumanDetected:
    """A live person is talking; ``t`` is the stream time of the decision."""

    t: float
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HumanSuspected:
    """Speech on hold that may be a person: greet them now (harmless if it is a recording)."""

    t: float
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HumanRetracted:
    """The suspicion raised at ``suspected_t`` was wrong: back to hold."""

    t: float
    confidence: float
    suspected_t: float
    evidence: dict[str, Any] = field(default_factory=dict)


Decision = HoldDetected | HumanSuspected | HumanRetracted | HumanDetected
DetectorOutput = Classification | Decision
