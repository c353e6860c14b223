"""RTP packets (RFC 3550 section 5.1): wire format, round trips, and every malformed case."""

from __future__ import annotations

import struct

import pytest

from app.media.rtp import RtpPacket, RtpParseError, parse_rtp


def test_serialize_matches_the_wire_format_byte_for_byte():
    packet = RtpPacket(payload_type=0, sequence=0x1234, timestamp=0xA0B0C0D0, ssrc=0x01020304, payload=b"\xff" * 160)
    wire = packet.serialize()
    assert wire[:12] == bytes.fromhex("80 00 1234 A0B0C0D0 01020304")
    assert wire[12:] == b"\xff" * 160


def test_marker_csrc_and_extension_bits_on_the_wire():
    packet = RtpPacket(
        payload_type=8,
        sequence=1,
        timestamp=2,
        ssrc=3,
        payload=b"ab",
        marker=True,
        csrc=(0x11111111, 0x22222222),
        extension_profile=0xBEDE,
        extension=b"\x10\x20\x30\x40",
    )
    wire = packet.serialize()
    assert wire[0] == 0x80 | 0x10 | 2  # version 2, X bit, CC = 2
    assert wire[1] == 0x80 | 8  # marker, PT 8
    assert wire[12:20] == bytes.fromhex("11111111 22222222")
    assert wire[20:24] == bytes.fromhex("BEDE 0001")  # profile, length in 32-bit words
    assert wire[24:28] == b"\x10\x20\x30\x40"
    assert wire[28:] == b"ab"


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(0, 0, 0, 0),
        RtpPacket(0, 65535, 0xFFFFFFFF, 0xFFFFFFFF, b"\x00" * 160, marker=True),
        RtpPacket(8, 42, 160, 7, b"x" * 160, csrc=tuple(range(1, 16))),
        RtpPacket(101, 9, 99, 5, b"\x01\x0a\x00\xa0", extension_profile=0x1000, extension=b""),
        RtpPacket(127, 1, 2, 3, b"p", marker=True, csrc=(9,), extension_profile=0xBEDE, extension=b"\x00" * 8),
    ],
    ids=["empty", "max-fields-marker", "15-csrc", "empty-extension", "everything"],
)
def test_parse_serialize_round_trip(packet):
    assert parse_rtp(packet.serialize()) == packet


def test_padding_is_stripped():
    packet = RtpPacket(0, 5, 800, 99, b"\xd5" * 10)
    wire = bytearray(packet.serialize())
    wire[0] |= 0x20  # P bit
    wire += b"\x00\x00\x00\x04"  # 4 bytes of padding, the last one holds the count
    assert parse_rtp(bytes(wire)) == packet


def test_padding_can_take_the_whole_payload():
    wire = bytearray(RtpPacket(0, 1, 2, 3).serialize())
    wire[0] |= 0x20
    wire += b"\x00\x02"
    assert parse_rtp(bytes(wire)).payload == b""


def test_parse_accepts_memoryview_and_bytearray():
    wire = RtpPacket(0, 1, 2, 3, b"abc").serialize()
    assert parse_rtp(bytearray(wire)).payload == b"abc"
    assert parse_rtp(memoryview(wire)).payload == b"abc"


def header(b0=0x80, b1=0x00, seq=1, ts=2, ssrc=3) -> bytes:
    return struct.pack("!BBHII", b0, b1, seq, ts, ssrc)


MALFORMED = {
    "empty": b"",
    "short": header()[:11],
    "version-0": header(b0=0x00) + b"x",
    "version-1": header(b0=0x40) + b"x",
    "version-3": header(b0=0xC0) + b"x",
    "truncated-csrc": header(b0=0x82) + b"\x00\x00\x00\x01",
    "csrc-count-without-list": header(b0=0x8F),
    "truncated-extension-header": header(b0=0x90) + b"\xbe\xde",
    "truncated-extension-body": header(b0=0x90) + b"\xbe\xde\x00\x02" + b"\x00" * 4,
    "extension-after-truncated-csrc": header(b0=0x91) + b"\xbe\xde\x00\x00",
    "padding-zero": header(b0=0xA0) + b"abc\x00",
    "padding-longer-than-payload": header(b0=0xA0) + b"ab\x05",
    "padding-bit-without-payload": header(b0=0xA0, ssrc=0x07),
    **{f"rtcp-pt-{pt}": header(b1=pt) + b"\x00" * 8 for pt in range(72, 77)},
    "rtcp-sender-report": bytes.fromhex("80c8 0006") + b"\x00" * 24,  # PT 200 = marker + 72
    "rtcp-receiver-report": bytes.fromhex("81c9 0007") + b"\x00" * 28,  # PT 201 = marker + 73
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_datagrams_raise_rtp_parse_error(data):
    with pytest.raises(RtpParseError):
        parse_rtp(data)


def test_rtp_parse_error_is_a_value_error_with_a_reason():
    with pytest.raises(ValueError, match="version"):
        parse_rtp(header(b0=0x40))


def test_payload_types_next_to_the_rtcp_range_are_rtp():
    assert parse_rtp(header(b1=71)).payload_type == 71
    assert parse_rtp(header(b1=77)).payload_type == 77


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (RtpPacket(128, 0, 0, 0), "payload type"),
        (RtpPacket(0, 0, 0, 0, csrc=tuple(range(16))), "CSRC"),
        (RtpPacket(0, 0, 0, 0, extension_profile=1, extension=b"abc"), "multiple of 4"),
    ],
)
def test_serialize_rejects_what_the_header_cannot_hold(packet, reason):
    with pytest.raises(ValueError, match=reason):
        packet.serialize()
