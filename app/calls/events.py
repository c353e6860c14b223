"""Domain events and the in-process event bus.

Every step of a call is a typed ``CallEvent`` on the bus. Subscribers (the store, WebSocket
clients, the CLI's progress view, notifications) each get their own ordered queue, so a slow
subscriber never reorders or blocks another.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from app.clock import utc_now_iso

log = logging.getLogger(__name__)


class EventType(str, Enum):
    # lifecycle
    CALL_CREATED = "CALL_CREATED"
    CALL_DIALING = "CALL_DIALING"
    CALL_RINGING = "CALL_RINGING"
    CALL_ANSWERED = "CALL_ANSWERED"
    CALL_STATUS = "CALL_STATUS"  # status changed; data: status, previous
    CALL_ENDED = "CALL_ENDED"  # final; data: status, reason, detail
    # navigation (names from the seed)
    IVR_STEP = "IVR_STEP"
    IVR_DTMF_SENT = "IVR_DTMF_SENT"
    IVR_MENU_DETECTED = "IVR_MENU_DETECTED"
    IVR_SPEECH_SENT = "IVR_SPEECH_SENT"  # we spoke into a menu (TTS); vault values are named, not shown
    IVR_STUCK = "IVR_STUCK"  # a loop or silence after input, and the recovery tried
    USER_DATA_REQUESTED = "USER_DATA_REQUESTED"  # a menu wants data the user did not give: answer via the API
    USER_DATA_RECEIVED = "USER_DATA_RECEIVED"
    FLOW_MISMATCH = "FLOW_MISMATCH"  # a learned flow no longer matches the menu: exploring instead
    FLOW_LEARNED = "FLOW_LEARNED"  # a flow was learned (or re-learned) from this call
    # hold and detection
    AUDIO_CLASSIFIED = "AUDIO_CLASSIFIED"
    HOLD_DETECTED = "HOLD_DETECTED"
    HUMAN_SUSPECTED = "HUMAN_SUSPECTED"  # speech on hold may be a person: we greet them (cheap when wrong)
    HUMAN_RETRACTED = "HUMAN_RETRACTED"  # the suspicion was wrong (music came back, a recording): back to hold
    HUMAN_DETECTED = "HUMAN_DETECTED"  # sure: the user's phone rings
    HUMAN_PROBE = "HUMAN_PROBE"  # words on hold stopped undecided: we asked "are you there?" (TTS)
    HOLD_PROGRESS = "HOLD_PROGRESS"  # periodic: seconds on hold
    TONE_DETECTED = "TONE_DETECTED"  # ringback, busy, reorder, SIT (with its cause), DTMF
    # handoff
    AGENT_GREETED = "AGENT_GREETED"  # we spoke to the possible person: data line (greeting | hold_on), text, t
    TRANSFER_STARTED = "TRANSFER_STARTED"
    TRANSFER_COMPLETE = "TRANSFER_COMPLETE"
    # media / infrastructure
    RECORDING_SAVED = "RECORDING_SAVED"
    ARI_RECONNECTED = "ARI_RECONNECTED"


@dataclass(frozen=True)
class CallEvent:
    type: EventType
    call_id: str
    data: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=utc_now_iso)  # wall clock, ISO 8601
    seq: int = 0  # per-bus sequence number, set on publish

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type.value, "call_id": self.call_id, "data": self.data, "at": self.at, "seq": self.seq}


class Subscription:
    """An ordered stream of events for one subscriber."""

    def __init__(self, bus: "EventBus", predicate: Callable[[CallEvent], bool] | None, maxsize: int):
        self._bus = bus
        self._predicate = predicate
        self._queue: asyncio.Queue[CallEvent | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, event: CallEvent) -> None:
        if self._predicate is not None and not self._predicate(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # A stuck subscriber must not stall calls; it loses events and we count them.
            self.dropped += 1

    async def get(self) -> CallEvent | None:
        """The next event, or None once the subscription is closed."""
        return await self._queue.get()

    def get_nowait(self) -> CallEvent | None:
        return self._queue.get_nowait()

    def close(self) -> None:
        self._bus._unsubscribe(self)
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            pass

    def __aiter__(self) -> AsyncIterator[CallEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[CallEvent]:
        while (event := await self._queue.get()) is not None:
            yield event


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._seq = itertools.count(1)

    def subscribe(
        self, predicate: Callable[[CallEvent], bool] | None = None, *, maxsize: int = 10_000
    ) -> Subscription:
        sub = Subscription(self, predicate, maxsize)
        self._subscriptions.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def publish(self, event: CallEvent) -> CallEvent:
        """Stamp the event with the next sequence number and hand it to every subscriber."""
        stamped = CallEvent(event.type, event.call_id, event.data, event.at, next(self._seq))
        for sub in list(self._subscriptions):
            sub._offer(stamped)
        return stamped

    def emit(self, type_: EventType, call_id: str, **data: Any) -> CallEvent:
        return self.publish(CallEvent(type_, call_id, data))
