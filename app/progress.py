"""A call's progress as a person wants to see it: pure state folded from domain events."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.calls.events import CallEvent, EventType


@dataclass
class CallProgress:
    call_id: str
    status: str = "pending"
    steps: list[str] = field(default_factory=list)
    hold_seconds: float = 0.0
    hearing: str = ""  # the latest audio class
    hearing_confidence: float = 0.0
    human_confidence: float | None = None
    reason: str | None = None
    detail: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.reason is not None

    @property
    def bridged(self) -> bool:
        return self.reason == "bridged"

    def apply(self, event: CallEvent) -> str | None:
        """Fold one event in; returns a log line worth showing, if any."""
        if event.call_id != self.call_id:
            return None
        d, line = event.data, None
        match event.type:
            case EventType.CALL_STATUS:
                self.status = d["status"]
                line = f"status: {d['status']}"
            case EventType.CALL_DIALING:
                line = f"dialling {d['number']} ({d['dial_string']})"
            case EventType.IVR_STEP:
                self.steps.append(d["step_id"])
                line = f"step {d['step_id']} [{d['step_type']}] {d.get('description', '')}".rstrip()
            case EventType.IVR_MENU_DETECTED:
                line = f"menu heard ({d['heard_seconds']:.1f} s of prompt)"
            case EventType.IVR_DTMF_SENT:
                line = f"pressed {d['digits']}"
            case EventType.AUDIO_CLASSIFIED:
                self.hearing, self.hearing_confidence = d["audio_class"], d["confidence"]
            case EventType.HOLD_DETECTED:
                line = f"on hold (confidence {d['confidence']:.2f})"
            case EventType.HOLD_PROGRESS:
                self.hold_seconds = d["hold_seconds"]
            case EventType.HUMAN_DETECTED:
                self.human_confidence = d["confidence"]
                self.hold_seconds = d.get("hold_seconds", self.hold_seconds)
                line = f"LIVE PERSON after {self.hold_seconds:.0f} s on hold (confidence {d['confidence']:.2f})"
            case EventType.HUMAN_SUSPECTED:
                line = f"maybe a person at {d['t']:.1f} s ({d['evidence'].get('rule')}): greeting them"
            case EventType.HUMAN_RETRACTED:
                line = f"not a person after all ({d['evidence'].get('why')})"
            case EventType.HUMAN_PROBE:
                line = f"asked: {d['text']!r}"
            case EventType.AGENT_GREETED:
                line = f"said to the person: {d['text']!r}"
            case EventType.TRANSFER_STARTED:
                line = f"ringing your device {d['device']} ({d['dial_string']})"
            case EventType.TRANSFER_COMPLETE:
                line = "you are connected to the agent"
            case EventType.ARI_RECONNECTED:
                line = "reconnected to the PBX"
            case EventType.RECORDING_SAVED:
                line = f"recording saved: {d['path']} ({d['seconds']:.0f} s)"
            case EventType.CALL_ENDED:
                self.status, self.reason, self.detail = d["status"], d["reason"], d.get("detail", "")
        if line:
            self.log.append(line)
        return line

    def status_line(self) -> str:
        parts = [f"[{self.status}]"]
        if self.status == "on_hold" or self.hold_seconds:
            minutes, seconds = divmod(int(self.hold_seconds), 60)
            parts.append(f"hold {minutes:02d}:{seconds:02d}")
        if self.hearing:
            parts.append(f"hearing {self.hearing} ({self.hearing_confidence:.2f})")
        return "  ".join(parts)

    def outcome_line(self) -> str:
        if self.bridged:
            return f"OUTCOME: SUCCESS - you were connected to a live agent after {self.hold_seconds:.0f} s on hold ({self.detail})"
        return f"OUTCOME: {self.status.upper()} - {self.reason}: {self.detail}"
