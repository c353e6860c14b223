"""The legs of a call in the PBX: its channels and bridges, and what ARI said about each.

Media layout (ARCHITECTURE.md, verified on Asterisk 22)::

    company ──┐ hold bridge (mixing,proxy_media) ┌── externalMedia "hold"   <-> RtpEndpoint 1
              └──────────────────────────────────┘
    at the handoff the company moves to the main bridge with the user, and a snoop (spy=in)
    on the company channel keeps feeding us its audio:
    company ──┐ main bridge ┌── user's phone        snoop(company) ── listen bridge ── externalMedia "listen" <-> RtpEndpoint 2

Every id is chosen here before the request (events can beat the REST reply); a channel joins a
bridge only after its own StasisStart; everything created is deleted at the end, whatever
already went away.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from app.ari import events as ari_events
from app.ari.client import AriClient
from app.ari.errors import AriError
from app.calls.context import CallContext
from app.calls.models import ARI_ID_PREFIX
from app.media.endpoint import RtpEndpoint

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 10.0  # for a channel's own StasisStart


@dataclass(frozen=True)
class CallIds:
    """ARI ids of everything a call creates, derived from the call id."""

    call_id: str

    def _id(self, suffix: str) -> str:
        return f"{ARI_ID_PREFIX}{self.call_id}-{suffix}"

    @property
    def company(self) -> str:
        return self._id("co")

    @property
    def hold_bridge(self) -> str:
        return self._id("hold")

    @property
    def hold_media(self) -> str:
        return self._id("em")

    @property
    def user(self) -> str:
        return self._id("user")

    @property
    def main_bridge(self) -> str:
        return self._id("main")

    @property
    def snoop(self) -> str:
        return self._id("snoop")

    @property
    def listen_media(self) -> str:
        return self._id("em2")

    @property
    def listen_bridge(self) -> str:
        return self._id("listen")

    @property
    def bridge_recording(self) -> str:
        """The name of Asterisk's recording of the main bridge (in its spool until fetched)."""
        return self._id("bridged")

    @staticmethod
    def call_of(ari_id: str) -> str | None:
        """The call id inside an id made by ``_id``; None for ids this app did not make."""
        if not ari_id.startswith(ARI_ID_PREFIX):
            return None
        call_id, dash, _suffix = ari_id[len(ARI_ID_PREFIX) :].partition("-")
        return call_id if dash and call_id else None

    def all_recordings(self) -> list[str]:
        return [self.bridge_recording]

    def all_channels(self) -> list[str]:
        return [self.company, self.hold_media, self.user, self.snoop, self.listen_media]

    def all_bridges(self) -> list[str]:
        return [self.hold_bridge, self.main_bridge, self.listen_bridge]


@dataclass
class ChannelTrack:
    """What the events told us about one channel of this call."""

    started: bool = False  # its own StasisStart arrived: it may be added to bridges
    state: str = "Down"
    gone: bool = False
    lost: bool = False  # missing after an ARI reconnect: the PBX never said it ended (restart?)
    cause: int | None = None
    cause_txt: str = ""
    dialstatus: str = ""


@dataclass(frozen=True)
class MediaPorts:
    """Where our RTP endpoints listen (externalMedia sends the call's audio there)."""

    host: str
    port_min: int
    port_max: int


