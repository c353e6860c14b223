"""Our own words coming back are never the far end talking (app.audio.echo, and in the pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.echo import EchoMonitor, frame_levels_dbov
from app.audio.pipeline import AudioPipeline
from app.audio.types import HumanDetected, HumanSuspected
from app.media.wavfile import load_audio
from app.media.g711 import ulaw_decode, ulaw_encode

RATE = 8000
FRAME = 160


def telephone(samples: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(np.clip(np.round(samples), -32768, 32767).astype(np.int16)))


def at_dbov(samples: np.ndarray, dbov: float) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float64)
    return samples / np.sqrt(np.mean(samples**2)) * 32768.0 * 10 ** (dbov / 20)


def syllables(seconds: float, rng: np.random.Generator, dbov: float = -18.0) -> np.ndarray:
    """Speech-like bursts: harmonic syllables of 150-300 ms with short gaps."""
    out = []
    while sum(len(x) for x in out) < seconds * RATE:
        n = int(rng.uniform(0.15, 0.3) * RATE)
        t = np.arange(n) / RATE
        f0 = rng.uniform(100, 200)
        out.append(sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)) * np.hanning(n))
        out.append(np.zeros(int(rng.uniform(0.04, 0.12) * RATE)))
    return at_dbov(np.concatenate(out)[: int(seconds * RATE)], dbov)


def echo_of(ours: np.ndarray, delay_s: float, loss_db: float) -> np.ndarray:
    delayed = np.concatenate([np.zeros(int(delay_s * RATE)), ours])[: len(ours)]
    return delayed * 10 ** (-loss_db / 20)


def judge_all(monitor: EchoMonitor, received: np.ndarray, t0: float = 0.0) -> np.ndarray:
    levels = frame_levels_dbov(received)
    return np.array([monitor.judge(t0 + i * 0.02, float(level)) for i, level in enumerate(levels)])


def test_an_echo_of_our_words_is_recognised_at_its_delay_and_loss():
    rng = np.random.default_rng(1)
    ours = syllables(3.0, rng)
    floor = at_dbov(rng.normal(size=len(ours)), -60.0)
    monitor = EchoMonitor()
    monitor.start(0.0, ours.astype(np.int16))
    received = echo_of(ours, 0.12, 18.0) + floor
    verdicts = judge_all(monitor, received)
    assert monitor.path is not None
    assert monitor.path.lag_frames == pytest.approx(6, abs=1)
    assert monitor.path.loss_db == pytest.approx(18.0, abs=3.0)
    loud = frame_levels_dbov(received) > -50.0  # the echo's syllables (the floor is the line's)
    assert verdicts[loud].mean() > 0.97


def test_the_far_end_talking_over_our_echo_is_its_own_sound():
    rng = np.random.default_rng(2)
    ours = syllables(4.0, rng)
    echo = echo_of(ours, 0.08, 20.0) + at_dbov(rng.normal(size=len(ours)), -60.0)
    talk = np.zeros(len(ours))
    start = int(2.5 * RATE)
    talk[start:] = syllables(1.5, rng, dbov=-20.0)[: len(ours) - start]
    monitor = EchoMonitor()
    monitor.start(0.0, ours.astype(np.int16))
    verdicts = judge_all(monitor, echo + talk)
    talking = frame_levels_dbov(talk) > -30.0  # their syllables, not their soft edges
    echo_loud = frame_levels_dbov(echo) > -50.0
    assert verdicts[: start // FRAME][echo_loud[: start // FRAME]].mean() > 0.95  # the echo alone
    assert not verdicts[talking].any() or verdicts[talking].mean() < 0.1  # their words stand out


def test_a_line_that_returns_nothing_has_no_echo_and_hides_no_words():
    rng = np.random.default_rng(3)
    ours = syllables(3.0, rng)
    # A recording that carries on over us, at our level, unrelated to our words.
    other = syllables(3.0, np.random.default_rng(99), dbov=-19.0)
    monitor = EchoMonitor()
    monitor.start(0.0, ours.astype(np.int16))
    verdicts = judge_all(monitor, other)
    assert monitor.path is None
    loud = frame_levels_dbov(other) > -40.0
    assert verdicts[loud][-60:].mean() < 0.1  # once learned: its words are its own
    assert not monitor.active or monitor.judge(10.0, -20.0) is False


@pytest.mark.corpus
def test_a_person_who_lets_us_speak_and_answers_over_an_echoing_line_is_a_reply(corpus):
    """Through the whole pipeline (Silero included): a person greets (real speech), waits on a
    noisy line while our greeting comes back as echo, then answers: the answer is a reply; the
    echo neither stops our words (no far-end speech) nor passes for one."""
    rng = np.random.default_rng(4)
    person = load_audio(corpus.resolve("speech:kristoff.raw")).astype(np.float64)
    ours = load_audio(corpus.resolve("prompt:queue-thankyou")).astype(np.float64)
    greeting, answer = at_dbov(person[: int(2.0 * RATE)], -22.0), at_dbov(person[int(2.5 * RATE) : int(4.0 * RATE)], -22.0)
    line = lambda seconds: at_dbov(rng.normal(size=int(seconds * RATE)), -58.0)  # noqa: E731
    lead = np.concatenate([line(1.0), greeting + line(2.0), line(1.0)])
    t_ours = len(lead) / RATE
    ours = at_dbov(ours, -16.0)
    during = echo_of(ours, 0.06, 15.0) + line(len(ours) / RATE)
    after = np.concatenate([line(0.5), answer + line(1.5), line(2.0)])
    pcm = telephone(np.concatenate([lead, during, after]))

    pipeline = AudioPipeline()
    pipeline.reset_for_hold()
    pipeline.human.on_hold = True
    outputs, speaking_during = [], []
    for start in range(0, len(pcm), FRAME):
        t = start / RATE
        if abs(t - t_ours) < 1e-9:
            pipeline.our_speech_started(t, ours.astype(np.int16))
        if abs(t - (t_ours + len(ours) / RATE)) < 0.01:
            pipeline.our_speech_ended(t)
        outputs += pipeline.push(pcm[start : start + FRAME], t)
        if t_ours + 0.3 < t < t_ours + len(ours) / RATE:
            speaking_during.append(pipeline.far_end_speaking)
    assert pipeline.echo_frames > 0.8 * len(ours) / FRAME
    assert not any(speaking_during)
    suspected = [o for o in outputs if isinstance(o, HumanSuspected)]
    detected = [o for o in outputs if isinstance(o, HumanDetected)]
    assert suspected and suspected[0].t < t_ours
    assert detected and detected[0].evidence["rule"] == "reply", detected and detected[0].evidence
    assert detected[0].t > t_ours + len(ours) / RATE


@pytest.mark.corpus
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known weakness (issue 9): while the echo path is learned, far-end sound under our level is "
    "taken for our echo; counting it once the line proves echo-free also loses persons who finish "
    "their sentence over our first words (detection benchmark: fewer false rings, more persons missed)",
)
def test_a_recording_that_talked_over_our_first_words_on_a_line_with_no_echo_does_not_reply(corpus):
    """Our first words on a line (no echo path known yet) meet a recording that talks on over
    them, at a level under ours, pauses as they end and goes on in the reply window: it did not
    stop for us, so its next sentence is no reply. Today it is one: while the echo path was
    learned, its words were taken for our echo, and the detector saw a far end that yielded."""
    rng = np.random.default_rng(5)
    prompt = load_audio(corpus.resolve("prompt:queue-periodic-announce")).astype(np.float64)
    bed = load_audio(corpus.resolve("moh:macroform-cold_day")).astype(np.float64)
    ours = at_dbov(load_audio(corpus.resolve("prompt:queue-thankyou")).astype(np.float64)[: int(1.6 * RATE)], -16.0)
    line = lambda seconds: at_dbov(rng.normal(size=int(seconds * RATE)), -62.0)  # noqa: E731
    music = lambda seconds, at: at_dbov(bed[at : at + int(seconds * RATE)], -24.0)  # noqa: E731
    first, second = at_dbov(prompt[: int(1.6 * RATE)], -20.0), at_dbov(prompt[int(2.0 * RATE) : int(4.0 * RATE)], -20.0)
    t_first = 3.0
    t_ours, t_ours_end = t_first + 0.6, t_first + 0.6 + len(ours) / RATE
    pcm = telephone(
        np.concatenate(
            [music(3.0, 0), first, line(t_ours_end + 0.3 - t_first - 1.6), second, line(1.0), music(4.0, 8 * RATE)]
        )
    )

    pipeline = AudioPipeline()
    pipeline.reset_for_hold()
    pipeline.human.on_hold = True
    outputs = []
    for start in range(0, len(pcm), FRAME):
        t = start / RATE
        if abs(t - t_ours) < 1e-9:
            pipeline.our_speech_started(t, ours.astype(np.int16))
        if abs(t - t_ours_end) < 0.01:
            pipeline.our_speech_ended(t)
        outputs += pipeline.push(pcm[start : start + FRAME], t)
    if pipeline.echo_frames <= 10:  # the set-up: learning took its words for our echo for a while
        pytest.fail("no frame was taken for our echo: the case this test is about did not arise")
    assert [o.evidence for o in outputs if isinstance(o, HumanDetected)] == []
