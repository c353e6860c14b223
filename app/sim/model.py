"""Entities of the simulated PBX (channels, bridges, playbacks, recordings) and their ARI JSON.

Plain data plus the JSON shapes Asterisk 22 uses for them (ari-api-docs: Channel, Bridge,
Playback, LiveRecording), with the exact field sets seen in the captures. The rules that change
these objects live in ``telephony.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from app.clock import utc_now
from app.sim.farend import FarEnd

# The documentation MAC address the captures use as entity id.
DEFAULT_ASTERISK_ID = "00:00:5e:00:53:01"
KNOWN_TECHNOLOGIES = {"local": "Local", "pjsip": "PJSIP", "sip": "SIP"}

CAUSE_TEXT = {
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    28: "Invalid number format (addr incomplete)",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    58: "Bearer capability not available",
    127: "Interworking, unspecified",
}
HANGUP_REASONS = {
    "normal": 16,
    "busy": 17,
    "congestion": 34,
    "no_answer": 19,
    "timeout": 18,
    "rejected": 21,
    "unallocated": 1,
    "normal_unspecified": 31,
    "number_incomplete": 28,
    "codec_mismatch": 58,
    "interworking": 127,
    "failure": 38,
    "answered_elsewhere": 26,
}


def cause_text(cause: int) -> str:
    return CAUSE_TEXT.get(cause, "Unknown")


def ari_time(moment: datetime | None = None) -> str:
    """Asterisk's timestamp format: ``2026-11-21T11:33:22.232+0000``."""
    moment = moment or utc_now()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class AriError(Exception):
    """A request Asterisk refuses: HTTP status and Asterisk's JSON body."""

    def __init__(self, status: int, message: str, *, key: str = "message") -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.body = {key: message}


class MediaPort(Protocol):
    def close(self) -> None: ...


class ChannelKind(enum.Enum):
    OUTBOUND = "outbound"  # created/originated towards an endpoint (company, phone)
    INBOUND = "inbound"  # the user's phone calling in through the dialplan
    LOCAL_PEER = "local_peer"  # the ;2 half of a Local channel
    EXTERNAL_MEDIA = "external_media"
    SNOOP = "snoop"


@dataclass(frozen=True)
class Endpoint:
    """A parsed ARI endpoint such as ``PJSIP/8005550100@trunk`` or ``Local/501@ctx``."""

    raw: str
    technology: str
    resource: str  # everything after TECH/ (also the Dial event's dialstring)
    number: str  # the number or device dialled
    host: str | None  # trunk (PJSIP/SIP) or context (Local)

    @property
    def is_local(self) -> bool:
        return self.technology == "Local"

    def channel_name(self, sequence: int, half: int = 1) -> str:
        if self.is_local:
            return f"Local/{self.number}@{self.host}-{sequence:08x};{half}"
        return f"{self.technology}/{self.host or self.number}-{sequence:08x}"

    @property
    def dialplan_location(self) -> tuple[str, str]:
        """(context, exten) a new channel for this endpoint starts at."""
        return (self.host or "default", self.number) if self.is_local else ("default", "s")


def parse_endpoint(raw: str) -> Endpoint:
    technology, sep, resource = raw.partition("/")
    if not sep or not technology or not resource:
        raise AriError(400, "Invalid endpoint specified")
    canonical = KNOWN_TECHNOLOGIES.get(technology.lower())
    if canonical is None:
        raise AriError(500, "Allocation failed", key="error")
    target = resource.rsplit("/", 1)[-1]  # SIP/trunk/number
    if target.startswith("sip:"):
        target = target[4:]
    number, at, host = target.partition("@")
    if canonical == "Local" and not at:
        host = "default"
    return Endpoint(raw=raw, technology=canonical, resource=resource, number=number, host=host or None)


