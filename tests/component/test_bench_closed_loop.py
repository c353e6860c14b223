"""The closed-loop benchmark (``bench/detection/closed_loop.py``): the far end hears the app and reacts."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.types import HumanDetected, HumanSuspected
from app.media.wavfile import load_audio
from bench.detection.closed_loop import FRAME, FarEnd, Person, _speaker_source, run_interactive_session
from bench.detection.metrics_cv import fold_score, greet_latency, lost, opener_latency, ring_latency
from bench.detection.sources import Item

RATE = 8000


def _speech(seconds: float, seed: int = 0, dbov: float = -20.0) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """Speech-like audio: 0.25 s bursts of noise with 0.1 s gaps; its islands (the bursts)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    islands = []
    for start in range(0, len(out) - 2000, 2800):
        out[start : start + 2000] = rng.normal(size=2000)
        islands.append((start, start + 2000))
    loud = np.concatenate([out[a:b] for a, b in islands])
    out *= 32768 * 10 ** (dbov / 20) / np.sqrt(np.mean(loud * loud))
    return out, tuple(islands)


def _far(
    seconds: float,
    *,
    onset: float | None = 1.0,
    first_words: float = 2.0,
    reactive: bool = True,
    hold: np.ndarray | None = None,
    echo_delay: float | None = None,
    echo_loss_db: float = 20.0,
    seed: int = 0,
) -> FarEnd:
    n = int(seconds * RATE)
    person = None
    beds = None
    if onset is not None:
        source, islands = _speech(60.0, seed)
        first_to = islands[int(first_words * RATE / 2800)][1]
        person = Person(source, islands, 1.0, [(int(onset * RATE), 0, first_to)], int(first_words * RATE / 2800) + 1,
                        np.random.default_rng(seed), reactive=reactive)
        beds = np.zeros(n)
    return FarEnd(
        id="test", fold="fold-0", kind="pickup" if onset is not None else "pure_hold",
        hold=np.zeros(n) if hold is None else hold, segments=[], onset=onset,
        line_open=None if onset is None else int((onset - 0.1) * RATE), person=person,
        person_kind=None if onset is None else ("reactive" if reactive else "passive"), beds=beds,
        gate=None, agc=None, codec_params=None, lost=np.zeros(0, dtype=bool),
        echo_delay=None if echo_delay is None else int(echo_delay * RATE), echo_gain=10 ** (-echo_loss_db / 20),
        max_samples=n, meta={},
    )


def _levels(far: FarEnd, frames: int) -> np.ndarray:
    out = []
    for i in range(frames):
        x = far.frame(i).astype(np.float64)
        out.append(10 * np.log10(np.mean(x * x) / 32768**2 + 1e-12))
    return np.array(out)


