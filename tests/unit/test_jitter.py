"""JitterBuffer with exact, made-up arrival times; then replays of the real Asterisk RTP captures."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from app.media.g711 import alaw_decode, alaw_encode, ulaw_decode
from app.media.jitter import Frame, JitterBuffer, JitterStats
from app.media.rtp import RtpPacket
from tests.shared_paths import CAPTURES_DIR, require

FRAME = 0.02
SSRC = 0x1234ABCD


def payload(seq: int) -> bytes:
    """A distinct mu-law payload per sequence number, so frames can be traced to packets."""
    return bytes([seq % 251]) * 160


def packet(seq: int, *, ssrc: int = SSRC, pt: int = 0, data: bytes | None = None) -> RtpPacket:
    return RtpPacket(
        payload_type=pt,
        sequence=seq & 0xFFFF,
        timestamp=seq * 160,
        ssrc=ssrc,
        payload=data if data is not None else payload(seq),
    )


def summary(frames: list[Frame]) -> list:
    """seq for real frames, ("lost", seq) for concealed ones."""
    return [("lost", f.seq) if f.concealed else f.seq for f in frames]


def test_nothing_comes_out_before_the_first_packet():
    buffer = JitterBuffer()
    assert buffer.pop_ready(100.0) == []


def test_in_order_packets_are_released_immediately_with_their_arrival_time():
    buffer = JitterBuffer()
    out = []
    for i in range(5):
        buffer.push(packet(100 + i), arrival=10 + i * FRAME)
        out += buffer.pop_ready(10 + i * FRAME)
    assert summary(out) == [100, 101, 102, 103, 104]
    assert [f.arrival for f in out] == [10 + i * FRAME for i in range(5)]
    assert all(f.pcm.dtype == np.int16 and f.pcm.shape == (160,) for f in out)
    assert np.array_equal(out[2].pcm, ulaw_decode(payload(102)))
    assert buffer.stats == JitterStats(received=5)


def test_reordered_packet_within_the_depth_is_delivered_in_order():
    buffer = JitterBuffer(depth_frames=3)
    buffer.push(packet(0), 0.00)
    buffer.push(packet(1), 0.02)
    buffer.push(packet(3), 0.06)
    assert summary(buffer.pop_ready(0.06)) == [0, 1]  # 2 is missing but not overdue yet
    buffer.push(packet(2), 0.07)
    assert summary(buffer.pop_ready(0.07)) == [2, 3]
    assert buffer.stats.reordered == 1
    assert buffer.stats.lost == buffer.stats.late == 0


def test_gap_is_concealed_once_its_slot_plus_depth_has_passed():
    buffer = JitterBuffer(depth_frames=3)
    for seq, t in [(0, 0.00), (1, 0.02), (3, 0.06), (4, 0.08)]:
        buffer.push(packet(seq), t)
    assert summary(buffer.pop_ready(0.08)) == [0, 1]
    # slot(2) = arrival(4) - 2 frames = 0.04; due at 0.04 + 3 * 0.02 = 0.10
    assert buffer.pop_ready(0.0999) == []
    out = buffer.pop_ready(0.10)
    assert summary(out) == [("lost", 2), 3, 4]
    concealed = out[0]
    assert concealed.arrival == pytest.approx(0.04)
    assert np.array_equal(concealed.pcm, np.zeros(160, np.int16))
    assert (buffer.stats.lost, buffer.stats.concealed) == (1, 1)


def test_packet_arriving_after_its_slot_was_concealed_is_late_and_dropped():
    buffer = JitterBuffer(depth_frames=2)
    for seq, t in [(0, 0.00), (2, 0.04), (3, 0.06)]:
        buffer.push(packet(seq), t)
    assert summary(buffer.pop_ready(0.08)) == [0, ("lost", 1), 2, 3]
    buffer.push(packet(1), 0.09)
    buffer.push(packet(4), 0.09)
    assert summary(buffer.pop_ready(0.09)) == [4]
    # It was concealed, but it did arrive: late, not lost.
    assert (buffer.stats.late, buffer.stats.lost, buffer.stats.concealed, buffer.stats.reordered) == (1, 0, 1, 0)


def test_duplicates_are_dropped_whether_pending_or_delivered():
    buffer = JitterBuffer()
    buffer.push(packet(0), 0.00)
    assert summary(buffer.pop_ready(0.00)) == [0]
    buffer.push(packet(2), 0.04)
    buffer.push(packet(2), 0.041)  # still waiting for 1
    buffer.push(packet(0), 0.042)  # already played
    buffer.push(packet(1), 0.043)
    assert summary(buffer.pop_ready(0.05)) == [1, 2]
    buffer.push(packet(1), 0.06)
    assert buffer.pop_ready(0.06) == []
    assert buffer.stats.duplicates == 3
    assert buffer.stats.received == 6


def test_sequence_wraparound_extends_to_32_bits():
    buffer = JitterBuffer()
    out = []
    for i, seq in enumerate([65533, 65534, 65535, 0, 2, 1, 3]):
        buffer.push(packet(seq), i * FRAME)
        out += buffer.pop_ready(i * FRAME)
    assert summary(out) == [65533, 65534, 65535, 65536, 65537, 65538, 65539]
    assert np.array_equal(out[4].pcm, ulaw_decode(payload(1)))
    assert buffer.stats.reordered == 1 and buffer.stats.lost == 0


def test_concealment_across_the_wrap_numbers_the_gap_correctly():
    buffer = JitterBuffer(depth_frames=1)
    buffer.push(packet(65535), 0.0)
    buffer.push(packet(1), 0.04)
    assert summary(buffer.pop_ready(1.0)[:3]) == [65535, ("lost", 65536), 65537]


def test_first_packet_fixes_the_base():
    buffer = JitterBuffer()
    buffer.push(packet(10), 0.0)
    buffer.push(packet(9), 0.001)
    assert summary(buffer.pop_ready(0.001)) == [10]
    assert buffer.stats.late == 1


def test_wrong_payload_types_are_dropped_and_counted():
    buffer = JitterBuffer(depth_frames=1)
    buffer.push(packet(0), 0.00)
    buffer.push(packet(1, pt=13, data=b"\x40"), 0.02)  # comfort noise
    buffer.push(packet(2, pt=101, data=b"\x01\x0a\x00\xa0"), 0.04)  # telephone-event
    buffer.push(packet(3), 0.06)
    assert summary(buffer.pop_ready(0.06)) == [0, ("lost", 1), ("lost", 2), 3]
    assert buffer.stats.wrong_payload_type == 2
    assert buffer.stats.received == 4


def test_alaw_packets_are_decoded_as_alaw():
    pcm = (np.sin(np.arange(160) / 3) * 8000).astype(np.int16)
    buffer = JitterBuffer()
    buffer.push(packet(0, pt=8, data=alaw_encode(pcm)), 0.0)
    buffer.push(packet(1, pt=0), 0.02)
    out = buffer.pop_ready(0.02)
    assert np.array_equal(out[0].pcm, alaw_decode(alaw_encode(pcm)))
    assert np.array_equal(out[1].pcm, ulaw_decode(payload(1)))


def test_short_payload_is_padded_and_long_one_cut_to_one_frame():
    buffer = JitterBuffer()
    buffer.push(packet(0, data=b"\x10" * 29), 0.0)  # what Asterisk sends at the end of a file
    buffer.push(packet(1, data=b"\x20" * 200), 0.02)
    short, long = buffer.pop_ready(0.02)
    assert np.array_equal(short.pcm[:29], ulaw_decode(b"\x10" * 29)) and not short.pcm[29:].any()
    assert np.array_equal(long.pcm, ulaw_decode(b"\x20" * 160))


def test_new_ssrc_rebases_after_what_the_old_stream_left():
    buffer = JitterBuffer(depth_frames=1)
    buffer.push(packet(500), 0.00)
    buffer.push(packet(502), 0.04)  # 501 lost
    buffer.push(packet(7, ssrc=999), 0.06)  # the far end restarted with a new SSRC and counter
    buffer.push(packet(8, ssrc=999), 0.08)
    assert summary(buffer.pop_ready(0.08)) == [500, ("lost", 501), 502, 7, 8]
    assert buffer.stats.ssrc_changes == 1
    assert buffer.stats.late == 0


def test_stall_is_filled_with_silence_and_the_resumed_stream_is_not_dropped():
    # Capture a-*: Asterisk stopped for 0.52 s, then went on with the next sequence number.
    buffer = JitterBuffer(depth_frames=3)
    out = []
    for seq in range(3):
        buffer.push(packet(seq), seq * FRAME)
        out += buffer.pop_ready(seq * FRAME)
    t = 2 * FRAME
    while t < 0.56:  # the endpoint's 20 ms tick
        t += FRAME
        out += buffer.pop_ready(t)
    # newest arrived at 0.04: slot(3) = 0.06, concealed from 0.12 on, one per tick
    concealed = [f for f in out if f.concealed]
    assert len(concealed) == 23
    assert [f.seq for f in concealed] == list(range(3, 26))
    assert concealed[0].arrival == pytest.approx(0.06)
    for seq in (3, 4):
        buffer.push(packet(seq), 0.57 + (seq - 3) * FRAME)
        out += buffer.pop_ready(0.57 + (seq - 3) * FRAME)
    assert summary(out[-2:]) == [3, 4]
    assert buffer.stats.resyncs == 1
    assert buffer.stats.late == 0
    # the resumed stream is timed from its own arrival, not from the concealed slots
    assert buffer.pop_ready(0.59 + 3.9 * FRAME) == []
    assert summary(buffer.pop_ready(0.59 + 4.1 * FRAME)) == [("lost", 5)]


def test_sequence_leap_ahead_of_elapsed_time_rebases_instead_of_concealing_the_jump():
    buffer = JitterBuffer()
    buffer.push(packet(0), 0.00)
    buffer.push(packet(1), 0.02)
    buffer.push(packet(5000), 0.04)
    buffer.push(packet(5001), 0.06)
    assert summary(buffer.pop_ready(0.06)) == [0, 1, 5000, 5001]
    assert buffer.stats.resyncs == 1 and buffer.stats.lost == buffer.stats.concealed == 0


def test_sequence_counter_going_backwards_rebases():
    buffer = JitterBuffer()
    for i, seq in enumerate([30000, 30001, 100, 101]):
        buffer.push(packet(seq), i * FRAME)
    assert summary(buffer.pop_ready(0.06)) == [30000, 30001, 100, 101]
    assert buffer.stats.resyncs == 1 and buffer.stats.late == 0


def test_burst_of_delayed_packets_conceals_only_what_is_missing():
    buffer = JitterBuffer(depth_frames=3)
    buffer.push(packet(0), 0.0)
    assert summary(buffer.pop_ready(0.0)) == [0]
    # a 200 ms network hiccup: 1..10 arrive together, 6 never does
    for seq in [1, 2, 3, 4, 5, 7, 8, 9, 10]:
        buffer.push(packet(seq), 0.2)
    out = buffer.pop_ready(0.2)
    # slot(6) = 0.2 - 4 frames = 0.12; due at 0.18: already overdue
    assert summary(out) == [1, 2, 3, 4, 5, ("lost", 6), 7, 8, 9, 10]


def test_no_concealment_before_the_slot_of_the_next_packet_plus_depth():
    buffer = JitterBuffer(depth_frames=0)
    buffer.push(packet(0), 5.0)
    buffer.pop_ready(5.0)
    assert buffer.pop_ready(5.0199) == []
    assert summary(buffer.pop_ready(5.02)) == [("lost", 1)]


@pytest.mark.parametrize(("kwargs"), [{"frame_samples": 0}, {"depth_frames": -1}, {"sample_rate": 0}])
def test_invalid_configuration_is_rejected(kwargs):
    with pytest.raises(ValueError):
        JitterBuffer(**kwargs)


# --- replays of real Asterisk 22 RTP (asterisk/captures/*.rtp.csv) ---------------------------

def capture(name: str) -> list[dict]:
    with require(CAPTURES_DIR / f"{name}.rtp.csv").open() as f:
        return list(csv.DictReader(f))


def replay(rows: list[dict]) -> tuple[list[Frame], JitterBuffer]:
    """Push packets at their recorded arrival times, popping on arrival and on a 20 ms tick."""
    buffer = JitterBuffer()
    out: list[Frame] = []
    tick = float(rows[0]["arrival_t"])
    for row in rows:
        arrival = float(row["arrival_t"])
        while tick + FRAME <= arrival:
            tick += FRAME
            out += buffer.pop_ready(tick)
        buffer.push(
            RtpPacket(
                int(row["pt"]), int(row["seq"]), int(row["rtp_ts"]), int(row["ssrc"]), b"\xff" * int(row["payload_len"])
            ),
            arrival,
        )
        out += buffer.pop_ready(arrival)
    return out, buffer


def test_replay_of_a_stream_that_pauses_keeps_every_packet_and_wall_time():
    rows = capture("a-create-dial-early-media")
    out, buffer = replay(rows)
    real = [f for f in out if not f.concealed]
    assert [f.seq for f in real] == [int(r["seq"]) for r in rows]  # none lost, none reordered
    assert buffer.stats.late == 0 and buffer.stats.resyncs == 1
    assert buffer.stats.lost == 0 and buffer.stats.concealed > 0  # a pause is concealed, nothing was lost
    span = float(rows[-1]["arrival_t"]) - float(rows[0]["arrival_t"])
    assert abs(len(out) * FRAME - span) <= 2 * FRAME  # the 0.52 s pause became silence


def test_replay_of_music_start_bursts_conceals_nothing():
    out, buffer = replay(capture("h-local-channel-formats.default"))
    assert buffer.stats.lost == buffer.stats.concealed == buffer.stats.late == 0
    assert len(out) == buffer.stats.received


def test_loss_counts_skipped_sequence_numbers_that_never_arrive():
    buffer = JitterBuffer(depth_frames=2)
    for seq in [0, 1, 3, 4, 7, 8]:  # 2, 5 and 6 never come
        buffer.push(packet(seq), seq * FRAME)
        buffer.pop_ready(seq * FRAME)
    buffer.pop_ready(8 * FRAME + 2 * FRAME)  # every gap overdue, the frame after 8 not yet
    assert (buffer.stats.lost, buffer.stats.concealed, buffer.stats.late) == (3, 3, 0)
    buffer.pop_ready(1.0)  # the stream stopped: its silence is concealed, not lost
    assert buffer.stats.lost == 3 and buffer.stats.concealed > 3


def test_a_reordered_packet_fills_its_gap_and_is_not_lost():
    buffer = JitterBuffer(depth_frames=3)
    for seq, t in [(0, 0.00), (2, 0.04), (3, 0.06), (1, 0.065)]:
        buffer.push(packet(seq), t)
    assert buffer.stats.lost == 0 and buffer.stats.reordered == 1
    assert summary(buffer.pop_ready(0.07)) == [0, 1, 2, 3]
    assert buffer.stats.concealed == 0


def test_a_gap_before_a_packet_that_comes_after_its_slot_is_still_lost():
    """Jitter on top of loss: 2 never comes and 3 comes after its slot was concealed. The buffer
    resyncs on 3, and 2 is counted lost all the same."""
    buffer = JitterBuffer(depth_frames=2)
    for seq, t in [(0, 0.00), (1, 0.02)]:
        buffer.push(packet(seq), t)
    buffer.pop_ready(0.20)  # 2, 3 and more concealed: nothing came
    buffer.push(packet(3), 0.21)
    assert buffer.stats.resyncs == 1 and buffer.stats.lost == 1
    buffer.push(packet(4), 0.23)
    assert buffer.stats.lost == 1


def test_next_due_is_when_the_next_missing_frame_would_be_concealed():
    jb = JitterBuffer(160, depth_frames=3)
    assert jb.next_due() is None
    jb.push(packet(10), 1.0)
    assert jb.next_due() == float("-inf")  # frame 10 is here: ready now
    assert len(jb.pop_ready(1.0)) == 1
    due = jb.next_due()
    assert due == pytest.approx(1.0 + FRAME + 3 * FRAME)  # frame 11's slot plus the depth
    assert jb.pop_ready(due - 1e-6) == []
    assert [f.concealed for f in jb.pop_ready(due)] == [True]
    jb.push(packet(13), 1.5)  # a newer packet moves the timeline
    assert jb.next_due() == pytest.approx(1.5 - FRAME + 3 * FRAME)
