"""What the user is told, and when: pure, from the call's events.

The moments worth a notification: a person is on the line (the user's phone rings), the user is
connected, a menu asks for something only the user knows, and a call that failed. Everything
else (hold progress, classification windows, menu steps) is for the dashboard, not a ping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.calls import events as ev
from app.calls.events import CallEvent


@dataclass(frozen=True)
class Notification:
    kind: str  # person_on_the_line | connected | user_data_requested | call_failed
    call_id: str
    title: str
    body: str
    event: dict[str, Any] = field(default_factory=dict)  # the event's JSON form

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "call_id": self.call_id, "title": self.title, "body": self.body, "event": self.event}


@dataclass
class CallNames:
    """Who each call is to, learned from CALL_CREATED (the other events carry only the call id)."""

    names: dict[str, str] = field(default_factory=dict)

    def learn(self, event: CallEvent) -> None:
        if isinstance(event.data, ev.CallCreated):
            self.names[event.call_id] = event.data.company or event.data.number

    def of(self, call_id: str) -> str:
        return self.names.get(call_id, f"call {call_id}")

    def forget(self, call_id: str) -> None:
        self.names.pop(call_id, None)


def notification_for(event: CallEvent, names: CallNames) -> Notification | None:
    who = names.of(event.call_id)

    def note(kind: str, title: str, body: str) -> Notification:
        return Notification(kind, event.call_id, title, body, event.to_dict())

    match event.data:
        case ev.HumanDetected(hold_seconds=held):
            minutes, seconds = divmod(int(held), 60)
            return note(
                "person_on_the_line",
                f"A person is on the line: {who}",
                f"After {minutes} min {seconds:02d} s on hold a person answered. Your phone is ringing now.",
            )
        case ev.TransferComplete(device=device):
            return note("connected", f"Connected: {who}", f"You are talking with {who} on {device}.")
        case ev.UserDataRequested(field=field_name, question=question, timeout_seconds=timeout):
            return note(
                "user_data_requested",
                f"{who} asks for your {field_name.replace('_', ' ')}",
                f"{question} Answer within {timeout:.0f} s (POST /api/calls/{event.call_id}/user-data).",
            )
        case ev.CallEnded(status="failed", reason=reason, detail=detail):
            return note(
                "call_failed",
                f"The call to {who} failed: {reason.replace('_', ' ')}",
                detail or reason.replace("_", " "),
            )
    return None
