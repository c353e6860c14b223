"""Voice activity detection (app/audio/vad.py) on the recording corpus, heard through G.711 mu-law."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from app.audio import vad as vad_module
from app.audio.vad import (
    FRAME_SAMPLES,
    SILERO_PACKAGE,
    SILERO_STEP_SAMPLES,
    SileroStream,
    SileroVad,
    Vad,
    VadFrame,
    VadModelError,
    WebRtcGate,
    silero_model_path,
)
from app.media.wavfile import load_audio
from tests.audio_fixtures import (
    ANNOUNCEMENTS,
    HUMANS,
    RATE,
    corpus_or_none,
    human,
    line_noise,
    moh_tracks,
    music,
    prompt,
    silence,
    telephone,
)

THRESHOLD = 0.5


@pytest.fixture(scope="module")
def corpus():
    found = corpus_or_none()
    if found is None:
        pytest.skip("recording corpus not available")
    return found


def probabilities(pcm: np.ndarray, chunk: int = FRAME_SAMPLES, **stream_options) -> np.ndarray:
    stream = SileroStream(**stream_options)
    return np.array([p for i in range(0, len(pcm), chunk) for p in stream.push(pcm[i : i + chunk])])


def frames_of(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def active_steps(pcm: np.ndarray) -> np.ndarray:
    """Steps within 20 dB of the clip's loud ones: the words, not the silence around them."""
    count = len(pcm) // SILERO_STEP_SAMPLES
    steps = pcm[: count * SILERO_STEP_SAMPLES].astype(np.float64).reshape(count, SILERO_STEP_SAMPLES)
    level = 10 * np.log10(np.maximum(np.mean(steps * steps, axis=1), 1e-3))
    return level >= np.percentile(level, 95) - 20.0


def speech_share_of_active(clips: list[np.ndarray]) -> float:
    verdicts = []
    for clip in clips:
        pcm = telephone(clip)
        verdicts.append(probabilities(pcm)[active_steps(pcm)] >= THRESHOLD)
    return float(np.mean(np.concatenate(verdicts)))


# -- the model file -----------------------------------------------------------------------------


def test_model_is_found_inside_the_wheel_without_importing_it():
    path = silero_model_path()
    assert path.name == "silero_vad.onnx" and path.is_file()
    assert "silero_vad" not in sys.modules  # importing it would pull in torch


def test_missing_package_is_a_clear_error_naming_it(monkeypatch):
    monkeypatch.setattr(vad_module, "_SILERO_MODULE", "silero_vad_not_installed_here")
    with pytest.raises(VadModelError, match=SILERO_PACKAGE):
        silero_model_path()


def test_missing_model_file_is_a_clear_error_naming_the_package(tmp_path: Path):
    with pytest.raises(VadModelError, match=SILERO_PACKAGE):
        SileroVad(tmp_path / "silero_vad.onnx")


def test_one_model_per_process():
    assert SileroVad.shared() is SileroVad.shared()


# -- streaming ----------------------------------------------------------------------------------


def test_probabilities_do_not_depend_on_how_the_audio_is_chunked(corpus):
    pcm = telephone(human(corpus, "vk5qi.wav", max_seconds=6))
    by_frame = probabilities(pcm, chunk=160)
    assert len(by_frame) == len(pcm) // SILERO_STEP_SAMPLES
    assert np.mean(by_frame >= THRESHOLD) > 0.5  # there is speech to be invariant about
    for chunk in (320, 100, 333, len(pcm)):
        np.testing.assert_array_equal(probabilities(pcm, chunk=chunk), by_frame)


def test_interleaved_streams_do_not_affect_each_other(corpus):
    speech = telephone(human(corpus, "ve9qrp.wav", max_seconds=5))
    hold = telephone(music(corpus, moh_tracks(corpus)[0], 5))
    alone = [probabilities(speech), probabilities(hold)]
    streams = [SileroStream(), SileroStream()]
    together: list[list[float]] = [[], []]
    for start in range(0, len(speech), FRAME_SAMPLES):
        for index, pcm in enumerate((speech, hold)):
            together[index].extend(streams[index].push(pcm[start : start + FRAME_SAMPLES]))
    np.testing.assert_array_equal(together[0], alone[0])
    np.testing.assert_array_equal(together[1], alone[1])


class CountingModel(SileroVad):
    """The real model, counting how the steps were encoded."""

    def __init__(self) -> None:
        super().__init__()
        self.single = 0
        self.batched: list[int] = []

    def encode(self, window):
        self.single += 1
        return super().encode(window)

    def encode_many(self, windows):
        self.batched.append(len(windows))
        return super().encode_many(windows)


