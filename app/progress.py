"""A call's progress as a person wants to see it: pure state folded from domain events."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.calls import events as ev
from app.calls.events import CallEvent


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
        line = None
        match event.data:
            case ev.CallStatusChanged(status=status):
                self.status = status
                line = f"status: {status}"
            case ev.CallDialing(number=number, dial_string=dial_string):
                line = f"dialling {number} ({dial_string})"
            case ev.IvrStep(step_id=step_id, step_type=None, note=note):
                line = f"step {step_id}: {note}"
            case ev.IvrStep(step_id=step_id, step_type=step_type, description=description):
                self.steps.append(step_id)
                line = f"step {step_id} [{step_type}] {description}".rstrip()
            case ev.IvrMenuDetected(heard_seconds=heard, transcript=transcript) if transcript:
                shown = transcript if len(transcript) <= 160 else transcript[:157] + "..."
                line = f"menu heard ({heard:.1f} s): {shown!r}"
            case ev.IvrMenuDetected(heard_seconds=heard):
                line = f"menu heard ({heard:.1f} s of prompt)"
            case ev.IvrDtmfSent(digits=digits, reason=reason, navigator=navigator) if reason and navigator != "flow":
                line = f"pressed {digits} ({navigator}: {reason})"
            case ev.IvrDtmfSent(digits=digits):
                line = f"pressed {digits}"
            case ev.IvrSpeechSent(text=text, reason=reason):
                line = f"said {text!r}" + (f" ({reason})" if reason else "")
            case ev.AudioClassified(audio_class=audio_class, confidence=confidence):
                self.hearing, self.hearing_confidence = audio_class, confidence
            case ev.HoldDetected(confidence=confidence):
                line = f"on hold (confidence {confidence:.2f})"
            case ev.HoldProgress(hold_seconds=hold_seconds):
                self.hold_seconds = hold_seconds
            case ev.HumanDetected(confidence=confidence, hold_seconds=hold_seconds):
                self.human_confidence = confidence
                self.hold_seconds = hold_seconds
                line = f"LIVE PERSON after {self.hold_seconds:.0f} s on hold (confidence {confidence:.2f})"
            case ev.HumanSuspected(t=t, evidence=evidence):
                line = f"maybe a person at {t:.1f} s ({evidence.get('rule')}): greeting them"
            case ev.HumanRetracted(evidence=evidence):
                line = f"not a person after all ({evidence.get('why')})"
            case ev.HumanProbe(text=text):
                line = f"asked: {text!r}"
            case ev.AgentGreeted(text=text):
                line = f"said to the person: {text!r}"
            case ev.TransferStarted(device=device, dial_string=dial_string):
                line = f"ringing your device {device} ({dial_string})"
            case ev.TransferComplete():
                line = "you are connected to the agent"
            case ev.AriReconnected():
                line = "reconnected to the PBX"
            case ev.RecordingSaved(path=path, seconds=seconds, channel=channel):
                line = f"recording saved ({channel.value.replace('_', ' ')}): {path} ({seconds:.0f} s)"
            case ev.CallEnded(status=status, reason=reason, detail=detail):
                self.status, self.reason, self.detail = status, reason, detail
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