def _ours(seconds: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(7)
    return (rng.normal(size=int(seconds * RATE)) * 3000).astype(np.int16)


def _loud(levels: np.ndarray, t0: float, t1: float) -> float:
    """Share of frames in [t0, t1) louder than -40 dBov."""
    return float(np.mean(levels[int(t0 / 0.02) : int(t1 / 0.02)] > -40.0))


def test_reactive_person_goes_quiet_while_we_speak_and_answers_after():
    far = _far(12.0, first_words=6.0)  # they would talk from 1 s to about 7 s
    levels = list(_levels(far, 100))  # up to 2.0 s
    far.ours_started(2.0, _ours(1.5))  # we speak 2.0 - 3.5 s
    levels += list(_levels_from(far, 100, 175))
    far.ours_ended(3.5)
    levels += list(_levels_from(far, 175, 500))
    levels = np.array(levels)
    assert _loud(levels, 1.0, 2.0) > 0.5  # talking before we spoke
    stopped = 2.0 + 0.02 * int(np.argmax(np.convolve(levels[100:] < -60.0, np.ones(20), "valid") == 20))
    assert 2.15 <= stopped <= 2.65, stopped  # 0.2-0.6 s after our first word (finishes the syllable)
    assert _loud(levels, 2.7, 3.5) == 0.0  # silent while we speak
    answer = 3.5 + 0.02 * int(np.argmax(levels[175:] > -40.0))
    assert 3.65 <= answer <= 4.55, answer  # 0.2-1.0 s after our words end
    after = levels[int(answer / 0.02) :]
    length = 0.02 * int(np.argmax(np.convolve(after < -60, np.ones(15), "valid") == 15))
    assert 0.4 <= length <= 3.2, length  # a short utterance, then they wait
    assert ("answer", answer) in [(k, round(t, 2)) for k, t in far.person.log] or any(
        k == "answer" for k, _ in far.person.log
    )


def _levels_from(far: FarEnd, first: int, stop: int) -> np.ndarray:
    out = []
    for i in range(first, stop):
        x = far.frame(i).astype(np.float64)
        out.append(10 * np.log10(np.mean(x * x) / 32768**2 + 1e-12))
    return np.array(out)


def test_passive_person_never_reacts():
    far = _far(8.0, first_words=6.0, reactive=False)
    _levels(far, 100)
    far.ours_started(2.0, _ours(1.5))
    levels = _levels_from(far, 100, 175)
    far.ours_ended(3.5)
    assert _loud(levels, 0.8, 1.4) > 0.5  # talks on over our words (2.8-3.4 s)
    assert not any(k == "answer" for k, _ in far.person.log)


def test_a_recording_carries_on_regardless_of_our_words():
    t = np.arange(int(6.0 * RATE)) / RATE
    music = 3000 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    quiet, spoken = _far(6.0, onset=None, hold=music), _far(6.0, onset=None, hold=music)
    spoken.ours_started(1.0, _ours(2.0))
    a = np.concatenate([quiet.frame(i) for i in range(300)])
    b = []
    for i in range(300):
        if i == 150:
            spoken.ours_ended(3.0)
        b.append(spoken.frame(i))
    assert np.array_equal(a, np.concatenate(b))  # no echo on this line: exactly the recording
    assert np.abs(a[int(1.5 * RATE) : int(2.5 * RATE)]).max() > 2000  # and the recording did play


def test_echo_comes_back_at_the_configured_delay_and_loss():
    far = _far(4.0, onset=None, echo_delay=0.08, echo_loss_db=25.0)
    ours = _ours(1.0)
    far.ours_started(1.0, ours)
    x = np.concatenate([far.frame(i) for i in range(200)]).astype(np.float64)
    first = int(np.argmax(np.abs(x) > 0))
    assert abs(first / RATE - 1.08) <= 0.001, first / RATE
    heard = x[first : first + len(ours)]
    loss = 10 * np.log10(np.mean(ours.astype(np.float64) ** 2) / np.mean(heard**2))
    assert 24.0 <= loss <= 26.0, loss
    assert not np.any(x[int(2.1 * RATE) :])  # ends with our words (+ delay)


def test_echo_is_cut_with_our_words():
    far = _far(4.0, onset=None, echo_delay=0.05)
    far.ours_started(1.0, _ours(2.0))
    frames = [far.frame(i) for i in range(75)]  # to 1.5 s
    far.ours_ended(1.5)
    frames += [far.frame(i) for i in range(75, 200)]
    x = np.concatenate(frames).astype(np.float64)
    assert np.any(x[int(1.2 * RATE) : int(1.5 * RATE)])
    assert not np.any(x[int(1.56 * RATE) :])


class _Deaf:
    """A detector that never decides and never hears speech."""

    far_end_speaking = False

    def reset_for_hold(self):
        pass

    def push(self, pcm, t):
        return []

    def our_speech_started(self, t, pcm):
        raise AssertionError("nothing was suspected: we must not speak")

    def our_speech_ended(self, t):
        pass


def test_a_person_nobody_answers_hangs_up_after_about_ten_seconds_and_is_lost():
    far = _far(40.0, onset=1.0, first_words=2.0)
    result = run_interactive_session(far, _Deaf(), lambda text: _ours())
    hangups = [e.t for e in result.events if e.kind == "hangup"]
    assert len(hangups) == 1
    words_end = far.person.utterances[0].end / RATE
    assert 9.0 <= hangups[0] - words_end <= 13.5, hangups[0] - words_end  # ~10 s (or after a last "hello?")
    assert any(k == "hello" for k, _ in far.person.log)  # they asked after ~4 s of silence
    assert result.meta["end"] == "hangup" and lost(result)
    assert fold_score([result])["lost_percent"] == 100.0


class _Scripted:
    """A fake detector: suspects 0.5 s into far-end speech; rings on speech that starts after our words."""

    def __init__(self):
        self.far_end_speaking = False
        self.suspected = self.detected = False
        self.speech_since = None
        self.ours_ended_at = None
        self.ours_started_at = None

    def reset_for_hold(self):
        pass

    def our_speech_started(self, t, pcm):
        self.ours_started_at, self.ours_ended_at = t, None

    def our_speech_ended(self, t):
        self.ours_ended_at = t

    def push(self, pcm, t):
        x = pcm.astype(np.float64)
        level = 10 * np.log10(np.mean(x * x) / 32768**2 + 1e-12)
        self.far_end_speaking = level > -40.0
        out = []
        if self.far_end_speaking:
            self.speech_since = t if self.speech_since is None else self.speech_since
            if not self.suspected and t - self.speech_since >= 0.5:
                self.suspected = True
                out.append(HumanSuspected(t, 0.6))
            if (not self.detected and self.ours_ended_at is not None and t >= self.ours_ended_at
                    and t - self.ours_ended_at <= 2.0):
                self.detected = True
                out.append(HumanDetected(t, 0.9, {"rule": "reply"}))
        return out


def test_the_loop_greets_at_once_and_rings_on_the_reply():
    far = _far(40.0, onset=1.0, first_words=2.0)
    result = run_interactive_session(far, _Scripted(), lambda text: _ours(1.2))
    kinds = [(e.kind, e.rule) for e in result.events]
    assert kinds[0] == ("suspected", None)
    assert ("said", "greeting") in kinds
    suspected = result.events[0]
    greeting = next(e for e in result.events if e.kind == "said" and e.rule == "greeting")
    assert greeting.t - suspected.t <= 0.1  # at once, over their words: they stop and listen
    said_end = next(e for e in result.events if e.kind == "said_end" and e.t > greeting.t)
    ring = next(e for e in result.events if e.kind == "detected")
    assert 0.2 <= ring.t - said_end.t <= 1.2  # the person's answer is the reply that rings
    assert 0.5 <= greet_latency(result) <= 0.6
    assert ring_latency(result) < 8.0 and not lost(result)
    assert opener_latency(result) == greeting.t - 1.0
    assert result.meta["end"] == "rung"


@pytest.mark.corpus
def test_a_person_whose_recording_is_short_goes_on_with_the_speakers_others_and_never_replays_it(corpus):
    """A person never says the same audio twice: once their clip is used up, their answers come
    from the speaker's other recordings (the detector rightly retracts a replay as a recording)."""
    paths = [corpus.resolve(ref) for ref in ("speech:kristoff.raw", "speech:vk5qi.wav", "speech:cq_ref.raw")]
    items = [Item(id=f"speaker-{i}", kind="speech", group="speaker:test", parts=(path,)) for i, path in enumerate(paths)]
    source, islands = _speaker_source(items, items[0])
    first = load_audio(paths[0]).astype(np.float64)
    assert np.array_equal(source[: len(first)], first)
    assert len(source) > len(first) + 5 * RATE and islands[-1][1] > len(first)

    person = Person(source, islands, 1.0, [], 0, np.random.default_rng(0), reactive=True)
    takes = [person._take(2.0) for _ in range(4)]  # more than the first clip holds
    for i, take in enumerate(takes):
        assert np.sqrt(np.mean(take**2)) > 300, "words, not a gap"
        for earlier in takes[:i]:
            n = min(len(take), len(earlier))
            assert not np.array_equal(take[:n], earlier[:n]), "a replay of an earlier answer"
