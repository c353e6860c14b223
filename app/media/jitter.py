"""Receive-side jitter buffer for one G.711 RTP stream: pure, no I/O, time is passed in.

Packets go in with their arrival time; 20 ms frames come out in sequence order, one per
sequence number, with lost packets replaced by silence once they are overdue.

Timing. A sequence number's expected arrival ("slot") is measured from the newest packet:
``slot(p) = newest_arrival + (p - newest) * frame_seconds``. A missing frame is concealed when
``now >= slot + depth``; a present in-order frame is released at once, so an in-order stream adds
no latency. Measuring from the newest packet rather than from the first one means a sender whose
clock runs slow or fast, or a burst of extra audio (Asterisk pushes ~0.44 s at every music start
when a Local channel runs slin192, see asterisk/captures h-*), never accumulates into lateness.

Stalls. When nothing arrives the timeline keeps going with concealed frames, so the output (and
the call recording) stays in step with wall time. Asterisk does pause a stream without skipping
sequence numbers (capture a-*: 0.52 s without packets, then seq+1 with the marker bit and the RTP
timestamp jumped). The packet that ends such a pause is newer than anything received, so instead
of being dropped as late it *resyncs* the stream: it plays next, after the silence. Only a packet
that arrives after a later one was already received, and after its slot was concealed, is late.

Sequence numbers are extended to 32 bits across 16-bit wraparound. A jump that cannot be explained
by elapsed time (a sender that reset its counter) and a new SSRC (the far end restarted its stream)
both rebase the stream at the next free position: nothing is flushed and no burst of concealment
is emitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.media.g711 import alaw_decode, ulaw_decode
from app.media.rtp import PT_PCMA, PT_PCMU, RtpPacket

SAMPLE_RATE = 8000
_DECODERS = {PT_PCMU: ulaw_decode, PT_PCMA: alaw_decode}

# How far back delivered positions are remembered, to tell a duplicate from a late packet (~20 s).
_HISTORY = 1024
_DELIVERED, _CONCEALED = 1, 2
# Sequence numbers may run ahead of elapsed time by this much before it counts as a counter jump.
_MAX_LEAP_SECONDS = 1.0
# A packet this many sequence numbers behind the newest means the counter went backwards.
_MAX_MISORDER = 100


@dataclass(frozen=True, slots=True)
class Frame:
    """One 20 ms frame of far-end audio, in call order.

    ``pcm`` is always ``frame_samples`` int16 samples: a shorter payload (Asterisk sends one at the
    end of each file it plays) is padded with silence, a longer one is cut.
    ``seq`` is the extended sequence number the frame carries, or for a concealed frame the one it
    stands in for; after a stall resync a sequence number can appear once concealed and once real,
    so order frames by their position in the output, not by ``seq``.
    ``arrival`` is when the packet arrived (for a concealed frame: when it was expected), on the
    clock the caller passes in. Time received audio by this, not by RTP timestamps.
    """

    pcm: np.ndarray
    seq: int
    arrival: float
    concealed: bool = False


@dataclass(slots=True)
class JitterStats:
    """Counters since the buffer was created.

    ``received`` counts every packet pushed; the others say what happened to some of them or to
    the output. ``lost`` counts sequence numbers skipped and never received (RFC 3550's
    cumulative loss, duplicates left out; a late packet arrived, so it is not lost).
    ``concealed`` counts the silent frames played instead of audio: lost and late packets, and
    stalls (a sender that paused without skipping sequence numbers).
    """

    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    late: int = 0
    lost: int = 0
    concealed: int = 0
    ssrc_changes: int = 0
    wrong_payload_type: int = 0
    resyncs: int = 0


class JitterBuffer:
    def __init__(self, frame_samples: int = 160, depth_frames: int = 3, sample_rate: int = SAMPLE_RATE) -> None:
        if frame_samples <= 0 or depth_frames < 0 or sample_rate <= 0:
            raise ValueError("frame_samples and sample_rate must be positive, depth_frames not negative")
        self.frame_samples = frame_samples
        self.depth_frames = depth_frames
        self.frame_seconds = frame_samples / sample_rate
        self.stats = JitterStats()
        self._ssrc: int | None = None
        # Output positions count frames from 0; position = extended seq + offset within a stream.
        self._offset = 0
        self._next_position = 0
        self._newest_ext = 0
        self._newest_position = -1
        self._newest_arrival = 0.0
        self._last_seq = 0
        self._pending: dict[int, tuple[np.ndarray, int, float]] = {}
        self._history = bytearray(_HISTORY)

    def push(self, packet: RtpPacket, arrival: float) -> None:
        self.stats.received += 1
        decode = _DECODERS.get(packet.payload_type)
        if decode is None:
            self.stats.wrong_payload_type += 1
            return
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                self.stats.ssrc_changes += 1
            self._ssrc = packet.ssrc
            ext = packet.sequence
            position = self._rebase(ext, arrival)
        else:
            ext = self._extend(packet.sequence)
            position = ext + self._offset
            if ext > self._newest_ext:
                if position < self._next_position or self._leaps_ahead(position, arrival):
                    self.stats.resyncs += 1
                    if ext - self._newest_ext <= _MAX_MISORDER:
                        # Late after a gap (jitter on top of loss): the gap was still lost. A
                        # longer jump is a sender that moved its numbers, not a loss.
                        self.stats.lost += ext - self._newest_ext - 1
                    position = self._rebase(ext, arrival)
                else:
                    self.stats.lost += ext - self._newest_ext - 1  # the sequence numbers skipped
                    self._newest_ext, self._newest_position, self._newest_arrival = ext, position, arrival
            elif self._newest_ext - ext > _MAX_MISORDER:
                self.stats.resyncs += 1
                position = self._rebase(ext, arrival)
            elif position in self._pending or self._status(position) == _DELIVERED:
                self.stats.duplicates += 1
                return
            elif position < self._next_position:
                self.stats.late += 1
                self._skipped_one_arrived()
                return
            else:
                self.stats.reordered += 1
                self._skipped_one_arrived()
        self._pending[position] = (self._fit(decode(packet.payload)), ext, arrival)

    def pop_ready(self, now: float) -> list[Frame]:
        """Frames that are due at ``now``, in order; call it often (the endpoint does every 20 ms)."""
        frames: list[Frame] = []
        if self._ssrc is None:
            return frames
        depth = self.depth_frames * self.frame_seconds
        while True:
            position = self._next_position
            entry = self._pending.pop(position, None)
            if entry is not None:
                pcm, seq, arrival = entry
                frames.append(Frame(pcm, seq, arrival))
                self._history[position % _HISTORY] = _DELIVERED
            else:
                slot = self._newest_arrival + (position - self._newest_position) * self.frame_seconds
                if now < slot + depth:
                    break
                seq = self._last_seq + 1
                frames.append(Frame(np.zeros(self.frame_samples, np.int16), seq, slot, concealed=True))
                self._history[position % _HISTORY] = _CONCEALED
                self.stats.concealed += 1
            self._last_seq = seq
            self._next_position += 1
        return frames

    def _skipped_one_arrived(self) -> None:
        # An older packet filled a gap counted as lost; never below zero (a packet from before a
        # resync can look late without having been skipped).
        if self.stats.lost:
            self.stats.lost -= 1

    def next_due(self) -> float | None:
        """The earliest time ``pop_ready`` would release a frame if nothing more arrived: the next
        frame's concealment time, or ``-inf`` when it is here already; None before any packet."""
        if self._ssrc is None:
            return None
        if self._next_position in self._pending:
            return -float("inf")
        slot = self._newest_arrival + (self._next_position - self._newest_position) * self.frame_seconds
        return slot + self.depth_frames * self.frame_seconds

    def _extend(self, seq: int) -> int:
        """The 32-bit sequence number nearest to the newest one received."""
        delta = ((seq - self._newest_ext + 0x8000) & 0xFFFF) - 0x8000
        return self._newest_ext + delta

    def _leaps_ahead(self, position: int, arrival: float) -> bool:
        ahead = (position - self._newest_position) * self.frame_seconds
        return ahead - (arrival - self._newest_arrival) > _MAX_LEAP_SECONDS

    def _rebase(self, ext: int, arrival: float) -> int:
        """Map ``ext`` to the first position that is neither played nor taken; return it."""
        position = max(self._next_position, self._newest_position + 1)
        self._offset = position - ext
        self._newest_ext, self._newest_position, self._newest_arrival = ext, position, arrival
        return position

    def _status(self, position: int) -> int:
        if position >= self._next_position or self._next_position - position > _HISTORY:
            return 0
        return self._history[position % _HISTORY]

    def _fit(self, pcm: np.ndarray) -> np.ndarray:
        if len(pcm) == self.frame_samples:
            return pcm
        fitted = np.zeros(self.frame_samples, np.int16)
        used = min(len(pcm), self.frame_samples)
        fitted[:used] = pcm[:used]
        return fitted
