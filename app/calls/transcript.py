"""A call's transcript from its events: what the company's menus said and what we said or
pressed, in order. Pure: event dicts (``CallEvent.to_dict()`` shape) in, lines out.

What we keyed or said from the user's data is already masked in the events ("***",
"<account_number>"), so a transcript never shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from app.calls.events import EventType

Speaker = Literal["company", "us"]


@dataclass(frozen=True)
class TranscriptLine:
    at: str  # the event's wall clock, ISO 8601
    speaker: Speaker
    kind: str  # menu | dtmf | speech | greeting | probe
    text: str
    step_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def transcript_lines(events: Iterable[dict[str, Any]]) -> list[TranscriptLine]:
    """The lines of a call's transcript, in event order; other events are skipped."""
    lines = []
    for event in events:
        line = _line(event)
        if line is not None:
            lines.append(line)
    return lines


def _line(event: dict[str, Any]) -> TranscriptLine | None:
    data, at = event.get("data") or {}, str(event.get("at", ""))
    match event.get("type"):
        case EventType.IVR_MENU_DETECTED.value if (text := str(data.get("transcript") or "").strip()):
            return TranscriptLine(at, "company", "menu", text, data.get("step_id"))
        case EventType.IVR_DTMF_SENT.value:
            return TranscriptLine(at, "us", "dtmf", str(data.get("digits", "")), data.get("step_id"))
        case EventType.IVR_SPEECH_SENT.value:
            return TranscriptLine(at, "us", "speech", str(data.get("text", "")), data.get("step_id"))
        case EventType.AGENT_GREETED.value:
            return TranscriptLine(at, "us", "greeting", str(data.get("text", "")))
        case EventType.HUMAN_PROBE.value:
            return TranscriptLine(at, "us", "probe", str(data.get("text", "")))
    return None


_SAID = {"menu": "said", "dtmf": "pressed", "speech": "said", "greeting": "said to the person", "probe": "asked"}


def render_transcript(lines: Sequence[TranscriptLine]) -> str:
    """Plain text, one line each: ``10:02:03 company said: Press 2 for billing.`` / ``we pressed: 2``."""
    if not lines:
        return "(nothing said or pressed yet)\n"
    out = []
    for line in lines:
        who = "company" if line.speaker == "company" else "we"
        out.append(f"{_clock(line.at)} {who} {_SAID.get(line.kind, 'said')}: {line.text}")
    return "\n".join(out) + "\n"


def _clock(at: str) -> str:
    try:
        return datetime.fromisoformat(at).strftime("%H:%M:%S")
    except ValueError:
        return at
