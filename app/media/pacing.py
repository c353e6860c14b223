"""Send-side timing and RTP header state: pure, no I/O, time is passed in.

``Pacer`` gives each outgoing frame an absolute deadline, ``start + n * frame_seconds``, so a late
wake-up of the event loop delays one packet but never shifts the ones after it (sleeping 20 ms
after each send would accumulate every delay as drift).

Stall policy: a frame whose deadline passed by at most ``max_lag_frames`` frame times is sent at
once, which catches up and keeps the long-run rate exact. After a longer stall the schedule is
re-anchored at ``now`` instead: catching up would mean a burst of packets that the far end's jitter
buffer drops or plays late anyway, and it would not bring the lost time back.
"""

from __future__ import annotations

import secrets

from app.media.rtp import PT_PCMU, RtpPacket

FRAME_SECONDS = 0.02


class Pacer:
    def __init__(self, start: float, frame_seconds: float = FRAME_SECONDS, max_lag_frames: int = 3) -> None:
        if frame_seconds <= 0 or max_lag_frames < 0:
            raise ValueError("frame_seconds must be positive, max_lag_frames not negative")
        self.start = start
        self.frame_seconds = frame_seconds
        self.max_lag_frames = max_lag_frames
        self.next_index = 0
        self.reanchors = 0

    def deadline(self, n: int) -> float:
        """When frame ``n`` is due on the current schedule."""
        return self.start + n * self.frame_seconds

    def next_send_time(self, now: float) -> float:
        """Deadline of the next frame (call once per frame); re-anchors after a long stall."""
        due = self.deadline(self.next_index)
        if now - due > self.max_lag_frames * self.frame_seconds:
            self.start = now - self.next_index * self.frame_seconds
            self.reanchors += 1
            due = now
        self.next_index += 1
        return due

    def resume(self, now: float) -> float:
        """Audio is available again after the queue ran dry: return how long the line was idle.

        Within one frame time of the running schedule the audio simply continues it (0.0 is
        returned). After a longer gap the schedule restarts at ``now`` and the idle time, counted
        from the end of the last frame's slot, is returned so the RTP timestamp can skip it.
        """
        slot_end = self.deadline(self.next_index)
        if now <= slot_end + self.frame_seconds:
            return 0.0
        self.start = now - self.next_index * self.frame_seconds
        return now - slot_end


class RtpSender:
    """Header state of one outgoing RTP stream: sequence, timestamp, marker.

    Sequence numbers and timestamps start at random values (RFC 3550 section 5.1) unless given,
    and wrap at 16 and 32 bits. Each packet advances the timestamp by ``frame_samples``.
    """

    def __init__(
        self,
        ssrc: int,
        payload_type: int = PT_PCMU,
        *,
        frame_samples: int = 160,
        sample_rate: int = 8000,
        first_sequence: int | None = None,
        first_timestamp: int | None = None,
    ) -> None:
        self.ssrc = ssrc & 0xFFFFFFFF
        self.payload_type = payload_type
        self.frame_samples = frame_samples
        self.sample_rate = sample_rate
        self._sequence = secrets.randbits(16) if first_sequence is None else first_sequence & 0xFFFF
        self._timestamp = secrets.randbits(32) if first_timestamp is None else first_timestamp & 0xFFFFFFFF
        self._talkspurt_starts = True

    def start_talkspurt(self, idle_seconds: float) -> None:
        """The next packet follows ``idle_seconds`` of silence: it gets the marker bit and its
        timestamp skips the idle time, so the far end keeps RTP time in step with real time."""
        self._timestamp = (self._timestamp + round(max(0.0, idle_seconds) * self.sample_rate)) & 0xFFFFFFFF
        self._talkspurt_starts = True

    def next_packet(self, payload: bytes) -> RtpPacket:
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence=self._sequence,
            timestamp=self._timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=self._talkspurt_starts,
        )
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + self.frame_samples) & 0xFFFFFFFF
        self._talkspurt_starts = False
        return packet
