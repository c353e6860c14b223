"""Domain events and the in-process event bus.

Every step of a call is a ``CallEvent`` on the bus: an envelope (call id, wall-clock time,
sequence number) around one typed payload, a frozen model per event type. The payload's type is
the discriminator: ``CallEvent.type`` is read from it, so an event cannot carry the wrong data.
The JSON form, ``CallEvent.to_dict()`` (``{"type", "call_id", "data", "at", "seq"}``), is the one
the store journals, REST returns and the WebSocket and MCP stream; ``CallEvent.from_dict`` reads
it back, and ``event_json_schema()`` publishes it (``docs/events.schema.json``, kept current by
a test).

Subscribers (the store, WebSocket clients, the CLI's progress view, notifications) each get their
own ordered queue, so a slow subscriber never reorders or blocks another.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, create_model

from app.calls.models import RecordingChannel
from app.clock import utc_now_iso
from app.jsonable import event_jsonable

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
    MEDIA_HEALTH = "MEDIA_HEALTH"  # at the end: the call's received audio, packets lost, late, concealed


# Evidence and detail dicts from the audio path hold numpy values, tuples and enums: plain JSON here.
JsonObject = Annotated[dict[str, Any], BeforeValidator(event_jsonable)]


class EventData(BaseModel):
    """The payload of one event type. Subclasses name their ``TYPE``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[EventType]


# ---------------------------------------------------------------- lifecycle


class CallCreated(EventData):
    TYPE = EventType.CALL_CREATED
    number: str
    intent: str = ""
    device: str | None = None
    flow_id: str | None = None
    company: str | None = None


class CallDialing(EventData):
    TYPE = EventType.CALL_DIALING
    number: str
    dial_string: str


class CallRinging(EventData):
    TYPE = EventType.CALL_RINGING


class CallAnswered(EventData):
    TYPE = EventType.CALL_ANSWERED


class CallStatusChanged(EventData):
    TYPE = EventType.CALL_STATUS
    status: str
    previous: str


class CallEnded(EventData):
    """Final: the last event of every call."""

    TYPE = EventType.CALL_ENDED
    status: str
    reason: str
    detail: str = ""


# ---------------------------------------------------------------- navigation


class InputDetail(EventData):
    """Who chose an input we sent into the menu, and why (the fields of a navigator's decision)."""

    purpose: str | None = None  # flow | selection | recovery | user_data | manual (sent by hand: REST, MCP)
    navigator: str | None = None
    reason: str | None = None
    confidence: float | None = None
    action: JsonObject | None = None
    field: str | None = None  # user data: the vault field entered (its value is never shown)


class IvrStep(EventData):
    TYPE = EventType.IVR_STEP
    step_id: str
    step_type: str | None = None
    description: str = ""
    note: str | None = None  # something went wrong inside the step
    decision: str | None = None  # what a navigator decided, in words
    navigator: str | None = None
    reason: str | None = None
    confidence: float | None = None
    action: JsonObject | None = None


class IvrDtmfSent(InputDetail):
    TYPE = EventType.IVR_DTMF_SENT
    step_id: str
    digits: str  # masked ("***") when they came from the vault


class IvrSpeechSent(InputDetail):
    TYPE = EventType.IVR_SPEECH_SENT
    step_id: str
    text: str  # "<field>" when it was a vault value
    seconds: float


class MenuOptionHeard(EventData):
    key: str | None
    spoken: str | None
    label: str
    kind: str


class DataRequestHeard(EventData):
    field: str
    modes: list[str]
    terminator: str | None = None
    length: int | None = None


class ReplayCheckResult(EventData):
    ok: bool
    similarity: float
    reason: str


class IvrMenuDetected(EventData):
    """A prompt was heard out (``transcript`` empty when the step only listened for its end)."""

    TYPE = EventType.IVR_MENU_DETECTED
    step_id: str
    transcript: str = ""
    options: list[MenuOptionHeard] = Field(default_factory=list)
    data_requests: list[DataRequestHeard] = Field(default_factory=list)
    open_question: bool = False
    is_hold_message: bool = False
    t_start: float
    t_end: float
    heard_seconds: float
    listened_seconds: float
    stt: str | None = None
    replay: ReplayCheckResult | None = None  # a learned step's prompt against the one heard


class IvrStuck(EventData):
    TYPE = EventType.IVR_STUCK
    step_id: str
    problem: str
    recovery: str
    reason: str


class UserDataRequested(EventData):
    TYPE = EventType.USER_DATA_REQUESTED
    step_id: str
    request_id: str
    field: str
    question: str
    transcript: str
    timeout_seconds: float


class UserDataReceived(EventData):
    TYPE = EventType.USER_DATA_RECEIVED
    field: str
    requested: bool


class FlowMismatch(EventData):
    TYPE = EventType.FLOW_MISMATCH
    step_id: str
    expected_transcript: str | None
    heard_transcript: str
    similarity: float
    reason: str


class FlowLearned(EventData):
    TYPE = EventType.FLOW_LEARNED
    flow_id: str
    version: int
    steps: list[str]
    merged: bool


# ---------------------------------------------------------------- hold and detection


class AudioClassified(EventData):
    TYPE = EventType.AUDIO_CLASSIFIED
    t_start: float
    t_end: float
    audio_class: str
    confidence: float
    features: JsonObject = Field(default_factory=dict)


class HoldDetected(EventData):
    TYPE = EventType.HOLD_DETECTED
    t: float
    confidence: float
    evidence: JsonObject


class HumanSuspected(EventData):
    TYPE = EventType.HUMAN_SUSPECTED
    t: float
    confidence: float
    evidence: JsonObject