@dataclass(eq=False)
class Channel:
    id: str
    name: str
    kind: ChannelKind
    state: str
    context: str
    exten: str
    base_app: tuple[str, str]  # dialplan application shown outside Stasis
    app: str | None = None
    app_args: list[str] = field(default_factory=list)
    creationtime: str = field(default_factory=ari_time)
    caller: tuple[str, str] = ("", "")
    connected: tuple[str, str] = ("", "")
    priority: int = 1
    variables: dict[str, str] = field(default_factory=dict)
    channelvars: dict[str, str] | None = None  # only in the reply that creates it (externalMedia)
    formats: tuple[str, ...] = ()
    dialstring: str = ""
    subscribed: bool = False  # the app receives this channel's events
    stays_subscribed: bool = True  # ... also after StasisEnd (ARI-created channels, not snoops)
    in_stasis: bool = False
    stasis_app_data: str | None = None  # set while the dialplan location shows Stasis()
    far_end: FarEnd | None = None
    media: MediaPort | None = None
    peer: Channel | None = None  # the other half of a Local channel
    originated: bool = False
    dialed: bool = False
    answered: bool = False
    hanging_up: bool = False
    indication: str | None = None  # "ringing" | "busy": a tone Asterisk generates towards the bridge
    bridge: Bridge | None = None
    bridge_role: str = "participant"
    snoop_target: Channel | None = None
    snoops: list[Channel] = field(default_factory=list)
    spy: str = "none"
    whisper: str = "none"
    dial_caller: Channel | None = None
    dtmf_free_at: float = 0.0
    playbacks: list[Playback] = field(default_factory=list)
    recording: LiveRecording | None = None
    timers: set[Any] = field(default_factory=set)

    def to_json(self, *, with_channelvars: bool = False) -> dict[str, Any]:
        app_name, app_data = ("Stasis", self.stasis_app_data) if self.stasis_app_data is not None else self.base_app
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": "",
            "caller": {"name": self.caller[0], "number": self.caller[1]},
            "connected": {"name": self.connected[0], "number": self.connected[1]},
            "accountcode": "",
            "dialplan": {
                "context": self.context,
                "exten": self.exten,
                "priority": self.priority,
                "app_name": app_name,
                "app_data": app_data,
            },
            "creationtime": self.creationtime,
            "language": "en",
        }
        if with_channelvars and self.channelvars:
            data["channelvars"] = dict(self.channelvars)
        return data


@dataclass(eq=False)
class Bridge:
    id: str
    name: str
    types: tuple[str, ...]
    creationtime: str = field(default_factory=ari_time)
    channels: list[Channel] = field(default_factory=list)
    apps: set[str] = field(default_factory=set)  # applications subscribed to it
    playbacks: list[Playback] = field(default_factory=list)
    recording: LiveRecording | None = None

    @property
    def holding(self) -> bool:
        return "holding" in self.types

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "technology": "holding_bridge" if self.holding else "simple_bridge",
            "bridge_type": "holding" if self.holding else "mixing",
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": self.name,
            "channels": [channel.id for channel in self.channels],
            "creationtime": self.creationtime,
            "video_mode": "talker",
        }


@dataclass(eq=False)
class Playback:
    id: str
    media_uris: list[str]
    target: Channel | Bridge
    language: str = "en"
    offset_samples: int = 0
    state: str = "queued"
    pcm: np.ndarray | None = None
    position: int = 0

    @property
    def target_uri(self) -> str:
        kind = "channel" if isinstance(self.target, Channel) else "bridge"
        return f"{kind}:{self.target.id}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "media_uri": self.media_uris[0],
            "target_uri": self.target_uri,
            "language": self.language,
            "state": self.state,
        }
        if len(self.media_uris) > 1:
            data["next_media_uri"] = self.media_uris[1]
        return data


class RecordingWriter(Protocol):
    frames: int

    def write(self, frame: np.ndarray | None) -> None: ...

    def close(self) -> None: ...


@dataclass(eq=False)
class LiveRecording:
    name: str
    format: str
    target: Channel | Bridge
    writer: RecordingWriter
    max_seconds: int | None = None  # maxDurationSeconds (None: no limit)
    started_second: int = 0  # the wall clock's whole second when it started (Asterisk's time(NULL))
    state: str = "recording"
    duration: int | None = None

    @property
    def target_uri(self) -> str:
        kind = "channel" if isinstance(self.target, Channel) else "bridge"
        return f"{kind}:{self.target.id}"

    def to_json(self, state: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "format": self.format,
            "state": state or self.state,
            "target_uri": self.target_uri,
        }
        if self.duration is not None:
            data["duration"] = self.duration
        return data
