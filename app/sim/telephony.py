"""Asterisk 22's channel and bridge semantics, as a model with no I/O.

``Pbx`` owns the channels, bridges, playbacks and live recordings, applies every operation the
ARI surface offers with Asterisk's checks (status codes and messages from capture f) and emits
the events Asterisk would, in the order the captures show (a, b, c, e, f, g). Time-driven steps
(StasisStart a few ms after the reply, ringing, answer, busy and no-answer endings, DTMF timing)
go through an injected ``Scheduler``; audio is the media engine's business.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from app.sim.audio import FRAME_SAMPLES, SAMPLE_RATE
from app.sim.farend import DialPlan, EndedBy, FarEnd
from app.sim.model import (
    DEFAULT_ASTERISK_ID,
    AriError,
    Bridge,
    Channel,
    ChannelKind,
    Endpoint,
    LiveRecording,
    MediaPort,
    Playback,
    ari_time,
    cause_text,
)
from app.sim.recordings import RecordingStore

NORMAL_CLEARING = 16
BUSY = 17
NO_ANSWER = 19
SOFT_HANGUP = {"cause": 32, "soft": True}  # ChannelHangupRequest for a hangup asked through ARI
BRIDGE_TYPES = {"mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single", "sdp_label"}
DTMF_DIGITS = set("0123456789ABCD*#")
# Asterisk drops a channel that no Stasis application takes, a moment after creating it (capture f).
UNCLAIMED_CHANNEL_SECONDS = 0.3
RINGING_DELAY = 0.003  # Dial "" -> ChannelStateChange Ringing in the captures
SIGNAL_DELAY = 0.0005

EventSink = Callable[[str, dict[str, Any]], None]


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...


class UnknownMediaScheme(Exception):
    """A playback URI whose scheme Asterisk does not know (it starts, and never finishes)."""


MediaResolver = Callable[[str], "np.ndarray | None"]  # None: no such file


@dataclass(frozen=True)
class PbxTiming:
    stasis_start_delay: float = 0.004
    busy_hangup_seconds: float = 5.0


class Pbx:
    """The PBX's state and Asterisk's rules for changing it."""

    def __init__(
        self,
        *,
        emit: EventSink,
        scheduler: Scheduler,
        resolve_media: MediaResolver,
        recordings: RecordingStore,
        is_app_registered: Callable[[str], bool],
        timing: PbxTiming = PbxTiming(),
        asterisk_id: str = DEFAULT_ASTERISK_ID,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.playbacks: dict[str, Playback] = {}
        self.live_recordings: dict[str, LiveRecording] = {}
        self.recordings = recordings
        self.asterisk_id = asterisk_id
        self._emit_raw = emit
        self._scheduler = scheduler
        self._resolve_media = resolve_media
        self._is_app_registered = is_app_registered
        self._timing = timing
        self._wall_clock = wall_clock
        self._sequence = itertools.count(0x1A)
        self._unique = itertools.count(1)

    # ------------------------------------------------------------------ lookups

    def channel(self, channel_id: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None or channel.hanging_up:
            raise AriError(404, "Channel not found")
        return channel

    def bridge(self, bridge_id: str) -> Bridge:
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            raise AriError(404, "Bridge not found")
        return bridge

    def playback(self, playback_id: str) -> Playback:
        playback = self.playbacks.get(playback_id)
        if playback is None:
            raise AriError(404, "Playback not found")
        return playback

    def live_recording(self, name: str) -> LiveRecording:
        recording = self.live_recordings.get(name)
        if recording is None:
            raise AriError(404, "Recording not found")
        return recording

    def application(self, app: str) -> dict[str, Any]:
        return {
            "name": app,
            "channel_ids": [c.id for c in self.channels.values() if c.app == app and c.subscribed],
            "bridge_ids": [b.id for b in self.bridges.values() if app in b.apps],
            "endpoint_ids": [],
            "device_names": [],
            "events_allowed": [],
            "events_disallowed": [],
        }

    # ------------------------------------------------------------------ creating channels

    def create(
        self,
        endpoint: Endpoint,
        far_end: FarEnd | None,
        *,
        app: str | None,
        app_args: list[str],
        channel_id: str | None,
        other_id: str | None,
        variables: dict[str, str],
        formats: tuple[str, ...],
    ) -> Channel:
        """POST /channels/create: a Down channel that enters Stasis a few ms after the reply."""
        channel = self._new_outbound(
            endpoint, far_end, app, app_args, channel_id, other_id, variables, formats, originated=False
        )
        if app and self._is_app_registered(app):
            channel.subscribed = True
            self._later(
                channel, self._timing.stasis_start_delay, lambda: self._start_stasis(channel, dialplan_event=True)
            )
        else:
            self._later(channel, UNCLAIMED_CHANNEL_SECONDS, lambda: self._vanish(channel))
        return channel

    def originate(
        self,
        endpoint: Endpoint,
        far_end: FarEnd | None,
        *,
        app: str,
        app_args: list[str],
        channel_id: str | None,
        other_id: str | None,
        variables: dict[str, str],
        formats: tuple[str, ...],
        caller_id: tuple[str, str],
        timeout: float,
    ) -> Channel:
        """POST /channels: dial at once; the channel enters Stasis only when answered."""
        channel = self._new_outbound(
            endpoint, far_end, app, app_args, channel_id, other_id, variables, formats, originated=True
        )
        channel.caller = channel.connected = caller_id
        channel.dialed = True
        if not self._is_app_registered(app):
            self._later(channel, UNCLAIMED_CHANNEL_SECONDS, lambda: self._vanish(channel))
            return channel
        channel.subscribed = True
        peer = channel.peer
        if peer is not None:
            peer.caller = peer.connected = caller_id
            peer.state = "Ring"
            peer.subscribed = True  # originate subscribes the app to the ;2 half too (capture b)

        def begin() -> None:
            if peer is not None:
                for name, value in variables.items():
                    self._varset(peer, name, value)
            self._begin_dial(channel, timeout, originated=True)

        self._later(channel, SIGNAL_DELAY, begin)
        return channel

    def inbound(
        self,
        endpoint: Endpoint,
        far_end: FarEnd,
        *,
        app: str,
        args: list[str],
        exten: str,
        caller: tuple[str, str],
        context: str = "from-user",
    ) -> Channel:
        """The user's phone dials in and the dialplan runs Stasis(app,args) (capture d)."""
        channel = Channel(
            id=self._claim_id(None),
            name=endpoint.channel_name(next(self._sequence)),
            kind=ChannelKind.INBOUND,
            state="Ring",
            context=context,
            exten=exten,
            priority=2,
            base_app=("", ""),
            app=app,
            app_args=args,
            caller=caller,
            dialstring=endpoint.resource,
            far_end=far_end,
            subscribed=True,
            stays_subscribed=False,  # StasisEnd is the last event the app gets for it
        )
        self._add(channel)
        self._start_stasis(channel, dialplan_event=False, stasis_status=False)
        return channel

    def external_media(
        self,
        *,
        channel_id: str | None,
        app: str,
        external_host: str,
        audio_format: str,
        variables: dict[str, str],
        media: MediaPort,
        local_address: tuple[str, int],
    ) -> Channel:
        channel = Channel(
            id=self._claim_id(channel_id),
            name=f"UnicastRTP/{external_host}-0x{random.getrandbits(44) | 0x7F0000000000:012x}",
            kind=ChannelKind.EXTERNAL_MEDIA,
            state="Down",
            context="default",
            exten="s",
            base_app=("AppDial2", "(Outgoing Line)"),
            app=app,
            variables=dict(variables),
            channelvars={"UNICASTRTP_LOCAL_PORT": str(local_address[1]), "UNICASTRTP_LOCAL_ADDRESS": local_address[0]},
            formats=(audio_format,),
            dialstring=f"{external_host}/c({audio_format})",
            media=media,
        )
        self._add(channel)
        if not self._is_app_registered(app):
            self._later(channel, UNCLAIMED_CHANNEL_SECONDS, lambda: self._vanish(channel))
            return channel
        channel.subscribed = True

        def start() -> None:
            self._dial_event(channel, "")
            self._set_state(channel, "Up")
            self._dial_event(channel, "ANSWER")
            self._start_stasis(channel, dialplan_event=False)

        self._later(channel, self._timing.stasis_start_delay, start)
        return channel

    def snoop(
        self,
        target: Channel,
        *,
        spy: str,
        whisper: str,
        app: str,
        app_args: list[str],
        snoop_id: str | None,
    ) -> Channel:
        channel = Channel(
            id=self._claim_id(snoop_id),
            name=f"Snoop/{target.id}-{next(self._sequence):08x}",
            kind=ChannelKind.SNOOP,
            state="Up",
            context="default",
            exten="s",
            base_app=("", ""),
            app=app,
            app_args=app_args,
            stays_subscribed=False,  # a snoop ends with StasisEnd and no ChannelDestroyed (capture b)
            snoop_target=target,
            spy=spy,
            whisper=whisper,
        )
        self._add(channel)
        target.snoops.append(channel)
        if not self._is_app_registered(app):
            self._later(channel, UNCLAIMED_CHANNEL_SECONDS, lambda: self._vanish(channel))
            return channel
        channel.subscribed = True
        self._later(
            channel,
            self._timing.stasis_start_delay,
            lambda: self._start_stasis(channel, dialplan_event=False, stasis_status=False),
        )
        return channel

    # ------------------------------------------------------------------ channel operations

    def dial(self, channel: Channel, caller: Channel | None, timeout: float) -> None:
        self._require_stasis(channel)
        if channel.state != "Down" or channel.dialed or channel.far_end is None:
            raise AriError(409, "Channel is not in the 'Down' state")
        channel.dialed = True
        channel.dial_caller = caller
        self._later(channel, SIGNAL_DELAY, lambda: self._begin_dial(channel, timeout, originated=False))

    def answer(self, channel: Channel) -> None:
        self._require_stasis(channel)
        if channel.state == "Up":
            return
        if channel.kind is not ChannelKind.INBOUND:
            # Outgoing channels are answered by their far end, never by the app.
            raise AriError(412, "Channel in invalid state")
        channel.answered = True
        self._set_state(channel, "Up")
        if channel.far_end is not None:
            channel.far_end.answered()

    def hangup(self, channel: Channel, cause: int = NORMAL_CLEARING) -> None:
        """DELETE /channels/{id}."""
        if channel.kind is ChannelKind.LOCAL_PEER and channel.peer is not None:
            # Hanging up the ;2 half ends the pair: to the ;1 side it is the far end leaving.
            self._end(channel.peer, cause, {"cause": cause}, ended_by="far_end")
            return
        self._end(channel, cause, SOFT_HANGUP, ended_by="app")

    def far_end_hangup(self, channel: Channel, cause: int) -> None:
        """The company or the phone hung up (the media engine reports it)."""
        if channel.kind in (ChannelKind.OUTBOUND, ChannelKind.INBOUND) and not channel.hanging_up:
            self._end(channel, cause, {"cause": cause}, ended_by="far_end")

    def send_dtmf(self, channel: Channel, digits: str, *, before: int, between: int, duration: int, after: int) -> None:
        self._require_stasis(channel)
        if not digits:
            raise AriError(400, "DTMF is required")
        at = max(self._scheduler.now(), channel.dtmf_free_at) + before / 1000
        for char in digits.upper():
            if char not in DTMF_DIGITS:
                continue  # Asterisk skips what is not a digit ("XYZ!" -> 204 and nothing)
            at += duration / 1000
            self._later(channel, at - self._scheduler.now(), lambda d=char: self._deliver_dtmf(channel, d, duration))
            at += between / 1000
        channel.dtmf_free_at = at + after / 1000

    def get_variable(self, channel: Channel, name: str) -> str:
        self._require_stasis(channel)
        functions = {
            "CHANNEL(name)": channel.name,
            "CHANNEL(state)": channel.state,
            "CHANNEL(audionativeformat)": f"({channel.formats[0] if channel.formats else 'slin192'})",
            "CALLERID(name)": channel.caller[0],
            "CALLERID(num)": channel.caller[1],
            "UNIQUEID": channel.id,
        }
        value = functions.get(name, channel.variables.get(name))
        if value is None:
            raise AriError(404, "Provided variable was not found")
        return value

    def set_variable(self, channel: Channel, name: str, value: str) -> None:
        self._require_stasis(channel)
        self._varset(channel, name, value)

    # ------------------------------------------------------------------ bridges

    def create_bridge(self, bridge_type: str | None, bridge_id: str | None, name: str | None) -> Bridge:
        bridge_id = bridge_id or str(uuid.uuid4())
        if bridge_id in self.bridges:
            raise AriError(409, f"Bridge with id '{bridge_id}' already exists")
        types = tuple(t.strip() for t in (bridge_type or "mixing").split(",") if t.strip())
        if not types or any(t not in BRIDGE_TYPES for t in types):
            raise AriError(500, f"Unable to create bridge. Possible duplicate bridge id '{bridge_id}'")
        bridge = Bridge(id=bridge_id, name=name or "", types=types)
        self.bridges[bridge_id] = bridge
        return bridge

    def add_channels(self, bridge: Bridge, channel_ids: list[str], role: str | None) -> None:
        channels = []
        for channel_id in channel_ids:
            channel = self.channels.get(channel_id)
            if channel is None or channel.hanging_up:
                raise AriError(400, "Channel not found")
            channels.append(channel)
        for channel in channels:
            if not channel.in_stasis:
                raise AriError(422, "Channel not in Stasis application")
        for channel in channels:
            channel.bridge_role = role or "participant"
            if channel.bridge is bridge:
                continue
            if channel.bridge is not None:
                self._depart_bridge(channel)
            self._enter_bridge(channel, bridge)
        self._update_bridge_peers(bridge)

    def remove_channels(self, bridge: Bridge, channel_ids: list[str]) -> None:
        channels = []
        for channel_id in channel_ids:
            channel = self.channels.get(channel_id)
            if channel is None or channel.hanging_up:
                raise AriError(400, "Channel not found")
            if channel.bridge is not bridge:
                raise AriError(422, "Channel not in this bridge")
            channels.append(channel)
        for channel in channels:
            self._depart_bridge(channel)

    def destroy_bridge(self, bridge: Bridge) -> None:
        for channel in list(bridge.channels):
            self._depart_bridge(channel)
        self._stop_playbacks(bridge)
        if bridge.recording is not None:
            self.finish_recording(bridge.recording)
        del self.bridges[bridge.id]
        self._bridge_event(bridge, "BridgeDestroyed")

    # ------------------------------------------------------------------ playbacks

    def play(
        self, target: Channel | Bridge, media_uris: list[str], *, playback_id: str | None, language: str, offset_ms: int
    ) -> Playback:
        if isinstance(target, Channel):
            self._require_stasis(target)
        playback_id = playback_id or str(uuid.uuid4())
        if playback_id in self.playbacks:
            raise AriError(409, f"Playback with id '{playback_id}' already exists")
        playback = Playback(
            id=playback_id,
            media_uris=media_uris,
            target=target,
            language=language,
            offset_samples=max(0, offset_ms) * SAMPLE_RATE // 1000,
        )
        self.playbacks[playback_id] = playback
        target.playbacks.append(playback)
        self._scheduler.call_later(SIGNAL_DELAY, lambda: self._start_next_playback(target))
        return playback

    def stop_playback(self, playback: Playback) -> None:
        self._finish_playback(playback, "done")

    def playback_finished(self, playback: Playback) -> None:
        """The media engine played the last frame."""
        self._finish_playback(playback, "done")

    # ------------------------------------------------------------------ recordings

    def record(
        self,
        target: Channel | Bridge,
        *,
        name: str,
        audio_format: str,
        max_duration: int,
        if_exists: str,
        beep: bool,
    ) -> LiveRecording:
        if isinstance(target, Channel):
            self._require_stasis(target)
            if target.bridge is not None:
                raise AriError(409, "Channel is currently bridged")
        if audio_format != "wav":
            raise AriError(422, "specified format is unknown on this system")
        if name in self.live_recordings:
            raise AriError(409, f"Recording '{name}' is already in progress")
        if if_exists == "fail" and self.recordings.exists(name):
            raise AriError(409, f"Recording '{name}' already exists and can not be overwritten")
        if target.recording is not None:
            raise AriError(409, "The target is already being recorded")
        recording = LiveRecording(
            name=name,
            format=audio_format,
            target=target,
            writer=self.recordings.open(name, append=if_exists == "append"),
            max_seconds=max_duration if max_duration > 0 else None,
            started_second=int(self._wall_clock()),
        )
        self.live_recordings[name] = recording
        target.recording = recording
        # RecordingStarted reaches the websocket before the 201 (capture g).
        self._recording_event(recording, "RecordingStarted")
        if beep:
            self.play(target, ["sound:beep"], playback_id=None, language="en", offset_ms=0)
        return recording

    def stop_recording(self, recording: LiveRecording) -> None:
        """POST /recordings/live/{name}/stop: RecordingFinished follows the 204."""
        self._detach_recording(recording)
        self._scheduler.call_later(SIGNAL_DELAY, lambda: self.finish_recording(recording))

    def cancel_recording(self, recording: LiveRecording) -> None:
        self._detach_recording(recording)
        recording.writer.close()
        recording.state = "canceled"
        if self.recordings.exists(recording.name):
            self.recordings.delete(recording.name)
        self._recording_event(recording, "RecordingFinished")

    def check_recording_limits(self) -> None:
        """``maxDurationSeconds`` as Asterisk's Record applies it: in whole seconds of the wall
        clock (``time(NULL)``), once more than that many have passed (``maxtime < end - start``).
        A 2 s limit ends the recording 2.0-3.0 s after its start (capture g: after 2.87 s)."""
        now = int(self._wall_clock())
        for recording in list(self.live_recordings.values()):
            if recording.max_seconds is not None and now - recording.started_second > recording.max_seconds:
                self.finish_recording(recording)

    def finish_recording(self, recording: LiveRecording) -> None:
        """Stop, maximum duration reached, or the target went away."""
        if recording.state != "recording":
            return
        self._detach_recording(recording)
        recording.writer.close()
        recording.state = "done"
        recording.duration = recording.writer.frames * FRAME_SAMPLES // SAMPLE_RATE  # whole seconds
        self._recording_event(recording, "RecordingFinished")

    # ------------------------------------------------------------------ internals: lifecycle

    def _new_outbound(
        self,
        endpoint: Endpoint,
        far_end: FarEnd | None,
        app: str | None,
        app_args: list[str],
        channel_id: str | None,
        other_id: str | None,
        variables: dict[str, str],
        formats: tuple[str, ...],
        *,
        originated: bool,
    ) -> Channel:
        channel_id = self._claim_id(channel_id)
        other_id = self._claim_id(other_id, default=f"{channel_id};2") if endpoint.is_local else None
        sequence = next(self._sequence)
        context, exten = endpoint.dialplan_location
        base_app = ("AppDial2", "(Outgoing Line)") if originated else ("", "")
        channel = Channel(
            id=channel_id,
            name=endpoint.channel_name(sequence, 1),
            kind=ChannelKind.OUTBOUND,
            state="Down",
            context=context,
            exten=exten,
            base_app=base_app,
            app=app,
            app_args=app_args,
            variables=dict(variables),
            formats=formats,
            dialstring=endpoint.resource,
            far_end=far_end,
            originated=originated,
        )
        if other_id is not None:
            channel.peer = Channel(
                id=other_id,
                name=endpoint.channel_name(sequence, 2),
                kind=ChannelKind.LOCAL_PEER,
                state="Down",
                context=context,
                exten=exten,
                base_app=("", ""),
                app=app,
                creationtime=channel.creationtime,
                formats=formats,
                peer=channel,
            )
            self._add(channel.peer)
        self._add(channel)
        return channel

    def _claim_id(self, wanted: str | None, default: str | None = None) -> str:
        channel_id = wanted or default or f"{int(time.time())}.{next(self._unique)}"
        if channel_id in self.channels:
            raise AriError(409, "Channel with given unique ID already exists")
        return channel_id

    def _add(self, channel: Channel) -> None:
        self.channels[channel.id] = channel

    def _start_stasis(self, channel: Channel, *, dialplan_event: bool, stasis_status: bool = True) -> None:
        channel.stasis_app_data = ",".join([channel.app or "", *channel.app_args])
        if dialplan_event:
            self._channel_event(
                channel, "ChannelDialplan", dialplan_app="Stasis", dialplan_app_data=channel.stasis_app_data
            )
        if stasis_status:
            self._varset(channel, "STASISSTATUS", "")
        channel.in_stasis = True
        self._channel_event(channel, "StasisStart", args=list(channel.app_args))

    def _vanish(self, channel: Channel) -> None:
        """A channel no application took: gone without a word."""
        channel.hanging_up = True
        self._cancel_timers(channel)
        if channel.far_end is not None:
            channel.far_end.ended(NORMAL_CLEARING, "app")
        self._remove(channel)

    def _end(self, channel: Channel, cause: int, hangup_request: dict[str, Any] | None, *, ended_by: EndedBy) -> None:
        """Hang a channel up with the event order of captures a, b, c, e and f."""
        if channel.hanging_up:
            return
        channel.hanging_up = True
        self._cancel_timers(channel)
        peer = channel.peer if channel.peer is not None and channel.peer.subscribed else None
        if ended_by == "far_end" and peer is not None:
            self._channel_event(peer, "ChannelHangupRequest", cause=NORMAL_CLEARING, soft=True)
        if hangup_request is not None:
            self._channel_event(channel, "ChannelHangupRequest", **hangup_request)
        if channel.originated and not channel.answered and ended_by == "app":
            self._dial_event(channel, "NOANSWER")
        self._stop_playbacks(channel)
        if channel.recording is not None:
            self.finish_recording(channel.recording)
        if channel.in_stasis:
            self._leave_stasis(channel)
        for snoop in list(channel.snoops):
            self._end_snoop(snoop)
        if ended_by == "app" and peer is not None:
            self._channel_event(peer, "ChannelHangupRequest", cause=NORMAL_CLEARING)
        if channel.far_end is not None:
            channel.far_end.ended(cause, ended_by)
        channel.stasis_app_data = None
        channel.indication = None
        if channel.subscribed:
            self._channel_event(channel, "ChannelDestroyed", cause=cause, cause_txt=cause_text(cause))
        if peer is not None:
            if ended_by == "app":
                self._channel_event(peer, "ChannelHangupRequest", cause=NORMAL_CLEARING, soft=True)
            self._channel_event(peer, "ChannelDestroyed", cause=NORMAL_CLEARING, cause_txt=cause_text(NORMAL_CLEARING))
        self._remove(channel)

    def shut_down(self) -> None:
        """Asterisk stopping: every channel leaves Stasis (a StasisEnd, no hang-up cause reaches
        the app before ARI closes) and the far ends hear the line drop."""
        for channel in list(self.channels.values()):
            channel.hanging_up = True
            self._cancel_timers(channel)
            if channel.in_stasis:
                self._leave_stasis(channel)
            if channel.far_end is not None:
                channel.far_end.ended(NORMAL_CLEARING, "pbx")

    def _leave_stasis(self, channel: Channel) -> None:
        if channel.bridge is not None:
            self._depart_bridge(channel)
        channel.in_stasis = False
        self._channel_event(channel, "StasisEnd")
        if not channel.stays_subscribed:
            channel.subscribed = False  # so STASISSTATUS and ChannelDestroyed never reach the app
        self._varset(channel, "STASISSTATUS", "SUCCESS")

    def _end_snoop(self, snoop: Channel) -> None:
        """The snooped channel went away: the snoop leaves Stasis, no hangup or destroy event."""
        snoop.hanging_up = True
        self._cancel_timers(snoop)
        self._stop_playbacks(snoop)
        if snoop.in_stasis:
            self._leave_stasis(snoop)
        self._remove(snoop)

    def _remove(self, channel: Channel) -> None:
        self.channels.pop(channel.id, None)
        target = channel.snoop_target
        if target is not None and channel in target.snoops:
            target.snoops.remove(channel)
        if channel.media is not None:
            channel.media.close()
        peer = channel.peer
        if peer is not None and peer.kind is ChannelKind.LOCAL_PEER:
            self.channels.pop(peer.id, None)

    def _later(self, channel: Channel, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` unless the channel is hung up first."""
        handle: TimerHandle | None = None

        def fire() -> None:
            channel.timers.discard(handle)
            if not channel.hanging_up:
                action()

        handle = self._scheduler.call_later(max(0.0, delay), fire)
        channel.timers.add(handle)

    def _cancel_timers(self, channel: Channel) -> None:
        for handle in channel.timers:
            handle.cancel()
        channel.timers.clear()

    def _require_stasis(self, channel: Channel) -> None:
        if not channel.in_stasis:
            raise AriError(409, "Channel not in Stasis application")

    # ------------------------------------------------------------------ internals: dialling

    def _begin_dial(self, channel: Channel, timeout: float, *, originated: bool) -> None:
        far_end = channel.far_end
        plan = far_end.dial_plan() if far_end is not None else DialPlan("no_answer")
        self._dial_event(channel, "")
        if plan.outcome == "busy":
            self._later(channel, SIGNAL_DELAY, lambda: self._busy(channel, originated))
            return
        answer_at = plan.ring_seconds if plan.outcome == "answer" else None
        if timeout > 0 and (answer_at is None or answer_at >= timeout):
            self._later(channel, timeout, lambda: self._no_answer(channel, originated))
            answer_at = None
        if answer_at is None or answer_at > 0:
            self._later(channel, RINGING_DELAY, lambda: self._ringing(channel, originated))
            progress = plan.progress_after
            if progress is not None and (answer_at is None or progress < answer_at):
                self._later(channel, RINGING_DELAY + progress, lambda: self._progress(channel, originated))
        if answer_at is not None:
            delay = max(answer_at, 2 * RINGING_DELAY) if answer_at > 0 else SIGNAL_DELAY
            self._later(channel, delay, lambda: self._answered(channel, originated))

    def _ringing(self, channel: Channel, originated: bool) -> None:
        self._set_state(channel, "Ringing")
        self._dial_event(channel, "RINGING", keep_dialstring=originated)
        channel.indication = "ringing"

    def _progress(self, channel: Channel, originated: bool) -> None:
        self._dial_event(channel, "PROGRESS", keep_dialstring=originated)
        channel.indication = None
        if channel.far_end is not None:
            channel.far_end.progress()

    def _answered(self, channel: Channel, originated: bool) -> None:
        channel.answered = True
        channel.indication = None
        if originated and channel.peer is not None:
            self._set_state(channel.peer, "Up")
        self._set_state(channel, "Up")
        self._dial_event(channel, "ANSWER", keep_dialstring=originated)
        if channel.far_end is not None:
            channel.far_end.answered()
        if originated:
            self._start_stasis(channel, dialplan_event=False)

    def _busy(self, channel: Channel, originated: bool) -> None:
        self._dial_event(channel, "BUSY", keep_dialstring=originated)
        if originated:
            self._end(channel, BUSY, None, ended_by="far_end")
            return
        # The channel is not hung up by the Dial result: Asterisk plays a busy tone until the far
        # end gives up ~5 s later (capture c).
        channel.indication = "busy"
        self._later(channel, self._timing.busy_hangup_seconds, lambda: self.far_end_hangup(channel, BUSY))

    def _no_answer(self, channel: Channel, originated: bool) -> None:
        if originated:
            self._dial_event(channel, "NOANSWER", keep_dialstring=True)
            self._end(channel, NO_ANSWER, None, ended_by="far_end")
        else:
            # No Dial NOANSWER for create + dial: only the soft hangup and cause 19 (capture c).
            self._end(channel, NO_ANSWER, SOFT_HANGUP, ended_by="far_end")

    def _deliver_dtmf(self, channel: Channel, digit: str, duration: int) -> None:
        if channel.far_end is not None:
            channel.far_end.receive_dtmf(digit)
        if channel.peer is not None and channel.peer.subscribed:
            self._channel_event(channel.peer, "ChannelDtmfReceived", digit=digit, duration_ms=duration)

    # ------------------------------------------------------------------ internals: bridges

    def _enter_bridge(self, channel: Channel, bridge: Bridge) -> None:
        channel.bridge = bridge
        bridge.channels.append(channel)
        if channel.app:
            bridge.apps.add(channel.app)
        self._bridge_event(bridge, "ChannelEnteredBridge", channel)

    def _depart_bridge(self, channel: Channel) -> None:
        bridge = channel.bridge
        if bridge is None:
            return
        if channel.variables.get("BRIDGEPEER"):
            self._varset(channel, "BRIDGEPEER", "")
        bridge.channels.remove(channel)
        channel.bridge = None
        self._bridge_event(bridge, "ChannelLeftBridge", channel)
        self._update_bridge_peers(bridge)

    def _update_bridge_peers(self, bridge: Bridge) -> None:
        """BRIDGEPEER = the other members' names; left stale on a lone member, as Asterisk does."""
        if len(bridge.channels) < 2:
            return
        for channel in bridge.channels:
            peers = ",".join(other.name for other in bridge.channels if other is not channel)
            if channel.variables.get("BRIDGEPEER") != peers:
                self._varset(channel, "BRIDGEPEER", peers)

    # ------------------------------------------------------------------ internals: playbacks

    def _start_next_playback(self, target: Channel | Bridge) -> None:
        while target.playbacks and target.playbacks[0].state == "queued":
            playback = target.playbacks[0]
            playback.state = "playing"
            self._playback_event(playback, "PlaybackStarted")
            try:
                pcm = self._resolve_all(playback.media_uris)
            except UnknownMediaScheme:
                # Started, then silently dropped: never a PlaybackFinished, GET gives 404 (capture f).
                target.playbacks.pop(0)
                self.playbacks.pop(playback.id, None)
                continue
            if pcm is None:
                self._finish_playback(playback, "failed", advance=False)
                continue
            playback.pcm = pcm
            playback.position = min(playback.offset_samples, len(pcm))
            return

    def _resolve_all(self, uris: list[str]) -> np.ndarray | None:
        parts = []
        for uri in uris:
            pcm = self._resolve_media(uri)
            if pcm is None:
                return None
            parts.append(pcm)
        return np.concatenate(parts)

    def _finish_playback(self, playback: Playback, state: str, *, advance: bool = True) -> None:
        if playback.id not in self.playbacks or self.playbacks[playback.id] is not playback:
            return
        del self.playbacks[playback.id]
        target = playback.target
        if playback in target.playbacks:
            target.playbacks.remove(playback)
        playback.state = state
        self._playback_event(playback, "PlaybackFinished")
        if advance:
            self._start_next_playback(target)

    def _stop_playbacks(self, target: Channel | Bridge) -> None:
        for playback in list(target.playbacks):
            if playback.state == "playing":
                self._finish_playback(playback, "done", advance=False)
            else:
                target.playbacks.remove(playback)
                self.playbacks.pop(playback.id, None)

    # ------------------------------------------------------------------ internals: recordings

    def _detach_recording(self, recording: LiveRecording) -> None:
        self.live_recordings.pop(recording.name, None)
        if recording.target.recording is recording:
            recording.target.recording = None

    # ------------------------------------------------------------------ internals: events

    def _event(self, event_type: str, **fields: Any) -> dict[str, Any]:
        return {"type": event_type, "timestamp": ari_time(), **fields, "asterisk_id": self.asterisk_id}

    def _channel_event(self, channel: Channel, event_type: str, **fields: Any) -> None:
        if channel.app and channel.subscribed:
            self._emit_raw(channel.app, self._event(event_type, **fields, channel=channel.to_json()))

    def _varset(self, channel: Channel, name: str, value: str) -> None:
        channel.variables[name] = value
        self._channel_event(channel, "ChannelVarset", variable=name, value=value)

    def _set_state(self, channel: Channel, state: str) -> None:
        if channel.state != state:
            channel.state = state
            self._channel_event(channel, "ChannelStateChange")

    def _dial_event(self, channel: Channel, status: str, *, keep_dialstring: bool = True) -> None:
        if not (channel.app and channel.subscribed):
            return
        fields: dict[str, Any] = {}
        if channel.dial_caller is not None:
            fields["caller"] = channel.dial_caller.to_json()
        event = self._event(
            "Dial",
            dialstatus=status,
            forward="",
            dialstring=channel.dialstring if keep_dialstring or not status else "",
            **fields,
            peer=channel.to_json(),
        )
        self._emit_raw(channel.app, event)

    def _bridge_event(self, bridge: Bridge, event_type: str, channel: Channel | None = None) -> None:
        apps = set(bridge.apps)
        if channel is not None and channel.app and channel.subscribed:
            apps.add(channel.app)
        fields: dict[str, Any] = {"bridge": bridge.to_json()}
        if channel is not None:
            fields["channel"] = channel.to_json()
        for app in sorted(apps):
            self._emit_raw(app, self._event(event_type, **fields))

    def _target_apps(self, target: Channel | Bridge) -> set[str]:
        if isinstance(target, Channel):
            return {target.app} if target.app and target.subscribed else set()
        return set(target.apps)

    def _playback_event(self, playback: Playback, event_type: str) -> None:
        for app in sorted(self._target_apps(playback.target)):
            self._emit_raw(app, self._event(event_type, playback=playback.to_json()))

    def _recording_event(self, recording: LiveRecording, event_type: str) -> None:
        for app in sorted(self._target_apps(recording.target)):
            self._emit_raw(app, self._event(event_type, recording=recording.to_json()))
