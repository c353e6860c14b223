"""One UDP RTP endpoint per externalMedia channel: receive, jitter-buffer, record, pace and send.

Usage::

    endpoint = await RtpEndpoint.open(settings.media_host, settings.media_port_min, settings.media_port_max)
    # externalMedia(external_host=f"{host}:{port}" of endpoint.local_address, format=ulaw)
    endpoint.set_remote(reply_vars["UNICASTRTP_LOCAL_ADDRESS"], int(reply_vars["UNICASTRTP_LOCAL_PORT"]))
    endpoint.record_to(recordings_dir / f"{call_id}.wav")
    async for frame in endpoint.frames():   # 20 ms Frames in call order, until close()
        ...
    endpoint.on_sent = track.sent            # every frame as it leaves (pcm, talkspurt_start)
    endpoint.on_frame = detector_announce    # every frame received, before frames() yields it
    await endpoint.play(prompt_pcm)          # int16 8 kHz, paced one packet per 20 ms
    endpoint.clear_outgoing()                # barge-in
    await endpoint.close()

Packets are sent from the receiving socket, as Asterisk expects. Without ``set_remote`` the
endpoint answers the source of the first valid packet (symmetric RTP); queued audio waits until a
remote is known. A datagram that is not RTP is counted in ``stats.malformed`` and dropped.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.clock import Clock, MonotonicClock
from app.media.g711 import alaw_encode, ulaw_encode
from app.media.jitter import Frame, JitterBuffer
from app.media.pacing import FRAME_SECONDS, Pacer, RtpSender
from app.media.recorder import StreamingWavWriter
from app.media.rtp import PT_PCMA, PT_PCMU, RtpParseError, parse_rtp

log = logging.getLogger(__name__)

FRAME_SAMPLES = 160
_ENCODERS: dict[int, Callable[[np.ndarray], bytes]] = {PT_PCMU: ulaw_encode, PT_PCMA: alaw_encode}
# Frames kept for a slow frames() consumer before the oldest are dropped (60 s).
_MAX_UNREAD_FRAMES = 3000


class NoFreePortError(OSError):
    """Every UDP port of the configured media range is taken."""


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """A snapshot of one endpoint's counters (the jitter counters are explained in JitterStats).

    ``received_bytes`` and ``sent_bytes`` count whole datagrams, malformed ones included.
    ``stray`` counts datagrams from another address than the far end's, dropped unread.
    ``unread_frames_dropped`` counts frames discarded because nobody read frames() for a minute.
    """

    received: int
    duplicates: int
    reordered: int
    late: int
    lost: int
    concealed: int
    ssrc_changes: int
    wrong_payload_type: int
    resyncs: int
    malformed: int
    stray: int
    received_bytes: int
    sent_packets: int
    sent_bytes: int
    unread_frames_dropped: int


class _OutgoingAudio:
    """One send_pcm() call's audio, and the future that play() waits on."""

    __slots__ = ("done", "offset", "pcm")

    def __init__(self, pcm: np.ndarray, done: asyncio.Future[bool]) -> None:
        self.pcm = pcm
        self.offset = 0
        self.done = done

    def finish(self, sent: bool) -> None:
        if not self.done.done():
            self.done.set_result(sent)


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._endpoint._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the far end is not listening yet or has gone: not fatal.
        log.debug("RTP socket error: %s", exc)


