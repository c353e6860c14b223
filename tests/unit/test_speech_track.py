"""The app's side of a call laid on the far end's timeline (``app.media.recorder.SpeechTrack``).

Time is the far end's: every 20 ms frame heard moves the present on by 160 samples. The frames we
send leave on a clock of their own; a manual clock orders the two streams, jitter included, as
they would meet in the event loop.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.tones import ToneDetector, dtmf_signal
from app.media.recorder import SpeechTrack
from tests.fakes.clock import ManualClock

FRAME = 160
RATE = 8000


def voice(seconds: float, value: int = 1000) -> np.ndarray:
    """A recognisable "utterance": a ramp, so any shift or gap shows."""
    n = round(seconds * RATE)
    return (value + np.arange(n) % 1000).astype(np.int16)


def far_frame(value: int = 7) -> np.ndarray:
    return np.full(FRAME, value, np.int16)


class Call:
    """Feeds a track as a call would and keeps what it returns (the two files)."""

    def __init__(self, track: SpeechTrack) -> None:
        self.track = track
        self.ours: list[np.ndarray] = []
        self.mixed: list[np.ndarray] = []

    def hear(self, frames: int = 1, value: int = 7) -> None:
        for _ in range(frames):
            ours, mixed = self.track.heard(far_frame(value))
            self.ours.append(ours)
            self.mixed.append(mixed)

    def send(self, pcm: np.ndarray, *, talkspurt_start: bool) -> None:
        self.track.sent(pcm, talkspurt_start=talkspurt_start)

    def end(self) -> tuple[np.ndarray, np.ndarray]:
        ours, mixed = self.track.flush()
        return np.concatenate([*self.ours, ours]), np.concatenate([*self.mixed, mixed])


def run_on_a_clock(
    utterances: list[tuple[float, np.ndarray]], seconds: float, *, jitter: float, seed: int = 1, block_seconds: float = 0.0
) -> Call:
    """Far-end frames every 20 ms and our utterances sent paced from their start time, each event
    late by up to ``jitter`` seconds, applied in the order a manual clock reaches them."""
    rng = np.random.default_rng(seed)
    clock = ManualClock()
    call = Call(SpeechTrack(RATE, latency_seconds=0.2, block_seconds=block_seconds))
    events: list[tuple[float, int, object]] = []
    late = 0.0
    for k in range(round(seconds / 0.02)):
        # A frame is heard once it has arrived (20 ms of audio) and the jitter buffer lets it go,
        # in order: a late one holds back those behind it.
        late = max(late, (k + 1) * 0.02 + rng.uniform(0, jitter))
        events.append((late, 0, None))
    for start, pcm in utterances:
        late = 0.0
        for n, offset in enumerate(range(0, len(pcm), FRAME)):
            late = max(late, start + n * 0.02 + rng.uniform(0, jitter))  # the pacer sends in order
            events.append((late, 1, (n == 0, pcm[offset : offset + FRAME])))
    for at, kind, payload in sorted(events, key=lambda e: (e[0], e[1])):
        clock.t = at
        if kind == 0:
            call.hear()
        else:
            first, frame = payload  # type: ignore[misc]
            call.send(frame, talkspurt_start=first)
    return call


def test_nothing_said_is_silence_as_long_as_the_far_end():
    call = Call(SpeechTrack(RATE))
    call.hear(100, value=123)
    ours, mixed = call.end()
    assert len(ours) == len(mixed) == 100 * FRAME
    assert not ours.any()
    assert (mixed == 123).all()
    assert call.track.said_samples == 0


def test_an_utterance_lands_where_the_far_end_was_when_it_left():
    call = Call(SpeechTrack(RATE))
    call.hear(50)  # 1.0 s heard
    words = voice(0.4)
    for offset in range(0, len(words), FRAME):
        call.send(words[offset : offset + FRAME], talkspurt_start=offset == 0)
        call.hear()
    call.hear(25)
    ours, mixed = call.end()
    assert len(ours) == 95 * FRAME
    start = 50 * FRAME
    assert not ours[:start].any(), "silence before our words"
    assert np.array_equal(ours[start : start + len(words)], words)
    assert not ours[start + len(words) :].any(), "silence after them"
    assert np.array_equal(mixed[start : start + len(words)], words + 7)


@pytest.mark.parametrize("jitter", [0.0, 0.015, 0.06])
def test_jitter_between_sending_and_hearing_neither_splits_nor_shifts_our_words(jitter: float):
    greeting, intro = voice(0.8, 2000), voice(1.2, 5000)
    call = run_on_a_clock([(2.0, greeting), (4.0, intro)], seconds=7.0, jitter=jitter)
    ours, _ = call.end()
    assert len(ours) == round(7.0 / 0.02) * FRAME
    for start, words in ((2.0, greeting), (4.0, intro)):
        # The present when the first frame left is the far-end frames heard by then: within a
        # frame (+ the jitter) of the send time, and every word follows without a gap.
        at = int(np.flatnonzero(ours == words[0])[0])
        assert abs(at / RATE - start) <= 0.02 + jitter + 1e-9
        assert np.array_equal(ours[at : at + len(words)], words)
    spoken = np.zeros(len(ours), bool)
    for words in (greeting, intro):
        at = int(np.flatnonzero(ours == words[0])[0])
        spoken[at : at + len(words)] = True
    assert not ours[~spoken].any(), "silence everywhere else"


def test_a_new_talkspurt_starts_at_its_own_present_not_after_the_last_one():
    call = Call(SpeechTrack(RATE))
    call.send(voice(0.1), talkspurt_start=True)
    call.hear(30)
    call.send(voice(0.1, 3000), talkspurt_start=True)
    call.hear(30)
    ours, _ = call.end()
    assert ours[0] == 1000 and ours[30 * FRAME] == 3000
    assert not ours[800 : 30 * FRAME].any()


def test_a_frame_later_than_the_latency_is_kept_as_early_as_still_possible():
    call = Call(SpeechTrack(RATE, latency_seconds=0.04))
    call.send(voice(0.02), talkspurt_start=True)
    call.hear(10)  # the send loop stalled for 200 ms: the next frame's place is final already
    call.send(voice(0.02, 3000), talkspurt_start=False)
    call.hear(5)
    ours, _ = call.end()
    assert ours[0] == 1000
    late = int(np.flatnonzero(ours == 3000)[0])
    assert late == 8 * FRAME  # the first sample not yet final when it came
    assert call.track.dropped_samples == 0


def test_key_tones_are_mixed_in_at_the_present_and_decode_as_the_keys():
    call = Call(SpeechTrack(RATE))
    call.hear(25)
    call.track.place(dtmf_signal("5#"))
    call.hear(50)
    ours, _ = call.end()
    assert not ours[: 25 * FRAME].any()
    detector = ToneDetector()
    heard = [
        event.detail["digit"]
        for offset in range(0, len(ours), FRAME)
        for event in detector.push(ours[offset : offset + FRAME], offset / RATE)
        if event.kind == "dtmf"
    ]
    assert heard == ["5", "#"]


def test_what_is_sent_past_the_far_ends_end_is_cut_and_counted():
    call = Call(SpeechTrack(RATE))
    call.hear(5)
    call.send(voice(0.5), talkspurt_start=True)  # the far end stops sending now
    ours, mixed = call.end()
    assert len(ours) == len(mixed) == 5 * FRAME
    assert call.track.dropped_samples == 4000


def test_the_mix_is_clipped_not_wrapped():
    call = Call(SpeechTrack(RATE))
    call.send(np.full(FRAME, 30000, np.int16), talkspurt_start=True)
    call.hear(1, value=30000)
    _, mixed = call.end()
    assert (mixed == 32767).all()


def test_audio_far_ahead_of_a_silent_far_end_is_dropped_not_kept_in_memory():
    track = SpeechTrack(RATE, max_ahead_seconds=1.0)
    track.sent(voice(0.5), talkspurt_start=True)
    track.sent(voice(0.8), talkspurt_start=False)
    assert (track.said_samples, track.dropped_samples) == (4000, 6400)


def test_samples_made_final_a_block_at_a_time_are_the_same_samples():
    """The recordings take the final samples half a second at a time (fewer, larger writes):
    the files are the same, sample for sample, and between blocks nothing is returned."""
    utterances = [(1.0, voice(1.3, 1000)), (2.9, voice(0.7, 3000))]
    by_frame = run_on_a_clock(utterances, seconds=5.0, jitter=0.03)
    by_block = run_on_a_clock(utterances, seconds=5.0, jitter=0.03, block_seconds=0.5)
    for a, b in zip(by_frame.end(), by_block.end(), strict=True):
        assert np.array_equal(a, b)
    sizes = [len(ours) for ours in by_block.ours if len(ours)]
    assert sizes and all(size >= 0.5 * RATE for size in sizes), sizes
