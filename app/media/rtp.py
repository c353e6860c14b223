"""RTP packets (RFC 3550): pure parse and serialize, no I/O."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
PT_PCMU = 0
PT_PCMA = 8
_HEADER = struct.Struct("!BBHII")


class RtpParseError(ValueError):
    """The datagram is not a valid RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = field(default_factory=tuple)
    extension_profile: int | None = None
    extension: bytes = b""

    def serialize(self) -> bytes:
        if not 0 <= self.payload_type < 128:
            raise ValueError(f"payload type {self.payload_type} out of range")
        if len(self.csrc) > 15:
            raise ValueError("at most 15 CSRCs")
        if len(self.extension) % 4:
            raise ValueError("header extension length must be a multiple of 4")
        has_ext = self.extension_profile is not None
        b0 = (RTP_VERSION << 6) | (0x10 if has_ext else 0) | len(self.csrc)
        b1 = (0x80 if self.marker else 0) | self.payload_type
        out = [_HEADER.pack(b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF)]
        out.extend(struct.pack("!I", c) for c in self.csrc)
        if has_ext:
            out.append(struct.pack("!HH", self.extension_profile, len(self.extension) // 4))
            out.append(self.extension)
        out.append(self.payload)
        return b"".join(out)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one datagram; raise RtpParseError with the reason if it is not RTP."""
    if len(data) < _HEADER.size:
        raise RtpParseError(f"too short for an RTP header ({len(data)} bytes)")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise RtpParseError(f"RTP version {version}, expected 2")
    payload_type = b1 & 0x7F
    if 72 <= payload_type <= 76:
        raise RtpParseError(f"payload type {payload_type} is RTCP, not RTP")
    offset = _HEADER.size
    cc = b0 & 0x0F
    if len(data) < offset + 4 * cc:
        raise RtpParseError("truncated CSRC list")
    csrc = struct.unpack_from(f"!{cc}I", data, offset) if cc else ()
    offset += 4 * cc
    ext_profile = None
    ext = b""
    if b0 & 0x10:
        if len(data) < offset + 4:
            raise RtpParseError("truncated header extension")
        ext_profile, ext_words = struct.unpack_from("!HH", data, offset)
        offset += 4
        if len(data) < offset + 4 * ext_words:
            raise RtpParseError("truncated header extension body")
        ext = bytes(data[offset : offset + 4 * ext_words])
        offset += 4 * ext_words
    end = len(data)
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or offset + pad > end:
            raise RtpParseError(f"invalid padding length {pad}")
        end -= pad
    return RtpPacket(
        payload_type=payload_type,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(b1 & 0x80),
        csrc=tuple(csrc),
        extension_profile=ext_profile,
        extension=ext,
    )
