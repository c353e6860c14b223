"""Media health of a call: what its RTP endpoints counted, in the words of /api/health and /metrics.

The counters themselves are kept where the packets are handled (``JitterBuffer.stats`` and
``RtpEndpoint``); this is their one read-out, summed over a call's endpoints (the hold bridge's
and, after the handoff, the listening snoop's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

from app.media.endpoint import EndpointStats


@dataclass(frozen=True, slots=True)
class MediaHealth:
    """Packets and frames of received audio.

    ``received``: valid RTP packets; ``lost``: sequence numbers skipped and never received;
    ``late``: packets that came after their frame was concealed; ``duplicated``: packets received
    twice; ``concealed``: 20 ms frames of silence played instead of audio (lost, late, stalls);
    ``malformed``: datagrams that were not RTP; ``stray``: RTP from another address than the far
    end's (the tail of an earlier call on the port), dropped; ``dropped``: frames discarded because
    the call read none for a minute.
    """

    received: int = 0
    lost: int = 0
    late: int = 0
    duplicated: int = 0
    concealed: int = 0
    malformed: int = 0
    stray: int = 0
    dropped: int = 0

    @classmethod
    def of(cls, stats: EndpointStats) -> MediaHealth:
        return cls(
            received=stats.received,
            lost=stats.lost,
            late=stats.late,
            duplicated=stats.duplicates,
            concealed=stats.concealed,
            malformed=stats.malformed,
            stray=stats.stray,
            dropped=stats.unread_frames_dropped,
        )

    @classmethod
    def total(cls, parts: Iterable[MediaHealth]) -> MediaHealth:
        result = cls()
        for part in parts:
            result = result + part
        return result

    def __add__(self, other: MediaHealth) -> MediaHealth:
        return MediaHealth(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


COUNTERS: tuple[str, ...] = tuple(f.name for f in fields(MediaHealth))
