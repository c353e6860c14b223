"""Thin typed client for the Asterisk REST Interface. The only package that knows ARI JSON."""

from app.ari.client import AriClient
from app.ari.errors import (
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriError,
    AriNotFound,
    AriPreconditionFailed,
    AriServerError,
    AriUnauthorized,
    AriUnprocessable,
    ignore_missing,
)
from app.ari.events import AriEvent, UnknownEvent, parse_event
from app.ari.models import Bridge, Channel, LiveRecording, Playback, StoredRecording
from app.ari.router import EventRouter
from app.ari.stream import AriEventStream

__all__ = [
    "AriBadRequest",
    "AriClient",
    "AriConflict",
    "AriConnectionError",
    "AriError",
    "AriEvent",
    "AriEventStream",
    "AriNotFound",
    "AriPreconditionFailed",
    "AriServerError",
    "AriUnauthorized",
    "AriUnprocessable",
    "Bridge",
    "Channel",
    "EventRouter",
    "LiveRecording",
    "Playback",
    "StoredRecording",
    "UnknownEvent",
    "ignore_missing",
    "parse_event",
]