async def _one_loop_turn() -> None:
    """Return after the event loop has run its I/O callbacks once: a task resumed by sleep(0)
    runs ahead of that turn's I/O, so it takes two."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())


# Per (host, range): the port to try first for the next endpoint (see RtpEndpoint.open).
_next_port: dict[tuple[str, int, int], int] = {}


class RtpEndpoint:
    """Create with ``await RtpEndpoint.open(...)``."""

    def __init__(self, clock: Clock, jitter_depth_frames: int, payload_type: int) -> None:
        self._clock = clock
        self._encode = _ENCODERS[payload_type]
        self._jitter = JitterBuffer(FRAME_SAMPLES, jitter_depth_frames)
        self._rtp = RtpSender(secrets.randbits(32), payload_type, frame_samples=FRAME_SAMPLES)
        self._transport: asyncio.DatagramTransport | None = None
        self._remote: tuple[str, int] | None = None
        self._remote_said = False  # set_remote() was told where the far end is (not learned)
        self._remote_known = asyncio.Event()
        self._unread: asyncio.Queue[Frame | None] = asyncio.Queue(_MAX_UNREAD_FRAMES + 1)
        self._recorder: StreamingWavWriter | None = None
        self._outgoing: deque[_OutgoingAudio] = deque()
        # Told every frame as it leaves (PCM, and whether it starts a talkspurt): the call's record
        # of what it said. It must not raise: a failing recorder cannot stop the audio.
        self.on_sent: Callable[[np.ndarray, bool], None] | None = None
        # Told every received frame as it is queued for frames(), before its reader wakes: the
        # detector learns what it will hear while other calls' frames are read (and batches).
        self.on_frame: Callable[[Frame], None] | None = None
        self._talkspurt_start = True
        self._outgoing_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._malformed = 0
        self._stray = 0
        self._received_bytes = 0
        self._sent_packets = 0
        self._sent_bytes = 0
        self._unread_dropped = 0

    @classmethod
    async def open(
        cls,
        host: str,
        port_min: int,
        port_max: int,
        *,
        clock: Clock | None = None,
        jitter_depth_frames: int = 3,
        payload_type: int = PT_PCMU,
    ) -> RtpEndpoint:
        """Bind a free UDP port of ``[port_min, port_max]`` on ``host``.

        Ports are taken in turn from a random start (as Asterisk picks its RTP ports), not lowest
        first: a port a call has just closed is the last one given out again, so audio still on
        its way to the old call does not land in a new one.

        ``payload_type`` (0 mu-law or 8 A-law) is what this endpoint sends; it receives both.
        A range of ``0, 0`` lets the OS choose any free port. Raises NoFreePortError.
        """
        if payload_type not in _ENCODERS:
            raise ValueError(f"payload type {payload_type} is not G.711 (0 = mu-law, 8 = A-law)")
        if not 0 <= port_min <= port_max <= 65535:
            raise ValueError(f"invalid port range {port_min}-{port_max}")
        endpoint = cls(clock or MonotonicClock(), jitter_depth_frames, payload_type)
        loop = asyncio.get_running_loop()
        span = port_max - port_min + 1
        key = (host, port_min, port_max)
        start = _next_port.get(key, port_min + secrets.randbelow(span))
        for offset in range(span):
            port = port_min + (start - port_min + offset) % span
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _RtpProtocol(endpoint), local_addr=(host, port)
                )
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            _next_port[key] = port_min + (port - port_min + 1) % span
            endpoint._start(transport)
            return endpoint
        raise NoFreePortError(errno.EADDRINUSE, f"no free UDP port on {host} in {port_min}-{port_max}")

    def _start(self, transport: asyncio.DatagramTransport) -> None:
        self._transport = transport
        self._tasks = [
            asyncio.create_task(self._playout_loop(), name=f"rtp-playout:{self.local_address[1]}"),
            asyncio.create_task(self._send_loop(), name=f"rtp-send:{self.local_address[1]}"),
        ]
        for task in self._tasks:
            task.add_done_callback(_log_crash)

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return self._remote

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def unread(self) -> int:
        """Frames received and not read yet: how far the call's analysis runs behind (x 20 ms)."""
        return self._unread.qsize()

    @property
    def stats(self) -> EndpointStats:
        return EndpointStats(
            **asdict(self._jitter.stats),
            malformed=self._malformed,
            stray=self._stray,
            received_bytes=self._received_bytes,
            sent_packets=self._sent_packets,
            sent_bytes=self._sent_bytes,
            unread_frames_dropped=self._unread_dropped,
        )

    def set_remote(self, host: str, port: int) -> None:
        """Send to ``host:port`` (an IP address, e.g. UNICASTRTP_LOCAL_ADDRESS/PORT), and from now
        on hear only what comes from there (Asterisk sends from the socket it receives on)."""
        ipaddress.ip_address(host)  # a hostname would be resolved, blocking, on every sendto
        if not 0 < port <= 65535:
            raise ValueError(f"invalid RTP port {port}")
        self._remote = (host, port)
        self._remote_said = True
        self._remote_known.set()

    def _from_far_end(self, addr: tuple) -> bool:
        if self._remote is None:
            return True
        host, port = self._remote
        return addr[1] == port and (addr[0] == host or ipaddress.ip_address(host).is_unspecified)

    # --- receiving -------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[Frame]:
        """The far end's audio as 20 ms frames in call order; ends when the endpoint closes.

        One consumer at a time. Frames are kept from open() on, so nothing is missed before the
        first iteration, but a consumer that falls a minute behind loses the oldest ones.
        """
        while True:
            frame = await self._unread.get()
            if frame is None:
                self._unread.put_nowait(None)  # keep the end marker for any later iteration
                return
            yield frame

    def take_unread(self) -> list[Frame]:
        """The frames received and not read yet, at once (the call is ending: hear what came)."""
        frames: list[Frame] = []
        while not self._unread.empty():
            frame = self._unread.get_nowait()
            if frame is None:
                self._unread.put_nowait(None)
                break
            frames.append(frame)
        return frames

    def record_to(self, path: str | Path) -> None:
        """Write the received audio, from now until close(), to a 16-bit 8 kHz WAV file.

        The frames are those of frames(), concealment included, so the file's timeline is the call's.
        """
        if self._closed:
            raise RuntimeError("endpoint is closed")
        if self._recorder is not None:
            raise RuntimeError(f"already recording to {self._recorder.path}")
        self._recorder = StreamingWavWriter(path, 8000)

    def _on_datagram(self, data: bytes, addr: tuple) -> None:
        self._received_bytes += len(data)
        try:
            packet = parse_rtp(data)
        except RtpParseError as exc:
            self._malformed += 1
            log.debug("dropped a datagram from %s: %s", addr, exc)
            return
        if self._remote is None:
            log.info("RTP remote learned from the first packet: %s:%d", addr[0], addr[1])
            self.set_remote(addr[0], addr[1])
            self._remote_said = False
        elif not self._from_far_end(addr):
            if self._remote_said:
                # Another stream aimed at this port: the tail of a call that used it before, or
                # a stranger. Its packets would interleave with the call's audio.
                self._stray += 1
                if self._stray == 1:
                    log.warning("RTP from %s:%s dropped: the far end is %s:%s", addr[0], addr[1], *self._remote)
                return
        now = self._clock.now()
        self._jitter.push(packet, now)
        self._deliver(self._jitter.pop_ready(now))

    async def _playout_loop(self) -> None:
        # In-order packets are delivered as they arrive (_on_datagram); this loop only conceals
        # the ones that do not come, so it sleeps until the next frame would be overdue rather
        # than waking every 20 ms: ~4 times fewer wake-ups per call while the stream flows.
        while True:
            due = self._jitter.next_due()
            now = self._clock.now()
            wake = now + (FRAME_SECONDS if due is None else max(0.0, due - now))
            await self._clock.sleep(wake - now)
            if self._clock.now() - wake > FRAME_SECONDS:
                # Woken late (a busy event loop): packets that came meanwhile may wait unread in
                # the socket, or a sender on this same loop may only now have sent its backlog.
                # One loop turn reads the next of them, and its arrival moves every deadline, so
                # frames on their way are not concealed (and then dropped as late).
                await _one_loop_turn()
            self._deliver(self._jitter.pop_ready(self._clock.now()))

    def _deliver(self, frames: list[Frame]) -> None:
        for frame in frames:
            if self._recorder is not None:
                self._recorder.write(frame.pcm)
            if self.on_frame is not None:
                try:
                    self.on_frame(frame)
                except Exception:
                    log.exception("on_frame failed; the frame is kept for frames()")
            if self._unread.qsize() >= _MAX_UNREAD_FRAMES:
                self._unread.get_nowait()
                self._unread_dropped += 1
            self._unread.put_nowait(frame)

    # --- sending ---------------------------------------------------------------------------

    def send_pcm(self, pcm: np.ndarray) -> None:
        """Queue int16 8 kHz mono audio; it is sent one 20 ms packet at a time."""
        self._enqueue(pcm)

    async def play(self, pcm: np.ndarray) -> bool:
        """Queue audio and wait until its last packet is sent.

        Returns False if clear_outgoing() or close() dropped some of it first.
        """
        return await self._enqueue(pcm)

    def clear_outgoing(self) -> None:
        """Drop all queued audio (barge-in); a frame already sent is not recalled."""
        while self._outgoing:
            self._outgoing.popleft().finish(sent=False)

    def _enqueue(self, pcm: np.ndarray) -> asyncio.Future[bool]:
        if self._closed:
            raise RuntimeError("endpoint is closed")
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError(f"expected 1-D int16 PCM at 8 kHz, got {pcm.dtype} with shape {pcm.shape}")
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if len(pcm) == 0:
            done.set_result(True)
            return done
        self._outgoing.append(_OutgoingAudio(pcm, done))
        self._outgoing_ready.set()
        return done

    async def _send_loop(self) -> None:
        pacer: Pacer | None = None
        while True:
            await self._outgoing_ready.wait()
            await self._remote_known.wait()
            now = self._clock.now()
            if pacer is None:
                pacer = Pacer(now, FRAME_SECONDS)
                self._talkspurt_start = True
            else:
                idle = pacer.resume(now)
                if idle:
                    self._rtp.start_talkspurt(idle)
                    self._talkspurt_start = True
            while self._outgoing:
                send_at = pacer.next_send_time(self._clock.now())
                await self._clock.sleep(send_at - self._clock.now())
                if self._outgoing:  # clear_outgoing() may have run while we slept
                    self._send_frame()
            self._outgoing_ready.clear()

    def _send_frame(self) -> None:
        frame = np.zeros(FRAME_SAMPLES, np.int16)  # a short last frame is padded with silence
        filled = 0
        finished: list[_OutgoingAudio] = []
        while filled < FRAME_SAMPLES and self._outgoing:
            audio = self._outgoing[0]
            take = min(FRAME_SAMPLES - filled, len(audio.pcm) - audio.offset)
            frame[filled : filled + take] = audio.pcm[audio.offset : audio.offset + take]
            audio.offset += take
            filled += take
            if audio.offset == len(audio.pcm):
                finished.append(self._outgoing.popleft())
        datagram = self._rtp.next_packet(self._encode(frame)).serialize()
        self._transport.sendto(datagram, self._remote)
        self._sent_packets += 1
        self._sent_bytes += len(datagram)
        if self.on_sent is not None:
            try:
                self.on_sent(frame, self._talkspurt_start)
            except Exception:
                log.exception("on_sent failed; the frame went out")
        self._talkspurt_start = False
        for audio in finished:
            audio.finish(sent=True)

    # --- shutdown --------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop sending and receiving, finish the recording, end frames(). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._transport.close()
        for task in self._tasks:
            task.cancel()
        self.clear_outgoing()
        if self._recorder is not None:
            self._recorder.close()
        self._unread.put_nowait(None)  # the queue keeps one place free for this end marker
        await asyncio.gather(*self._tasks, return_exceptions=True)