def test_announced_steps_of_many_streams_are_encoded_together_and_change_nothing(corpus):
    clips = [telephone(human(corpus, name, max_seconds=4)) for name in HUMANS]
    clips += [telephone(music(corpus, track, 4)) for track in moh_tracks(corpus)[:2]]
    expected = [probabilities(clip) for clip in clips]
    model = CountingModel()
    streams = [SileroStream(model) for _ in clips]
    got: list[list[float]] = [[] for _ in clips]
    for start in range(0, min(len(c) for c in clips) - 4 * FRAME_SAMPLES, 4 * FRAME_SAMPLES):
        # as the event loop does it: every call's frames arrive (and are announced), then each
        # call's task hears its own
        for stream, clip in zip(streams, clips):
            stream.lookahead(clip[start : start + 4 * FRAME_SAMPLES])
        for index, (stream, clip) in enumerate(zip(streams, clips)):
            for offset in range(0, 4 * FRAME_SAMPLES, FRAME_SAMPLES):
                got[index].extend(stream.push(clip[start + offset : start + offset + FRAME_SAMPLES]))
    for probs, alone in zip(got, expected):
        np.testing.assert_array_equal(probs, alone[: len(probs)])  # to the bit
    assert sum(model.batched) > 0.9 * (sum(model.batched) + model.single)  # nearly every step in a batch
    assert max(model.batched) >= 2 * len(clips)  # ... of every stream's steps at once