class HumanRetracted(EventData):
    TYPE = EventType.HUMAN_RETRACTED
    t: float
    suspected_t: float
    evidence: JsonObject


class HumanDetected(EventData):
    TYPE = EventType.HUMAN_DETECTED
    t: float
    confidence: float
    evidence: JsonObject
    hold_seconds: float


class HumanProbe(EventData):
    TYPE = EventType.HUMAN_PROBE
    text: str
    t: float
    seconds: float


class HoldProgress(EventData):
    TYPE = EventType.HOLD_PROGRESS
    hold_seconds: float


class ToneDetected(EventData):
    TYPE = EventType.TONE_DETECTED
    kind: str
    t: float
    region: str | None = None
    detail: JsonObject = Field(default_factory=dict)


# ---------------------------------------------------------------- handoff


class AgentGreeted(EventData):
    TYPE = EventType.AGENT_GREETED
    line: str  # greeting | intro | hold_on
    text: str
    t: float
    seconds: float


class TransferStarted(EventData):
    TYPE = EventType.TRANSFER_STARTED
    device: str
    dial_string: str


class TransferComplete(EventData):
    TYPE = EventType.TRANSFER_COMPLETE
    device: str


# ---------------------------------------------------------------- media / infrastructure


class RecordingSaved(EventData):
    """One recording of the call is complete on disk (one event per channel)."""

    TYPE = EventType.RECORDING_SAVED
    path: str
    seconds: float
    channel: RecordingChannel = Field(
        RecordingChannel.FAR_END,
        description="far_end: the company as the app heard it; app: what the app said (same timeline); "
        "mixed: the two mixed; bridged: the user and the person, recorded by the PBX once bridged",
    )


class AriReconnected(EventData):
    TYPE = EventType.ARI_RECONNECTED
    lost_channels: list[str]


class MediaHealthReport(EventData):
    """The received audio's counters over the whole call (``app.media.health.MediaHealth``)."""

    TYPE = EventType.MEDIA_HEALTH
    received: int
    lost: int
    late: int
    duplicated: int
    concealed: int
    malformed: int
    stray: int
    dropped: int


PAYLOADS: dict[EventType, type[EventData]] = {
    cls.TYPE: cls
    for cls in (
        CallCreated, CallDialing, CallRinging, CallAnswered, CallStatusChanged, CallEnded,
        IvrStep, IvrDtmfSent, IvrSpeechSent, IvrMenuDetected, IvrStuck, UserDataRequested,
        UserDataReceived, FlowMismatch, FlowLearned, AudioClassified, HoldDetected, HumanSuspected,
        HumanRetracted, HumanDetected, HumanProbe, HoldProgress, ToneDetected, AgentGreeted,
        TransferStarted, TransferComplete, RecordingSaved, AriReconnected, MediaHealthReport,
    )
}  # fmt: skip


class EventFormatError(ValueError):
    """A JSON form that is no event of this version."""


@dataclass(frozen=True)
class CallEvent:
    call_id: str
    data: EventData
    at: str = field(default_factory=utc_now_iso)  # wall clock, ISO 8601
    seq: int = 0  # per-bus sequence number, set on publish
    # Already in the store: republished from a worker process (app.store.live.EventFeed), so this
    # process's StoreWriter must not journal it again.
    journaled: bool = field(default=False, compare=False)

    @property
    def type(self) -> EventType:
        return self.data.TYPE

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "call_id": self.call_id,
            "data": self.data.model_dump(mode="json"),
            "at": self.at,
            "seq": self.seq,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CallEvent:
        """Read an event's JSON form (as journalled, returned by REST or streamed)."""
        try:
            payload = PAYLOADS[EventType(raw["type"])]
            return cls(str(raw["call_id"]), payload.model_validate(raw.get("data") or {}), str(raw["at"]), int(raw.get("seq", 0)))
        except (KeyError, ValueError, TypeError) as exc:
            raise EventFormatError(f"not an event: {exc}") from exc


def _envelope(event_type: EventType, payload: type[EventData]) -> type[BaseModel]:
    return create_model(
        payload.__name__ + "Event",
        __config__=ConfigDict(extra="forbid", title=event_type.value),
        type=(Literal[event_type.value], ...),  # type: ignore[valid-type]
        call_id=(str, ...),
        data=(payload, ...),
        at=(str, Field(..., description="wall clock, ISO 8601 UTC")),
        seq=(int, Field(..., description="order of the event among all events the process running the call published")),
    )


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of every event's JSON form, one alternative per type."""
    envelopes = tuple(_envelope(t, p) for t, p in PAYLOADS.items())
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[Union[envelopes], Field(discriminator="type")])  # type: ignore[valid-type]
    schema = adapter.json_schema()
    schema["title"] = "Hold Slayer call event"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


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
        stamped = CallEvent(event.call_id, event.data, event.at, next(self._seq), event.journaled)
        for sub in list(self._subscriptions):
            sub._offer(stamped)
        return stamped

    def emit(self, call_id: str, data: EventData) -> CallEvent:
        return self.publish(CallEvent(call_id, data))

    def republish(self, event: CallEvent) -> CallEvent:
        """Hand an event another process published (a worker of ``serve --workers N``) to every
        subscriber with the sequence number it has there: the events of one call are numbered by
        the one process that runs it, in the store and live alike."""
        for sub in list(self._subscriptions):
            sub._offer(event)
        return event


if __name__ == "__main__":  # python -m app.calls.events > docs/events.schema.json
    import json
    import sys

    json.dump(event_json_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
