"""Pacer, RtpSender and StreamingWavWriter (pure, exact times), then RtpEndpoint over real UDP on 127.0.0.1.

Receive tests run the endpoint on a ManualClock, so which frames are concealed does not depend
on how fast the machine is; only the paced-sending tests use the real clock, with loose bounds.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import numpy as np
import pytest

from app.clock import MonotonicClock
from app.media import endpoint as endpoint_module
from app.media.endpoint import NoFreePortError, RtpEndpoint
from app.media.g711 import alaw_encode, ulaw_decode, ulaw_encode
from app.media.pacing import Pacer, RtpSender
from app.media.recorder import StreamingWavWriter
from app.media.rtp import RtpPacket, parse_rtp
from app.media.wavfile import read_wav
from tests.fakes.clock import ManualClock

FRAME = 0.02
TIMEOUT = 5.0


# --- Pacer ---------------------------------------------------------------------------------


def test_deadlines_are_absolute():
    pacer = Pacer(start=100.0)
    assert [pacer.deadline(n) for n in (0, 1, 50)] == [100.0, 100.02, 101.0]


def test_late_wakeups_do_not_accumulate_as_drift():
    pacer = Pacer(start=0.0)
    sent = []
    now = 0.0
    for _ in range(100):
        due = pacer.next_send_time(now)
        now = max(now, due) + 0.007  # every wake-up is 7 ms late
        sent.append(due)
    assert sent == pytest.approx([n * FRAME for n in range(100)])
    assert pacer.reanchors == 0


def test_small_lag_is_caught_up_by_sending_at_once():
    pacer = Pacer(start=0.0, max_lag_frames=3)
    assert pacer.next_send_time(0.0) == 0.0
    # the loop stalled 50 ms: the next two frames are overdue, but within 3 frames of lag
    assert pacer.next_send_time(0.07) == pytest.approx(0.02)
    assert pacer.next_send_time(0.07) == pytest.approx(0.04)
    assert pacer.next_send_time(0.07) == pytest.approx(0.06)
    assert pacer.next_send_time(0.07) == pytest.approx(0.08)
    assert pacer.reanchors == 0


def test_long_stall_reanchors_instead_of_bursting():
    pacer = Pacer(start=0.0, max_lag_frames=3)
    pacer.next_send_time(0.0)
    assert pacer.next_send_time(0.5) == 0.5  # 480 ms late: no burst of 24 packets
    assert pacer.reanchors == 1
    assert pacer.next_send_time(0.5) == pytest.approx(0.52)
    assert pacer.deadline(10) == pytest.approx(0.5 + 9 * FRAME)


def test_resume_continues_the_schedule_when_audio_follows_within_a_frame():
    pacer = Pacer(start=0.0)
    for _ in range(5):
        pacer.next_send_time(0.0)  # frames 0..4; the slot of frame 4 ends at 0.10
    assert pacer.resume(0.115) == 0.0
    assert pacer.next_send_time(0.115) == pytest.approx(0.10)


def test_resume_after_idle_restarts_at_now_and_reports_the_idle_time():
    pacer = Pacer(start=0.0)
    for _ in range(5):
        pacer.next_send_time(0.0)
    assert pacer.resume(1.0) == pytest.approx(0.9)
    assert pacer.next_send_time(1.0) == pytest.approx(1.0)
    assert pacer.next_send_time(1.0) == pytest.approx(1.02)


# --- RtpSender -----------------------------------------------------------------------------


def test_sender_headers_are_continuous_and_marked_at_the_start():
    sender = RtpSender(ssrc=0xCAFE, payload_type=0, first_sequence=65534, first_timestamp=0xFFFFFF00)
    packets = [sender.next_packet(bytes([i]) * 160) for i in range(4)]
    assert [p.sequence for p in packets] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in packets] == [0xFFFFFF00, 0xFFFFFFA0, 0x40, 0xE0]
    assert [p.marker for p in packets] == [True, False, False, False]
    assert {(p.ssrc, p.payload_type) for p in packets} == {(0xCAFE, 0)}
    assert packets[2].payload == b"\x02" * 160


def test_talkspurt_after_idle_sets_marker_and_skips_the_idle_time_in_timestamps():
    sender = RtpSender(ssrc=1, payload_type=8, first_sequence=10, first_timestamp=1000)
    sender.next_packet(b"a" * 160)
    sender.start_talkspurt(0.5)
    resumed = sender.next_packet(b"b" * 160)
    following = sender.next_packet(b"c" * 160)
    assert (resumed.sequence, resumed.timestamp, resumed.marker) == (11, 1000 + 160 + 4000, True)
    assert (following.sequence, following.timestamp, following.marker) == (12, 1000 + 320 + 4000, False)
    assert resumed.payload_type == 8


def test_sender_starts_at_random_sequence_and_timestamp():
    starts = {(p.sequence, p.timestamp) for p in (RtpSender(ssrc=1).next_packet(b"") for _ in range(20))}
    assert len(starts) > 15


# --- StreamingWavWriter --------------------------------------------------------------------


def test_streaming_writer_output_reads_back_and_is_a_standard_wav(tmp_path):
    import wave

    path = tmp_path / "deep" / "rec.wav"
    chunks = [np.full(160, i * 100, np.int16) for i in range(50)]
    with StreamingWavWriter(path) as writer:
        for chunk in chunks:
            writer.write(chunk)
        assert writer.duration == 1.0
    assert writer.closed
    assert np.array_equal(read_wav(path).pcm, np.concatenate(chunks))
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, 8000)
    data = path.read_bytes()
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert struct.unpack_from("<I", data, 40)[0] == len(data) - 44


def test_unfinished_recording_is_readable_after_a_crash(tmp_path):
    path = tmp_path / "crash.wav"
    writer = StreamingWavWriter(path)
    writer.write(np.arange(800, dtype=np.int16))
    writer._file.flush()  # the process dies here: close() never runs
    assert np.array_equal(read_wav(path).pcm, np.arange(800, dtype=np.int16))
    writer.close()


def test_streaming_writer_close_is_idempotent_and_write_after_close_fails(tmp_path):
    writer = StreamingWavWriter(tmp_path / "x.wav")
    writer.write(np.zeros(10, np.int16))
    writer.close()
    writer.close()
    assert read_wav(tmp_path / "x.wav").pcm.shape == (10,)
    with pytest.raises(ValueError):
        writer.write(np.zeros(10, np.int16))


def test_streaming_writer_rejects_non_int16(tmp_path):
    with StreamingWavWriter(tmp_path / "x.wav") as writer, pytest.raises(TypeError):
        writer.write(np.zeros(10, np.float32))


# --- RtpEndpoint: helpers ------------------------------------------------------------------


class Peer(asyncio.DatagramProtocol):
    """The far end (Asterisk's side of externalMedia): a plain UDP socket on 127.0.0.1."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[float, RtpPacket, tuple]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.put_nowait((time.monotonic(), parse_rtp(data), addr))

    @property
    def address(self) -> tuple[str, int]:
        return self.transport.get_extra_info("sockname")[:2]

    def send(self, endpoint: RtpEndpoint, *datagrams: bytes) -> None:
        for datagram in datagrams:
            self.transport.sendto(datagram, endpoint.local_address)

    async def take(self, count: int) -> list[tuple[float, RtpPacket, tuple]]:
        return [await asyncio.wait_for(self.received.get(), TIMEOUT) for _ in range(count)]


@pytest.fixture
async def peer():
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    yield protocol
    protocol.transport.close()


@pytest.fixture
def clock():
    return ManualClock(start=1000.0)


@pytest.fixture
async def endpoint(clock):
    ep = await RtpEndpoint.open("127.0.0.1", 0, 0, clock=clock)
    yield ep
    await ep.close()


@pytest.fixture
async def real_time_endpoint():
    ep = await RtpEndpoint.open("127.0.0.1", 0, 0, clock=MonotonicClock())
    yield ep
    await ep.close()


def rtp(seq: int, *, ssrc: int = 0x5EED, pt: int = 0, payload: bytes | None = None) -> bytes:
    data = payload if payload is not None else bytes([seq % 251]) * 160
    return RtpPacket(pt, seq & 0xFFFF, seq * 160, ssrc, data).serialize()


async def until(condition, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


async def take_frames(endpoint: RtpEndpoint, count: int) -> list:
    frames = endpoint.frames()
    return [await asyncio.wait_for(anext(frames), TIMEOUT) for _ in range(count)]


def seqs(frames) -> list:
    return [("lost", f.seq) if f.concealed else f.seq for f in frames]


# --- RtpEndpoint: receiving ----------------------------------------------------------------


async def test_in_order_packets_come_out_as_decoded_frames(endpoint, peer):
    peer.send(endpoint, *(rtp(seq) for seq in range(100, 110)))
    frames = await take_frames(endpoint, 10)
    assert seqs(frames) == list(range(100, 110))
    assert all(np.array_equal(f.pcm, ulaw_decode(bytes([f.seq % 251]) * 160)) for f in frames)
    assert all(f.arrival == 1000.0 for f in frames)  # arrival time on the endpoint's clock
    stats = endpoint.stats
    assert (stats.received, stats.received_bytes, stats.lost, stats.malformed) == (10, 10 * 172, 0, 0)


async def test_every_frame_received_is_told_before_frames_yields_it(endpoint, peer):
    # The call's detector is told what it will hear while the frame waits for its reader.
    told: list[tuple[int, int]] = []
    endpoint.on_frame = lambda frame: told.append((frame.seq, endpoint._unread.qsize()))
    peer.send(endpoint, *(rtp(seq) for seq in [0, 1, 3, 2]))
    await until(lambda: len(told) == 4)
    assert [seq for seq, _ in told] == [0, 1, 2, 3]  # in call order, as frames() gives them
    assert [queued for _, queued in told] == [0, 1, 2, 3]  # each before it was queued for the reader
    assert seqs(await take_frames(endpoint, 4)) == [0, 1, 2, 3]


async def test_a_failing_on_frame_loses_no_frame(endpoint, peer):
    def broken(frame):
        raise ValueError("a detector bug")

    endpoint.on_frame = broken
    peer.send(endpoint, *(rtp(seq) for seq in range(3)))
    assert seqs(await take_frames(endpoint, 3)) == [0, 1, 2]


async def test_reordered_packets_are_put_back_in_order(endpoint, peer):
    peer.send(endpoint, *(rtp(seq) for seq in [0, 1, 3, 2, 4]))
    assert seqs(await take_frames(endpoint, 5)) == [0, 1, 2, 3, 4]
    assert endpoint.stats.reordered == 1


async def test_duplicates_are_dropped(endpoint, peer):
    peer.send(endpoint, *(rtp(seq) for seq in [0, 1, 1, 2, 0]))
    await until(lambda: endpoint.stats.received == 5)
    assert seqs(await take_frames(endpoint, 3)) == [0, 1, 2]
    assert endpoint.stats.duplicates == 2


async def test_gaps_are_concealed_when_overdue(endpoint, peer, clock):
    peer.send(endpoint, *(rtp(seq) for seq in [0, 1, 4, 5]))
    await until(lambda: endpoint.stats.received == 4)
    clock.advance(0.03)  # the slot of 3 plus the 60 ms depth has passed, the slot of 6 has not
    frames = await take_frames(endpoint, 6)
    assert seqs(frames) == [0, 1, ("lost", 2), ("lost", 3), 4, 5]
    assert not frames[2].pcm.any() and not frames[3].pcm.any()
    assert (endpoint.stats.lost, endpoint.stats.concealed) == (2, 2)


async def test_garbage_datagrams_are_counted_and_do_not_disturb_the_stream(endpoint, peer):
    garbage = [b"garbage!", b"\x80", bytes.fromhex("80c80006") + bytes(24), b"\x40" + bytes(20)]
    peer.send(endpoint, rtp(0), *garbage[:2], rtp(1), *garbage[2:], rtp(2))
    with bound_udp_socket() as raw:  # asyncio will not send an empty datagram, a plain socket will
        raw.sendto(b"", endpoint.local_address)
    assert seqs(await take_frames(endpoint, 3)) == [0, 1, 2]
    await until(lambda: endpoint.stats.malformed == len(garbage) + 1)
    assert endpoint.stats.received == 3
    assert endpoint.stats.received_bytes == 3 * 172 + sum(len(g) for g in garbage)


async def test_other_payload_types_are_dropped_and_their_slot_concealed(endpoint, peer, clock):
    peer.send(endpoint, rtp(0), rtp(1, pt=13, payload=b"\x40"), rtp(2))
    await until(lambda: endpoint.stats.received == 3)
    clock.advance(0.05)  # slot(1) = -0.02, overdue at +0.04; slot(3) + depth is +0.08
    assert seqs(await take_frames(endpoint, 3)) == [0, ("lost", 1), 2]
    assert endpoint.stats.lost == 1
    assert endpoint.stats.wrong_payload_type == 1


async def test_alaw_is_received_as_well(endpoint, peer):
    tone = (np.sin(np.arange(160) / 4) * 9000).astype(np.int16)
    peer.send(endpoint, rtp(7, pt=8, payload=alaw_encode(tone)))
    (frame,) = await take_frames(endpoint, 1)
    assert np.abs(frame.pcm.astype(int) - tone).max() < 300


async def test_sequence_wraparound(endpoint, peer):
    peer.send(endpoint, *(rtp(seq) for seq in [65534, 65535, 0, 1]))
    assert seqs(await take_frames(endpoint, 4)) == [65534, 65535, 65536, 65537]


async def test_new_ssrc_is_counted_and_continues_the_timeline(endpoint, peer):
    peer.send(endpoint, rtp(10), rtp(11), rtp(500, ssrc=0xBEEF), rtp(501, ssrc=0xBEEF))
    assert seqs(await take_frames(endpoint, 4)) == [10, 11, 500, 501]
    assert endpoint.stats.ssrc_changes == 1


async def test_silence_fills_the_timeline_when_the_far_end_stops_sending(endpoint, peer, clock):
    peer.send(endpoint, rtp(0))
    await take_frames(endpoint, 1)
    for _ in range(5):
        clock.advance(FRAME)
    frames = await take_frames(endpoint, 2)
    assert seqs(frames) == [("lost", 1), ("lost", 2)]
    assert [f.arrival for f in frames] == pytest.approx([1000.02, 1000.04])


async def test_frames_received_and_not_read_are_taken_at_once_and_the_end_is_kept(endpoint, peer):
    peer.send(endpoint, *(rtp(seq) for seq in range(100, 104)))
    await until(lambda: endpoint.stats.received == 4)
    assert seqs(endpoint.take_unread()) == [100, 101, 102, 103]
    assert endpoint.take_unread() == []  # nothing twice
    await endpoint.close()
    assert endpoint.take_unread() == []
    assert [f async for f in endpoint.frames()] == []  # the end marker is still there for a reader


async def test_a_stall_of_the_loop_shared_with_the_sender_conceals_and_drops_nothing(real_time_endpoint, peer):
    """The simulated PBX sends from the app's own event loop. When that loop stalls (a starved
    test machine), the PBX's timer and the endpoint's concealment timer come due in the same turn:
    the PBX catches up first, and its packets wait in the socket while the endpoint decides. It
    must read them, not conceal their frames and then drop them as late."""
    loop = asyncio.get_running_loop()
    packets = 60
    loop.call_later(0.3, time.sleep, 0.4)  # something else holds the loop for 400 ms

    due = loop.time()
    for seq in range(packets):  # paced on absolute deadlines, caught up at once when behind
        due += 0.02
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        peer.send(real_time_endpoint, rtp(seq))
    await until(lambda: real_time_endpoint.stats.received == packets)
    frames = await take_frames(real_time_endpoint, packets)

    stats = real_time_endpoint.stats
    assert (stats.concealed, stats.late, stats.lost) == (0, 0, 0), stats
    assert seqs(frames) == list(range(packets))


async def test_slow_reader_loses_the_oldest_frames_not_the_newest(clock, peer, monkeypatch):
    monkeypatch.setattr(endpoint_module, "_MAX_UNREAD_FRAMES", 5)
    ep = await RtpEndpoint.open("127.0.0.1", 0, 0, clock=clock)
    try:
        peer.send(ep, *(rtp(seq) for seq in range(8)))
        await until(lambda: ep.stats.received == 8)
        assert ep.stats.unread_frames_dropped == 3
        assert seqs(await take_frames(ep, 5)) == [3, 4, 5, 6, 7]
    finally:
        await ep.close()


async def test_recording_holds_exactly_the_frames_delivered(clock, peer, tmp_path):
    ep = await RtpEndpoint.open("127.0.0.1", 0, 0, clock=clock)
    path = tmp_path / "calls" / "call.wav"
    ep.record_to(path)
    peer.send(ep, *(rtp(seq) for seq in [0, 1, 2, 4, 5]))
    await until(lambda: ep.stats.received == 5)
    clock.advance(0.03)
    frames = await take_frames(ep, 6)
    assert seqs(frames) == [0, 1, 2, ("lost", 3), 4, 5]
    with pytest.raises(RuntimeError, match="already recording"):
        ep.record_to(tmp_path / "other.wav")
    await ep.close()
    audio = read_wav(path)
    assert audio.sample_rate == 8000
    assert np.array_equal(audio.pcm, np.concatenate([f.pcm for f in frames]))


# --- RtpEndpoint: sending ------------------------------------------------------------------


def tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)


async def test_one_second_is_sent_as_50_paced_packets(real_time_endpoint, peer):
    ep = real_time_endpoint
    ep.set_remote(*peer.address)
    pcm = tone(1.0)
    started = time.monotonic()
    assert await ep.play(pcm) is True
    elapsed = time.monotonic() - started
    received = await peer.take(50)
    packets = [p for _, p, _ in received]
    assert [(p.sequence - packets[0].sequence) & 0xFFFF for p in packets] == list(range(50))
    assert [(p.timestamp - packets[0].timestamp) & 0xFFFFFFFF for p in packets] == [160 * i for i in range(50)]
    assert [p.marker for p in packets] == [True] + [False] * 49
    assert {(p.payload_type, p.ssrc) for p in packets} == {(0, packets[0].ssrc)}
    assert b"".join(p.payload for p in packets) == ulaw_encode(pcm)
    assert {addr for _, _, addr in received} == {ep.local_address}  # sent from the receiving socket
    # the last packet leaves 49 frame times after the first: loose bounds, this is wall-clock time
    assert 0.9 <= elapsed <= 1.5
    # Paced, not sent in a burst: the packets arrive spread over the second (a loaded machine
    # only makes them later; the schedule itself is tested on a manual clock above).
    arrivals = np.array([t for t, _, _ in received])
    assert np.ptp(arrivals) >= 0.8
    stats = ep.stats
    assert (stats.sent_packets, stats.sent_bytes) == (50, 50 * 172)
    await asyncio.sleep(0.1)
    assert peer.received.empty()  # nothing queued, nothing sent


async def test_alaw_endpoint_sends_payload_type_8(peer, clock):
    ep = await RtpEndpoint.open("127.0.0.1", 0, 0, clock=clock, payload_type=8)
    try:
        ep.set_remote(*peer.address)
        pcm = tone(0.02)
        assert await ep.play(pcm)
        ((_, packet, _),) = await peer.take(1)
        assert (packet.payload_type, packet.payload) == (8, alaw_encode(pcm))
    finally:
        await ep.close()


async def test_partial_frame_is_padded_with_silence(endpoint, peer, clock):
    endpoint.set_remote(*peer.address)
    pcm = tone(0.025)  # 200 samples
    playing = asyncio.create_task(endpoint.play(pcm))
    await peer.take(1)
    assert not playing.done()
    clock.advance(FRAME)
    assert await asyncio.wait_for(playing, TIMEOUT)
    ((_, second, _),) = await peer.take(1)
    assert second.payload == ulaw_encode(pcm[160:]) + b"\xff" * 120


async def test_audio_queued_right_after_the_last_frame_continues_the_talkspurt(endpoint, peer, clock):
    endpoint.set_remote(*peer.address)
    assert await endpoint.play(tone(0.02))
    following = asyncio.create_task(endpoint.play(tone(0.02)))
    clock.advance(FRAME)
    assert await asyncio.wait_for(following, TIMEOUT)
    (_, first, _), (_, second, _) = await peer.take(2)
    assert (second.sequence - first.sequence, second.timestamp - first.timestamp) == (1, 160)
    assert (first.marker, second.marker) == (True, False)


async def test_audio_after_idle_starts_a_new_talkspurt(endpoint, peer, clock):
    endpoint.set_remote(*peer.address)
    assert await endpoint.play(tone(0.02))
    clock.advance(1.0)
    assert await endpoint.play(tone(0.02))
    (_, first, _), (_, second, _) = await peer.take(2)
    assert second.sequence - first.sequence == 1
    assert second.timestamp - first.timestamp == 8000  # 160 for the frame, 7840 idle samples
    assert second.marker


async def test_every_frame_that_leaves_is_told_with_its_talkspurt_start(endpoint, peer, clock):
    endpoint.set_remote(*peer.address)
    told: list[tuple[np.ndarray, bool]] = []
    endpoint.on_sent = lambda pcm, start: told.append((pcm.copy(), start))
    first = tone(0.03)  # two frames, the second padded
    playing = asyncio.create_task(endpoint.play(first))
    ((_, a, _),) = await peer.take(1)
    clock.advance(FRAME)
    assert await asyncio.wait_for(playing, TIMEOUT)
    following = asyncio.create_task(endpoint.play(tone(0.02)))  # right after: the same talkspurt
    clock.advance(FRAME)
    assert await asyncio.wait_for(following, TIMEOUT)
    clock.advance(1.0)
    assert await endpoint.play(tone(0.02))  # after idle: a new one
    (_, b, _), (_, c, _), (_, d, _) = await peer.take(3)
    assert [start for _, start in told] == [True, False, False, True] == [p.marker for p in (a, b, c, d)]
    assert np.array_equal(told[0][0], first[:160])
    assert np.array_equal(told[1][0], np.concatenate([first[160:], np.zeros(80, np.int16)]))
    assert [ulaw_encode(pcm) for pcm, _ in told] == [p.payload for p in (a, b, c, d)]


async def test_a_failing_on_sent_does_not_stop_the_audio(endpoint, peer, clock):
    endpoint.set_remote(*peer.address)

    def broken(pcm, start):
        raise OSError("disk full")

    endpoint.on_sent = broken
    playing = asyncio.create_task(endpoint.play(tone(0.04)))
    await peer.take(1)
    clock.advance(FRAME)
    assert await asyncio.wait_for(playing, TIMEOUT)
    await peer.take(1)


async def test_clear_outgoing_stops_playback_at_once(real_time_endpoint, peer):
    ep = real_time_endpoint
    ep.set_remote(*peer.address)
    playing = asyncio.create_task(ep.play(tone(1.0)))
    await peer.take(3)
    ep.clear_outgoing()
    assert await asyncio.wait_for(playing, TIMEOUT) is False
    sent = ep.stats.sent_packets
    assert sent < 50
    await asyncio.sleep(0.1)
    assert ep.stats.sent_packets == sent
    assert 3 + peer.received.qsize() == sent


async def test_send_pcm_rejects_anything_but_int16_mono(endpoint):
    with pytest.raises(TypeError):
        endpoint.send_pcm(np.zeros(160, np.float32))
    with pytest.raises(TypeError):
        endpoint.send_pcm(np.zeros((160, 2), np.int16))
    assert await endpoint.play(np.zeros(0, np.int16)) is True


async def test_remote_is_learned_from_the_first_valid_packet(endpoint, peer):
    endpoint.send_pcm(tone(0.02))
    await asyncio.sleep(0.05)
    assert endpoint.stats.sent_packets == 0  # nowhere to send yet: the audio waits
    peer.send(endpoint, b"not rtp")
    await until(lambda: endpoint.stats.malformed == 1)
    assert endpoint.remote_address is None
    peer.send(endpoint, rtp(1))
    ((_, packet, addr),) = await peer.take(1)
    assert endpoint.remote_address == peer.address
    assert addr == endpoint.local_address
    assert packet.payload == ulaw_encode(tone(0.02))


async def test_set_remote_wants_an_ip_address(endpoint):
    with pytest.raises(ValueError):
        endpoint.set_remote("asterisk.example", 4000)
    with pytest.raises(ValueError):
        endpoint.set_remote("127.0.0.1", 0)


# --- RtpEndpoint: ports and lifecycle ------------------------------------------------------


def bound_udp_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    return sock


def two_adjacent_free_ports() -> tuple[socket.socket, int]:
    """A socket holding port p, with p + 1 free (at the time of the check)."""
    for _ in range(50):
        first = bound_udp_socket()
        port = first.getsockname()[1]
        try:
            bound_udp_socket(port + 1).close()
        except OSError:
            first.close()
            continue
        return first, port
    raise RuntimeError("no two adjacent free UDP ports")


async def test_binds_the_first_free_port_of_the_range():
    taken, port = two_adjacent_free_ports()
    with taken:
        ep = await RtpEndpoint.open("127.0.0.1", port, port + 1)
        try:
            assert ep.local_address == ("127.0.0.1", port + 1)
        finally:
            await ep.close()


async def test_exhausted_port_range_is_a_clear_error():
    with bound_udp_socket() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(NoFreePortError, match=f"no free UDP port on 127.0.0.1 in {port}-{port}"):
            await RtpEndpoint.open("127.0.0.1", port, port)


@pytest.mark.parametrize(("args", "kwargs"), [((5000, 4000), {}), ((0, 70000), {}), ((0, 0), {"payload_type": 3})])
async def test_invalid_arguments_are_rejected(args, kwargs):
    with pytest.raises(ValueError):
        await RtpEndpoint.open("127.0.0.1", *args, **kwargs)


async def test_close_is_idempotent_and_releases_everything(clock, peer, tmp_path):
    ep = await RtpEndpoint.open("127.0.0.1", 0, 0, clock=clock)
    port = ep.local_address[1]
    ep.record_to(tmp_path / "r.wav")
    peer.send(ep, rtp(0), rtp(1))

    async def consume():
        return [frame async for frame in ep.frames()]

    consumer = asyncio.create_task(consume())
    await until(lambda: ep.stats.received == 2)
    pending = asyncio.create_task(ep.play(tone(1.0)))  # no remote: it cannot go out
    await asyncio.sleep(0)
    await ep.close()
    await ep.close()
    assert ep.closed
    assert seqs(await asyncio.wait_for(consumer, TIMEOUT)) == [0, 1]
    assert [f async for f in ep.frames()] == []  # a later iteration ends at once, too
    assert await asyncio.wait_for(pending, TIMEOUT) is False
    assert read_wav(tmp_path / "r.wav").pcm.shape == (320,)
    with pytest.raises(RuntimeError):
        ep.send_pcm(tone(0.02))
    with pytest.raises(RuntimeError):
        ep.record_to(tmp_path / "again.wav")
    bound_udp_socket(port).close()  # the port is free again


# --- RtpEndpoint: ports and strangers --------------------------------------------------------


async def test_a_port_just_closed_is_not_the_next_one_given_out():
    """Audio still on its way to an ended call must not land in the next call's endpoint."""
    first = await RtpEndpoint.open("127.0.0.1", 31000, 31009)
    port = first.local_address[1]
    await first.close()
    second = await RtpEndpoint.open("127.0.0.1", 31000, 31009)
    try:
        assert 31000 <= second.local_address[1] <= 31009 and second.local_address[1] != port
    finally:
        await second.close()


async def test_every_port_of_the_range_is_used_before_one_comes_round_again():
    ports = []
    for _ in range(4):
        endpoint = await RtpEndpoint.open("127.0.0.1", 31010, 31013)
        ports.append(endpoint.local_address[1])
        await endpoint.close()
    assert sorted(ports) == [31010, 31011, 31012, 31013]


async def test_rtp_from_another_address_than_the_far_end_is_dropped_and_counted(endpoint, peer):
    _, stranger = await asyncio.get_running_loop().create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    try:
        endpoint.set_remote(*peer.address)
        stranger.send(endpoint, rtp(500, ssrc=0xBAD), rtp(501, ssrc=0xBAD))
        peer.send(endpoint, rtp(1), rtp(2), rtp(3))
        assert seqs(await take_frames(endpoint, 3)) == [1, 2, 3]
        await until(lambda: endpoint.stats.stray == 2)
        assert endpoint.stats.received == 3 and endpoint.stats.ssrc_changes == 0
    finally:
        stranger.transport.close()


async def test_a_far_end_learned_from_its_first_packet_is_not_enforced(endpoint, peer):
    """With no address from Asterisk, the first sender is only a guess: nothing is dropped."""
    _, other = await asyncio.get_running_loop().create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    try:
        peer.send(endpoint, rtp(1))
        await until(lambda: endpoint.remote_address is not None)
        other.send(endpoint, rtp(2))
        await until(lambda: endpoint.stats.received == 2)
        assert endpoint.stats.stray == 0
    finally:
        other.transport.close()