def test_audio_pushed_other_than_announced_is_heard_as_pushed(corpus):
    speech = telephone(human(corpus, "ve9qrp.wav", max_seconds=4))
    other = telephone(human(corpus, "vk5qi.wav", max_seconds=4))
    stream = SileroStream()
    got: list[float] = []
    for start in range(0, len(speech) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        # a stale announcement (a source switched away from) every third frame
        stream.lookahead((other if start % 3 == 0 else speech)[start : start + FRAME_SAMPLES])
        got.extend(stream.push(speech[start : start + FRAME_SAMPLES]))
        if start == 30 * FRAME_SAMPLES:
            stream.reset()  # a context zeroed after the next step was encoded ahead
    fresh = SileroStream()
    reference: list[float] = []
    for start in range(0, len(speech) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        reference.extend(fresh.push(speech[start : start + FRAME_SAMPLES]))
        if start == 30 * FRAME_SAMPLES:
            fresh.reset()
    np.testing.assert_array_equal(got, reference)


def test_streams_on_several_threads_share_the_model_safely(corpus):
    clips = [telephone(human(corpus, name, max_seconds=4)) for name in HUMANS]
    expected = [probabilities(clip) for clip in clips]
    results: dict[int, np.ndarray] = {}

    def work(index: int) -> None:
        results[index] = probabilities(clips[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clips))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for index, probs in enumerate(expected):
        np.testing.assert_array_equal(results[index], probs)


# -- what Silero calls speech -------------------------------------------------------------------


def test_hold_music_is_not_speech(corpus):
    for track in moh_tracks(corpus):
        probs = probabilities(telephone(load_audio(corpus.resolve(f"moh:{track}"))))
        assert np.mean(probs >= THRESHOLD) <= 0.01, track  # measured 0.0-0.2%


def test_announcements_and_other_prompts_are_speech(corpus):
    announcements = [prompt(corpus, name) for name in ANNOUNCEMENTS]
    others = [load_audio(path) for path in sorted(corpus.prompts_dir.glob("*.wav"))[::15]]
    assert speech_share_of_active(announcements) >= 0.9  # measured 0.99
    assert speech_share_of_active(others) >= 0.9  # all 558 prompts: 0.97


def test_people_are_speech(corpus):
    assert speech_share_of_active([human(corpus, name) for name in HUMANS]) >= 0.9  # measured 0.99


def test_silence_and_line_noise_are_not_speech(corpus):
    silences = [load_audio(path) for path in sorted((corpus.prompts_dir / "silence").glob("*.wav"))]
    for pcm in [*silences, line_noise(20.0, -60.0), line_noise(20.0, -45.0)]:
        assert np.max(probabilities(telephone(pcm))) < THRESHOLD


# -- a long hold does not make it deaf ----------------------------------------------------------


@pytest.mark.parametrize(("person", "track_index"), [("vk5qi.wav", 1), ("ve9qrp.wav", 3)])
def test_reseeding_keeps_the_detector_responsive_after_five_minutes_of_music(corpus, person, track_index):
    track = moh_tracks(corpus)[track_index]
    speech = human(corpus, person, max_seconds=12)
    hold = music(corpus, track, 300.0)
    # Whole steps of music, so the person's steps are the same blocks in every run.
    hold = hold[: len(hold) // SILERO_STEP_SAMPLES * SILERO_STEP_SAMPLES]
    whole = telephone(np.concatenate([hold, speech]))
    first = len(hold) // SILERO_STEP_SAMPLES

    fresh = probabilities(whole[len(hold) :], reseed_after_quiet=None).mean()
    continuous = probabilities(whole, reseed_after_quiet=None)[first:].mean()
    reseeded = probabilities(whole)[first:].mean()

    # One stream over the whole hold under-reports the person (measured: 0.11 and 0.15 lower)...
    assert continuous <= fresh - 0.08
    # ...the default policy hears them about as well as a fresh stream (0.01 and 0.04 lower).
    assert reseeded >= fresh - 0.06


def test_reseeding_happens_on_music_and_never_during_speech(corpus):
    stream = SileroStream()
    stream.push(telephone(music(corpus, moh_tracks(corpus)[0], 60.0)))
    assert 5 <= stream.reseeds <= 7  # every 8 s without speech
    stream = SileroStream()
    stream.push(telephone(human(corpus, "cq_ref.raw")))  # talks without a pause longer than 8 s
    assert stream.reseeds == 0


# -- the WebRTC gate and the facade -------------------------------------------------------------


def test_webrtc_gate_passes_music_and_rejects_silence_and_line_noise(corpus):
    gate = WebRtcGate()
    hold = telephone(music(corpus, moh_tracks(corpus)[2], 30.0))
    # It cannot tell music from speech.
    assert np.mean([gate.is_speech(frame) for frame in frames_of(hold)]) >= 0.7
    for quiet in (silence(5.0), telephone(line_noise(5.0, -50.0))):
        gate = WebRtcGate()  # a fresh one: after music it holds on for a few frames (its hangover)
        passed = np.flatnonzero([gate.is_speech(frame) for frame in frames_of(quiet)])
        # Only while it learns the noise floor (measured: the first 5 frames).
        assert len(passed) == 0 or passed.max() < 10


def test_webrtc_gate_rejects_bad_frames_and_settings():
    with pytest.raises(ValueError, match="aggressiveness"):
        WebRtcGate(4)
    with pytest.raises(ValueError, match="160"):
        WebRtcGate().is_speech(np.zeros(100, dtype=np.int16))


def push_frames(vad: Vad, pcm: np.ndarray, t0: float = 0.0) -> list[VadFrame]:
    return [vad.push(frame, t0 + index * FRAME_SAMPLES / RATE) for index, frame in enumerate(frames_of(pcm))]


def test_facade_reports_every_frame_and_hears_a_person_after_hold(corpus):
    hold = telephone(music(corpus, moh_tracks(corpus)[4], 30.0))
    speech = telephone(human(corpus, "vk5qi.wav", max_seconds=10))
    vad = Vad()
    frames = push_frames(vad, np.concatenate([hold, silence(1.0), speech]))
    assert [f.t for f in frames[:3]] == [0.0, 0.02, 0.04]
    onset = int((len(hold) / RATE + 1.0) / 0.02)
    on_music = np.array([f.speech_prob for f in frames[:onset]])
    on_person = np.array([f.speech_prob for f in frames[onset:]])
    assert np.mean(on_music >= THRESHOLD) <= 0.01
    assert np.mean(on_person >= THRESHOLD) >= 0.75  # Silero alone on this clip: 0.86 of the steps
    assert np.mean([f.gate for f in frames[:onset]]) > 0.5  # the gate passes the music


def test_facade_runs_no_model_on_a_silent_or_quiet_line(corpus):
    for quiet in (silence(20.0), telephone(line_noise(20.0, -50.0))):
        vad = Vad()
        frames = push_frames(vad, quiet)
        assert vad.silero.steps == len(quiet) // SILERO_STEP_SAMPLES
        assert vad.silero.model_runs <= 0.05 * vad.silero.steps
        assert all(f.speech_prob < THRESHOLD for f in frames)


def test_facade_loses_almost_no_speech_to_the_gate(corpus):
    for name in HUMANS:
        pcm = telephone(human(corpus, name))
        stream_share = np.mean(probabilities(pcm) >= THRESHOLD)
        facade_share = np.mean([frame.speech_prob >= THRESHOLD for frame in push_frames(Vad(), pcm)])
        assert facade_share >= stream_share - 0.02, name


def test_facade_reset_starts_a_fresh_segment(corpus):
    hold = telephone(music(corpus, moh_tracks(corpus)[0], 32.0))  # 1000 steps: reset falls on a step boundary
    speech = telephone(human(corpus, "kristoff.raw"))
    used = Vad()
    push_frames(used, hold)
    used.reset()
    after_reset = [f.speech_prob for f in push_frames(used, speech)]
    assert after_reset == [f.speech_prob for f in push_frames(Vad(), speech)]
