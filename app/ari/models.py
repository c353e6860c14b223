"""Typed ARI resources (Asterisk 22 schema: ari-api-docs/*.json).

Only the fields the schema marks as identifying are required; the rest have defaults, and
unknown fields are kept (``extra="allow"``) so that a newer Asterisk does not break parsing.
Timestamps stay strings in Asterisk's format (``2026-11-21T11:33:22.240+0000``): the app
timestamps by arrival, never by these.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RTP_ADDRESS_VAR = "UNICASTRTP_LOCAL_ADDRESS"
RTP_PORT_VAR = "UNICASTRTP_LOCAL_PORT"


class AriModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class CallerId(AriModel):
    name: str = ""
    number: str = ""


class DialplanCep(AriModel):
    """Where a channel is in the dialplan (context, extension, priority)."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""


class Channel(AriModel):
    id: str
    name: str
    state: str  # Down, Rsrved, OffHook, Dialing, Ring, Ringing, Up, Busy, Dialing Offhook, Pre-ring, Unknown
    protocol_id: str = ""
    caller: CallerId = Field(default_factory=CallerId)
    connected: CallerId = Field(default_factory=CallerId)
    accountcode: str = ""
    dialplan: DialplanCep | None = None
    creationtime: str = ""
    language: str = ""
    channelvars: dict[str, Any] | None = None
    caller_rdnis: str | None = None
    tenantid: str | None = None

    def rtp_address(self) -> tuple[str, int] | None:
        """Where an externalMedia channel receives RTP (from the POST reply's channelvars)."""
        variables = self.channelvars or {}
        address, port = variables.get(RTP_ADDRESS_VAR), variables.get(RTP_PORT_VAR)
        if not address or port is None:
            return None
        try:
            return str(address), int(port)
        except (TypeError, ValueError):
            return None


class Bridge(AriModel):
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: list[str] = Field(default_factory=list)
    creationtime: str = ""
    video_mode: str | None = None
    video_source_id: str | None = None
    bridgevars: dict[str, Any] | None = None


def target_id(target_uri: str) -> str | None:
    """The channel or bridge id in a playback/recording target such as ``channel:ID``/``bridge:ID``."""
    kind, sep, resource = target_uri.partition(":")
    if sep and kind in ("channel", "bridge") and resource:
        return resource
    return None


class Playback(AriModel):
    id: str
    target_uri: str
    state: str  # queued, playing, continuing, done, failed
    media_uri: str = ""
    next_media_uri: str | None = None
    language: str | None = None

    def target_id(self) -> str | None:
        return target_id(self.target_uri)


class LiveRecording(AriModel):
    name: str
    target_uri: str
    state: str  # queued, recording, paused, done, failed, canceled
    format: str = ""
    duration: int | None = None  # whole seconds, set when finished
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str | None = None

    def target_id(self) -> str | None:
        return target_id(self.target_uri)


class StoredRecording(AriModel):
    name: str
    format: str = ""


class DeviceState(AriModel):
    name: str
    state: str