class Legs:
    def __init__(self, ctx: CallContext, ari: AriClient, media: MediaPorts) -> None:
        self.ctx = ctx
        self.ari = ari
        self.media = media
        self.ids = CallIds(ctx.call_id)
        self.tracks: dict[str, ChannelTrack] = {}
        self.created_channels: list[str] = []
        self.created_bridges: list[str] = []
        self.recording_states: dict[str, str] = {}  # recording name -> its state (recording, done, failed, ...)

    def track(self, channel_id: str) -> ChannelTrack:
        return self.tracks.setdefault(channel_id, ChannelTrack())

    @property
    def company(self) -> ChannelTrack:
        return self.track(self.ids.company)

    @property
    def user(self) -> ChannelTrack:
        return self.track(self.ids.user)

    # ------------------------------------------------------------------ events from ARI

    async def follow(self, queue: asyncio.Queue) -> None:
        """Apply the call's ARI events in order, waking the call's waits after each."""
        while True:
            event = await queue.get()
            try:
                self.apply(event)
            except Exception:
                log.exception("call %s: could not apply %r", self.ctx.call_id, event)
            self.ctx.notify()

    def apply(self, event: ari_events.AriEvent) -> None:
        if isinstance(event, ari_events.StasisStart):
            track = self.track(event.channel.id)
            track.started = True
            track.state = event.channel.state
        elif isinstance(event, ari_events.ChannelStateChange):
            self.track(event.channel.id).state = event.channel.state
        elif isinstance(event, ari_events.Dial):
            if event.peer is not None and event.peer.id == self.ids.company and event.dialstatus:
                self.company.dialstatus = event.dialstatus
        elif isinstance(event, ari_events.ChannelDestroyed):
            track = self.track(event.channel.id)
            track.gone = True
            track.cause = event.cause
            track.cause_txt = event.cause_txt or ""
        elif isinstance(event, ari_events.StasisEnd):
            # Snoops and inbound channels never get a ChannelDestroyed: StasisEnd is their end.
            self.track(event.channel.id).gone = True
        elif isinstance(event, (ari_events.RecordingStarted, ari_events.RecordingFinished, ari_events.RecordingFailed)):
            state = "failed" if isinstance(event, ari_events.RecordingFailed) else event.recording.state
            self.recording_states[event.recording.name] = state

    def reconcile(self, live_channels: set[str]) -> list[str]:
        """After an ARI reconnect: anything we track that Asterisk no longer has is gone."""
        lost = []
        for channel_id, track in self.tracks.items():
            if track.started and not track.gone and channel_id not in live_channels:
                track.gone = track.lost = True
                track.cause_txt = "disappeared while the ARI websocket was down"
                lost.append(channel_id)
        return lost

    # ------------------------------------------------------------------ creating

    async def wait_started(self, channel_id: str) -> None:
        if not await self.ctx.wait_for(lambda: self.track(channel_id).started, STARTUP_TIMEOUT):
            raise RuntimeError(f"no StasisStart for {channel_id} within {STARTUP_TIMEOUT} s")

    async def create_channel(self, channel_id: str, endpoint: str, app_args: str) -> None:
        self.created_channels.append(channel_id)
        # formats=ulaw: otherwise Local channels negotiate slin192 (quieter audio, RTP time running ahead).
        await self.ari.create_channel(endpoint, channel_id, app_args=app_args, formats="ulaw")
        await self.wait_started(channel_id)

    async def create_bridge(self, bridge_id: str, bridge_type: str) -> None:
        self.created_bridges.append(bridge_id)
        await self.ari.create_bridge(bridge_id, type=bridge_type)

    async def open_media(self, channel_id: str, bridge_id: str) -> RtpEndpoint:
        """An RTP endpoint and its externalMedia channel in ``bridge_id``."""
        endpoint = await RtpEndpoint.open(self.media.host, self.media.port_min, self.media.port_max)
        try:
            host, port = endpoint.local_address
            self.created_channels.append(channel_id)
            channel = await self.ari.external_media(channel_id, f"{host}:{port}", format="ulaw")
            remote = channel.rtp_address()
            if remote is not None:
                endpoint.set_remote(*remote)  # send back where Asterisk said, from this same socket
            await self.wait_started(channel_id)
            await self.ari.add_channel(bridge_id, channel_id)
        except BaseException:
            await endpoint.close()
            raise
        return endpoint

    async def snoop_company(self) -> None:
        """A snoop (spy=in) on the company channel, in its own listen bridge."""
        ids = self.ids
        self.created_channels.append(ids.snoop)
        await self.ari.snoop(ids.company, ids.snoop, spy="in", app_args=f"snoop,{self.ctx.call_id}")
        await self.wait_started(ids.snoop)
        await self.create_bridge(ids.listen_bridge, "mixing")
        await self.ari.add_channel(ids.listen_bridge, ids.snoop)

    # ------------------------------------------------------------------ the end

    async def clean_up(self) -> None:
        """Delete every channel and bridge this call created; anything already gone is fine."""
        for channel_id in reversed(self.created_channels):
            if not self.tracks.get(channel_id, ChannelTrack()).gone:
                await self._best_effort(self.ari.hangup(channel_id, missing_ok=True), f"hangup {channel_id}")
        for bridge_id in reversed(self.created_bridges):
            await self._best_effort(self.ari.destroy_bridge(bridge_id, missing_ok=True), f"destroy bridge {bridge_id}")

    async def _best_effort(self, request, what: str) -> None:
        try:
            await request
        except AriError as exc:
            log.warning("call %s: %s failed: %s", self.ctx.call_id, what, exc)
