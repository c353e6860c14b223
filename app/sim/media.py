"""The PBX's media: one 20 ms tick for every channel and bridge, and RTP for externalMedia.

Each tick every channel produces what it sends into the PBX (its *source*: company or phone
audio, the app's RTP, a snoop's copy of its target) and every bridge gives each member the sum
of the other members' sources (its *sink*), as a mixing bridge does. The loop runs against an
absolute clock, so RTP keeps 50 packets a second without drift however long a call lasts.

``RtpImpairment`` puts network trouble on the RTP an externalMedia port sends to the app for a
while: packets lost (their sequence numbers skipped) and jitter (each packet held back a random
time, so later ones can overtake it), drawn from a seeded generator, so a run is repeatable.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from app.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from app.media.pacing import RtpSender
from app.media.rtp import PT_PCMA, PT_PCMU, RtpParseError, parse_rtp
from app.sim.audio import BUSY_CYCLE, FRAME_SAMPLES, FRAME_SECONDS, RINGBACK_CYCLE, Frame, LoopCursor
from app.sim.model import Bridge, Channel, ChannelKind, Playback
from app.sim.telephony import Pbx

log = logging.getLogger(__name__)

RTP_FORMATS = {"ulaw": (PT_PCMU, ulaw_encode, ulaw_decode), "alaw": (PT_PCMA, alaw_encode, alaw_decode)}
_MAX_INBOUND_FRAMES = 10  # 200 ms: older audio from the app is dropped rather than delayed
# A stall of the event loop the PBX shares with the app (a starved test process) is caught up in a
# burst, as a network that held packets back delivers them: skipping it would splice made-up
# silence into what the company says, which a PBX does not do. Only a longer stall skips.
_MAX_LAG_SECONDS = 2.0
_SILENCE = np.zeros(FRAME_SAMPLES, np.int16)


@dataclass(frozen=True)
class RtpImpairment:
    """Trouble on the way to the app: ``loss`` is the share of packets never sent (0 to 1),
    ``jitter`` the most seconds a packet is held back (uniform), for ``seconds`` from when it is
    applied; ``seed`` makes the packets chosen the same on every run."""

    loss: float = 0.0
    jitter: float = 0.0
    seconds: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss must be between 0 and 1, got {self.loss}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1 s, got {self.jitter}")
        if not 0.0 < self.seconds <= 3600.0:
            raise ValueError(f"seconds must be more than 0 and at most 3600, got {self.seconds}")


class ImpairedSending:
    """One port under an impairment: decides each packet's fate and counts what it did."""

    def __init__(self, impairment: RtpImpairment, channel_id: str, start: float, seed: int) -> None:
        self.impairment = impairment
        self.channel_id = channel_id
        self.start = start
        self.until = start + impairment.seconds
        self._rng = random.Random(seed)
        self.lost = 0  # packets not sent
        self.delayed = 0  # packets held back
        self.over = False  # the window has passed

    def fate(self, now: float) -> float | None:
        """None: the packet is lost; otherwise the seconds it is held back (0: sent at once)."""
        if now >= self.until:
            self.over = True
            return 0.0
        if self._rng.random() < self.impairment.loss:
            self.lost += 1
            return None
        if self.impairment.jitter <= 0:
            return 0.0
        self.delayed += 1
        return self._rng.uniform(0.0, self.impairment.jitter)

    def as_dict(self) -> dict[str, object]:
        return {
            "channel": self.channel_id,
            "loss": self.impairment.loss,
            "jitter": self.impairment.jitter,
            "seconds": self.impairment.seconds,
            "seed": self.impairment.seed,
            "lost": self.lost,
            "delayed": self.delayed,
            "over": self.over,
        }


