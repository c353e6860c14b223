"""Typed ARI events and ``parse_event``, which never raises.

Every event keeps the JSON it came from in ``raw`` and says which channels, bridges, playbacks
and recordings it concerns (``resource_ids``), which is what the router uses to find the call.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.ari.models import Bridge, Channel, DeviceState, LiveRecording, Playback

log = logging.getLogger(__name__)


class AriEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    timestamp: str
    application: str
    asterisk_id: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    def resource_ids(self) -> set[str]:
        """Ids of every channel, bridge, playback and recording this event concerns."""
        ids: set[str] = set()
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, (Channel, Bridge)):
                ids.add(value.id)
            elif isinstance(value, Playback):
                ids.add(value.id)
                ids.update(filter(None, [value.target_id()]))
            elif isinstance(value, LiveRecording):
                ids.add(value.name)
                ids.update(filter(None, [value.target_id()]))
        return ids


class StasisStart(AriEvent):
    type: Literal["StasisStart"] = "StasisStart"
    args: list[str] = Field(default_factory=list)
    channel: Channel
    replace_channel: Channel | None = None


class StasisEnd(AriEvent):
    type: Literal["StasisEnd"] = "StasisEnd"
    channel: Channel


class ChannelCreated(AriEvent):
    type: Literal["ChannelCreated"] = "ChannelCreated"
    channel: Channel


class ChannelStateChange(AriEvent):
    type: Literal["ChannelStateChange"] = "ChannelStateChange"
    channel: Channel


class ChannelDestroyed(AriEvent):
    """The channel is gone. ``cause`` is the Q.850 cause (16 normal, 17 busy, 19 no answer, 1 unallocated)."""

    type: Literal["ChannelDestroyed"] = "ChannelDestroyed"
    cause: int
    cause_txt: str
    tech_cause: int | None = None
    channel: Channel


class ChannelHangupRequest(AriEvent):
    """With ``soft=True`` the cause is a soft-hangup flag (32), not a Q.850 cause."""

    type: Literal["ChannelHangupRequest"] = "ChannelHangupRequest"
    cause: int | None = None
    tech_cause: int | None = None
    soft: bool = False
    channel: Channel


class ChannelDtmfReceived(AriEvent):
    type: Literal["ChannelDtmfReceived"] = "ChannelDtmfReceived"
    digit: str
    duration_ms: int
    channel: Channel


class Dial(AriEvent):
    """Progress of a dial. ``dialstatus`` is "" at the start, then RINGING, PROGRESS, ANSWER, BUSY..."""

    type: Literal["Dial"] = "Dial"
    caller: Channel | None = None
    peer: Channel
    forward: str = ""
    forwarded: Channel | None = None
    dialstring: str = ""
    dialstatus: str


class ChannelEnteredBridge(AriEvent):
    type: Literal["ChannelEnteredBridge"] = "ChannelEnteredBridge"
    bridge: Bridge
    channel: Channel | None = None


class ChannelLeftBridge(AriEvent):
    type: Literal["ChannelLeftBridge"] = "ChannelLeftBridge"
    bridge: Bridge
    channel: Channel


class BridgeCreated(AriEvent):
    type: Literal["BridgeCreated"] = "BridgeCreated"
    bridge: Bridge


class BridgeDestroyed(AriEvent):
    type: Literal["BridgeDestroyed"] = "BridgeDestroyed"
    bridge: Bridge


class ChannelVarset(AriEvent):
    """``channel`` is None for a global variable."""

    type: Literal["ChannelVarset"] = "ChannelVarset"
    variable: str
    value: str
    channel: Channel | None = None


class ChannelDialplan(AriEvent):
    type: Literal["ChannelDialplan"] = "ChannelDialplan"
    channel: Channel
    dialplan_app: str
    dialplan_app_data: str


class ChannelCallerId(AriEvent):
    type: Literal["ChannelCallerId"] = "ChannelCallerId"
    caller_presentation: int
    caller_presentation_txt: str
    channel: Channel


class ChannelConnectedLine(AriEvent):
    type: Literal["ChannelConnectedLine"] = "ChannelConnectedLine"
    channel: Channel


class ChannelUserevent(AriEvent):
    """A dialplan ``UserEvent``; ``userevent`` holds its key/value pairs."""

    type: Literal["ChannelUserevent"] = "ChannelUserevent"
    eventname: str
    userevent: dict[str, Any] = Field(default_factory=dict)
    channel: Channel | None = None
    bridge: Bridge | None = None
    endpoint: dict[str, Any] | None = None


class PlaybackStarted(AriEvent):
    type: Literal["PlaybackStarted"] = "PlaybackStarted"
    playback: Playback


class PlaybackFinished(AriEvent):
    """``playback.state`` is "done", or "failed" for a missing file."""

    type: Literal["PlaybackFinished"] = "PlaybackFinished"
    playback: Playback


class RecordingStarted(AriEvent):
    type: Literal["RecordingStarted"] = "RecordingStarted"
    recording: LiveRecording


class RecordingFinished(AriEvent):
    type: Literal["RecordingFinished"] = "RecordingFinished"
    recording: LiveRecording


class RecordingFailed(AriEvent):
    type: Literal["RecordingFailed"] = "RecordingFailed"
    recording: LiveRecording


class DeviceStateChanged(AriEvent):
    type: Literal["DeviceStateChanged"] = "DeviceStateChanged"
    device_state: DeviceState


class ApplicationReplaced(AriEvent):
    """Another websocket took our application name; events now go there, not to us."""

    type: Literal["ApplicationReplaced"] = "ApplicationReplaced"


class UnknownEvent(AriEvent):
    """An event type we do not model, or a known type that failed validation (``error`` says why)."""

    timestamp: str = ""
    application: str = ""
    error: str | None = None

    def resource_ids(self) -> set[str]:
        # Best effort so that unmodelled events (ChannelHold, ...) still reach the call that owns them.
        return {
            value["id"] for value in self.raw.values() if isinstance(value, dict) and isinstance(value.get("id"), str)
        }


EVENT_CLASSES: dict[str, type[AriEvent]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        StasisStart,
        StasisEnd,
        ChannelCreated,
        ChannelStateChange,
        ChannelDestroyed,
        ChannelHangupRequest,
        ChannelDtmfReceived,
        Dial,
        ChannelEnteredBridge,
        ChannelLeftBridge,
        BridgeCreated,
        BridgeDestroyed,
        ChannelVarset,
        ChannelDialplan,
        ChannelCallerId,
        ChannelConnectedLine,
        ChannelUserevent,
        PlaybackStarted,
        PlaybackFinished,
        RecordingStarted,
        RecordingFinished,
        RecordingFailed,
        DeviceStateChanged,
        ApplicationReplaced,
    )
}


def parse_event(data: dict[str, Any]) -> AriEvent:
    """The typed event for one decoded websocket message; UnknownEvent for anything else."""
    if not isinstance(data, dict):
        return UnknownEvent(type="", raw={"value": data}, error=f"event is a {type(data).__name__}, not an object")
    event_type = data.get("type")
    fields = {key: data[key] for key in ("timestamp", "application", "asterisk_id") if isinstance(data.get(key), str)}
    cls = EVENT_CLASSES.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        return UnknownEvent(type=event_type if isinstance(event_type, str) else "", raw=data, **fields)
    try:
        return cls.model_validate({**data, "raw": data})
    except ValidationError as exc:
        log.warning("malformed ARI %s event, kept as UnknownEvent: %s", event_type, exc)
        return UnknownEvent(type=event_type, raw=data, error=str(exc), **fields)