class RtpPort(asyncio.DatagramProtocol):
    """The UDP socket of one externalMedia channel (the UNICASTRTP_LOCAL_ADDRESS/PORT)."""

    def __init__(self, remote: tuple[str, int], audio_format: str) -> None:
        self.remote = remote
        self.payload_type, self._encode, self._decode = RTP_FORMATS[audio_format]
        self._sender = RtpSender(random.getrandbits(32), self.payload_type, frame_samples=FRAME_SAMPLES)
        self._inbound: collections.deque[np.ndarray] = collections.deque(maxlen=_MAX_INBOUND_FRAMES)
        self._carry = np.zeros(0, np.int16)
        self.transport: asyncio.DatagramTransport | None = None
        self.packets_sent = 0
        self.packets_received = 0
        self.packets_dropped = 0  # malformed or foreign datagrams
        self.impairment: ImpairedSending | None = None

    @classmethod
    async def open(cls, host: str, remote: tuple[str, int], audio_format: str) -> RtpPort:
        loop = asyncio.get_running_loop()
        _, port = await loop.create_datagram_endpoint(lambda: cls(remote, audio_format), local_addr=(host, 0))
        return port

    @property
    def local_address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = parse_rtp(data)
        except RtpParseError:
            self.packets_dropped += 1
            return
        if packet.payload_type != self.payload_type or not packet.payload:
            self.packets_dropped += 1
            return
        self.packets_received += 1
        samples = self._decode(packet.payload)
        if len(self._carry):
            samples = np.concatenate([self._carry, samples])
        whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            self._inbound.append(samples[start : start + FRAME_SAMPLES])
        self._carry = samples[whole:]

    def read_frame(self) -> Frame | None:
        """The app's audio for this tick (None when nothing arrived)."""
        return self._inbound.popleft() if self._inbound else None

    def send_frame(self, frame: Frame | None) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        # Asterisk keeps sending (silence included) while the channel is bridged: one talkspurt.
        packet = self._sender.next_packet(self._encode(_SILENCE if frame is None else frame))
        datagram = packet.serialize()
        if self.impairment is not None:
            delay = self.impairment.fate(asyncio.get_running_loop().time())
            if self.impairment.over:
                self.impairment = None
            if delay is None:
                return  # lost on the way: its sequence number is skipped
            if delay > 0:
                asyncio.get_running_loop().call_later(delay, self._send_late, datagram)
                return
        self.transport.sendto(datagram, self.remote)
        self.packets_sent += 1

    def _send_late(self, datagram: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(datagram, self.remote)
            self.packets_sent += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _add(total: np.ndarray | None, frame: np.ndarray | None) -> np.ndarray | None:
    if frame is None:
        return total
    if total is None:
        return frame.astype(np.int32)
    return total + frame


def _clip(frame: np.ndarray | None) -> Frame | None:
    if frame is None:
        return None
    if frame.dtype == np.int16:
        return frame
    return np.clip(frame, -32768, 32767).astype(np.int16)


class MediaEngine:
    """Runs the PBX's audio: sources, bridge mixing, delivery, playbacks and recordings."""

    def __init__(self, pbx: Pbx) -> None:
        self._pbx = pbx
        self._tones: weakref.WeakKeyDictionary[Channel, tuple[str, LoopCursor]] = weakref.WeakKeyDictionary()
        self._last_sink: dict[str, np.ndarray | None] = {}
        self.ticks = 0
        self.skipped_seconds = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += FRAME_SECONDS
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > _MAX_LAG_SECONDS:
                self.skipped_seconds += -delay
                due = loop.time()
            try:
                self.tick()
            except Exception:  # one bad tick must not silence every call
                log.exception("media tick failed")

    def tick(self) -> None:
        self.ticks += 1
        channels = [c for c in self._pbx.channels.values() if not c.hanging_up]
        sources: dict[str, np.ndarray | None] = {}
        snoops: list[Channel] = []
        for channel in channels:
            if channel.far_end is not None:
                sources[channel.id] = self._far_end_source(channel)
            elif channel.kind is ChannelKind.EXTERNAL_MEDIA:
                sources[channel.id] = channel.media.read_frame()  # type: ignore[union-attr]
            elif channel.kind is ChannelKind.SNOOP:
                snoops.append(channel)
        for snoop in snoops:
            sources[snoop.id] = self._snoop_source(snoop, sources)

        finished: list[Playback] = []
        sinks: dict[str, np.ndarray | None] = {}
        for bridge in list(self._pbx.bridges.values()):
            self._mix_bridge(bridge, sources, sinks, finished)
        for channel in channels:
            played = self._playback_frame(channel, finished)
            if played is not None:
                sinks[channel.id] = _add(sinks.get(channel.id), played)
        for snoop in snoops:
            target = snoop.snoop_target
            # Whisper reaches the far end only while the target is bridged (capture b).
            if snoop.whisper != "none" and target is not None and target.bridge is not None:
                sinks[target.id] = _add(sinks.get(target.id), sinks.get(snoop.id))

        for channel in channels:
            sink = _clip(sinks.get(channel.id))
            if channel.kind is ChannelKind.EXTERNAL_MEDIA and channel.bridge is not None:
                channel.media.send_frame(sink)  # type: ignore[union-attr]
            elif channel.far_end is not None:
                channel.far_end.hear(sink)
            if channel.recording is not None:
                channel.recording.writer.write(_clip(sources.get(channel.id)))
        self._last_sink = sinks
        self._after_tick(channels, finished)

    def _far_end_source(self, channel: Channel) -> np.ndarray | None:
        frame = channel.far_end.next_frame() if channel.far_end is not None else None
        if channel.indication is None:
            self._tones.pop(channel, None)
            return frame
        current = self._tones.get(channel)
        if current is None or current[0] != channel.indication:
            cycle = RINGBACK_CYCLE if channel.indication == "ringing" else BUSY_CYCLE
            current = (channel.indication, LoopCursor(cycle))
            self._tones[channel] = current
        return current[1].next_frame()

    def _snoop_source(self, snoop: Channel, sources: dict[str, np.ndarray | None]) -> np.ndarray | None:
        target = snoop.snoop_target
        if target is None:
            return None
        heard = None
        if snoop.spy in ("in", "both"):
            heard = _add(heard, sources.get(target.id))
        if snoop.spy in ("out", "both"):
            heard = _add(heard, self._last_sink.get(target.id))  # one tick late: harmless, avoids a cycle
        return heard

    def _mix_bridge(
        self,
        bridge: Bridge,
        sources: dict[str, np.ndarray | None],
        sinks: dict[str, np.ndarray | None],
        finished: list[Playback],
    ) -> None:
        played = self._playback_frame(bridge, finished)
        if bridge.holding:
            # Participants hear announcers (and playbacks), never each other.
            total = None
            for member in bridge.channels:
                if member.bridge_role == "announcer":
                    total = _add(total, sources.get(member.id))
            for member in bridge.channels:
                own = sources.get(member.id) if member.bridge_role == "announcer" else None
                sinks[member.id] = _add(self._without(total, own), played)
        else:
            total = None
            for member in bridge.channels:
                total = _add(total, sources.get(member.id))
            for member in bridge.channels:
                sinks[member.id] = _add(self._without(total, sources.get(member.id)), played)
        if bridge.recording is not None:
            mix = _add(total, played)
            # The recording is a Recorder channel in the bridge. Beside one other member the
            # bridge is a simple_bridge, which passes on only the frames that member sends: a
            # far end sending nothing (Wait) leaves no time in the file (capture g: 7.0 s of file
            # for 8 s of wall time, the missing second the company's Wait). With two or more
            # members it mixes (softmix) and writes every 20 ms, silence included.
            if mix is not None or len(bridge.channels) >= 2:
                bridge.recording.writer.write(_clip(mix))

    @staticmethod
    def _without(total: np.ndarray | None, own: np.ndarray | None) -> np.ndarray | None:
        if total is None or own is None:
            return total
        rest = total - own
        return rest if rest.any() else None

    @staticmethod
    def _playback_frame(target: Channel | Bridge, finished: list[Playback]) -> Frame | None:
        if not target.playbacks:
            return None
        playback = target.playbacks[0]
        if playback.state != "playing" or playback.pcm is None:
            return None
        start = playback.position
        frame = playback.pcm[start : start + FRAME_SAMPLES]
        playback.position = start + FRAME_SAMPLES
        if playback.position >= len(playback.pcm):
            finished.append(playback)
        if len(frame) < FRAME_SAMPLES:
            frame = np.concatenate([frame, np.zeros(FRAME_SAMPLES - len(frame), np.int16)])
        return frame

    def _after_tick(self, channels: Iterable[Channel], finished: list[Playback]) -> None:
        pbx = self._pbx
        for playback in finished:
            pbx.playback_finished(playback)
        for channel in channels:
            if channel.far_end is not None:
                cause = channel.far_end.take_hangup()
                if cause is not None:
                    pbx.far_end_hangup(channel, cause)
        pbx.check_recording_limits()
