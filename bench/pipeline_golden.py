"""Every output of ``AudioPipeline`` over a fixed set of varied inputs, for exact comparison.

The pipeline's speed-ups must not change what it says: this module plays a set of scripted
calls through it (hold music of every corpus track, announcements, people talking, a person
picking up after music, DTMF and call-progress tones, frames the jitter buffer concealed, our
own words and their echo, odd chunk sizes) and records every output with all its fields,
floats unrounded. ``tests/component/test_pipeline_golden.py`` compares a fresh run with the
record kept in ``tests/component/pipeline_golden.json``.

    python -m bench.pipeline_golden --write   # re-record (only for an intended change of outputs)
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.audio.pipeline import AudioPipeline
from app.audio.tones import dtmf_signal
from app.media.g711 import ulaw_decode, ulaw_encode
from app.media.wavfile import load_audio
from app.sim.corpus import Corpus, ensure_corpus
from bench.detection.dataset import render, session_specs

RATE = 8000
FRAME = 160
GOLDEN_PATH = Path(__file__).resolve().parents[1] / "tests" / "component" / "pipeline_golden.json"


@dataclass
class Call:
    """A scripted call: the far end's audio and what happens at given sample offsets."""

    pcm: np.ndarray  # int16, already through G.711
    chunk: int = FRAME  # samples per push
    concealed: list[tuple[int, int]] = field(default_factory=list)  # sample ranges made up by the jitter buffer
    # (sample offset, action on the pipeline): our words, expected DTMF echoes, transcripts
    events: list[tuple[int, Callable[[AudioPipeline, float], None]]] = field(default_factory=list)
    reset_for_hold_at: int | None = 0


def telephone(pcm: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(np.clip(np.round(pcm), -32768, 32767).astype(np.int16)))


def _seconds(pcm: np.ndarray, seconds: float, offset: float = 0.0) -> np.ndarray:
    start = int(offset * RATE)
    return np.resize(pcm[start:], int(seconds * RATE)).astype(np.float64)


def _quiet(seconds: float, dbov: float | None, seed: int) -> np.ndarray:
    """A line floor (white noise at ``dbov``) or digital silence (None)."""
    n = int(seconds * RATE)
    if dbov is None:
        return np.zeros(n)
    return np.random.default_rng(seed).normal(0.0, 32768.0 * 10 ** (dbov / 20.0), n)


def calls(corpus: Corpus) -> Iterator[tuple[str, Call]]:
    """The scripted calls, in a fixed order (names are the record's keys)."""
    load = lambda ref: load_audio(corpus.resolve(ref)).astype(np.float64)  # noqa: E731
    announce = load("prompt:queue-periodic-announce")
    thanks = load("prompt:queue-thankyou")
    kristoff = load("speech:kristoff.raw")
    cq = load("speech:cq_ref.raw")

    # The cost benchmark's hold: music with an announcement every 45 s.
    music = load("moh:macroform-the_simplicity")
    hold = _seconds(music, 60.0)
    for start in range(10 * RATE, len(hold), 45 * RATE):
        piece = thanks[: len(hold) - start]
        hold[start : start + len(piece)] = piece
    yield "simplicity-with-announcements", Call(telephone(hold))

    # Every music track: 20 s of it with an announcement cut in after 8 s.
    for track in corpus.moh_tracks():
        audio = _seconds(load_audio(track).astype(np.float64), 20.0, offset=5.0)
        piece = announce[: len(audio) - 8 * RATE]
        audio[8 * RATE : 8 * RATE + len(piece)] = piece
        yield f"moh-{track.stem}", Call(telephone(audio))

    # People talking straight away, on a quiet line and on a line floor.
    yield "speech-kristoff", Call(telephone(kristoff))
    yield "speech-cq-on-floor", Call(telephone(np.concatenate([_quiet(1.0, -55.0, 1), cq + _quiet(len(cq) / RATE, -55.0, 2)])))

    # A person picking up after music: the music stops, a line floor opens, words; then a
    # pause that waits for an answer.
    pickup = np.concatenate(
        [_seconds(music, 14.0), _quiet(1.5, -58.0, 3), kristoff + _quiet(len(kristoff) / RATE, -58.0, 4), _quiet(6.0, -58.0, 5)]
    )
    yield "music-then-person", Call(telephone(pickup))
    # The same with digital silence in the gap, pushed in odd chunk sizes.
    gated = np.concatenate([_seconds(music, 14.0), _quiet(1.5, None, 0), kristoff, _quiet(5.0, None, 0)])
    yield "music-then-person-odd-chunks", Call(telephone(gated), chunk=1000)

    # DTMF over music and on silence; some of the digits are our own, expected as echo.
    keys = np.concatenate([_seconds(music, 6.0), dtmf_signal("12#*").astype(np.float64), _quiet(2.0, None, 0), dtmf_signal("905") * 0.3, _seconds(music, 6.0)])
    expect_at = 6 * RATE + len(dtmf_signal("12#*")) + RATE
    yield "dtmf", Call(telephone(keys), events=[(expect_at, lambda p, t: p.expect_dtmf_echo("905", now=t))])

    # Concealed frames: lost packets in the music, in the words, and a stalled stream.
    conceal_audio = pickup.copy()
    concealed = [(s, s + 3 * FRAME) for s in range(2 * RATE, len(pickup), 3 * RATE)] + [(17 * RATE, 17 * RATE + 25 * FRAME)]
    yield "concealed-frames", Call(telephone(conceal_audio), concealed=concealed)

    # Our own words: after the person's first words we greet them; the line echoes our words
    # back 120 ms later, 12 dB down; they answer once we are done.
    greeting = thanks[: int(2.5 * RATE)]
    ours_at = int(21.0 * RATE)
    delay = int(0.12 * RATE)
    answer = cq[: 3 * RATE]
    answer_at = ours_at + len(greeting) + int(0.4 * RATE)
    echo = np.zeros(max(len(pickup), answer_at + len(answer) + 4 * RATE))
    echo[: len(pickup)] = pickup
    echo[ours_at + delay : ours_at + delay + len(greeting)] += greeting * 10 ** (-12 / 20)
    echo[answer_at : answer_at + len(answer)] += answer
    echo[len(pickup) :] += _quiet(len(echo) / RATE - len(pickup) / RATE, -58.0, 6)
    ours_end = ours_at + len(greeting)
    greeting_pcm = np.clip(greeting, -32768, 32767).astype(np.int16)
    yield "our-words-and-echo", Call(
        telephone(echo),
        events=[
            (ours_at, lambda p, t: p.our_speech_started(t, greeting_pcm)),
            (ours_end, lambda p, t: p.our_speech_ended(t)),
            (answer_at + 2 * RATE, lambda p, t: p.on_transcript("hi, this is kristoff", t - 2.0, t)),
        ],
    )

    # Sessions of the detection benchmark's held-out split: pickups, a pure hold, tones.
    for spec in session_specs(0, split="test", quick=True):
        session = render(spec, corpus)
        limit = 60 * RATE if spec.kind == "pure_hold" else 40 * RATE
        yield f"bench-{spec.id}", Call(session.pcm[:limit])


def play(call: Call) -> dict[str, Any]:
    """Run one call through a fresh pipeline; every output and the per-push speaking flag."""
    pipeline = AudioPipeline()
    events = sorted(call.events, key=lambda e: e[0])
    made_up = np.zeros(len(call.pcm), dtype=bool)
    for start, stop in call.concealed:
        made_up[start:stop] = True
    outputs: list[Any] = []
    speaking_changes: list[int] = []
    speaking = False
    for push, start in enumerate(range(0, len(call.pcm), call.chunk)):
        t = start / RATE
        if call.reset_for_hold_at is not None and start == call.reset_for_hold_at:
            pipeline.reset_for_hold()
        while events and events[0][0] <= start:
            events.pop(0)[1](pipeline, t)
        stop = start + call.chunk
        concealed = bool(made_up[start:stop].all())
        outputs.extend(pipeline.push(call.pcm[start:stop], t, concealed=concealed))
        if pipeline.far_end_speaking != speaking:
            speaking = pipeline.far_end_speaking
            speaking_changes.append(push)
    return {
        "outputs": [plain(o) for o in outputs],
        "far_end_speaking_changes": speaking_changes,
        "echo_frames": pipeline.echo_frames,
        "concealed_frames": pipeline.concealed_frames,
        "hold_detected": pipeline.hold_detected,
        "human_detected": pipeline.human_detected,
    }


def plain(value: Any) -> Any:
    """JSON-ready, exact: floats keep every bit (JSON writes their shortest round-trip form)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **{f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value
    raise TypeError(f"cannot record {type(value).__name__}: {value!r}")


def record(corpus: Corpus | None = None) -> dict[str, Any]:
    corpus = corpus or ensure_corpus()
    return {name: play(call) for name, call in calls(corpus)}


def first_difference(expected: Any, actual: Any, where: str = "") -> str | None:
    """Where two records first differ (None when they are equal)."""
    if type(expected) is not type(actual):
        return f"{where}: {expected!r} != {actual!r}"
    if isinstance(expected, dict):
        if expected.keys() != actual.keys():
            return f"{where}: keys {sorted(expected.keys() ^ actual.keys())} differ"
        for key in expected:
            found = first_difference(expected[key], actual[key], f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(expected, list):
        for i, (e, a) in enumerate(zip(expected, actual)):
            found = first_difference(e, a, f"{where}[{i}]")
            if found:
                return found
        return None if len(expected) == len(actual) else f"{where}: {len(expected)} items != {len(actual)}"
    if expected != expected and actual != actual:  # both NaN
        return None
    return None if expected == actual else f"{where}: {expected!r} != {actual!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write the record to {GOLDEN_PATH}")
    args = parser.parse_args()
    result = record()
    if args.write:
        GOLDEN_PATH.write_text(json.dumps(result, indent=None, separators=(",", ":")).replace('{"type"', '\n{"type"') + "\n")
        print(f"wrote {GOLDEN_PATH} ({GOLDEN_PATH.stat().st_size // 1024} KiB)")
        return
    expected = json.loads(GOLDEN_PATH.read_text())
    difference = first_difference(expected, json.loads(json.dumps(result)))
    print(difference or "identical")


if __name__ == "__main__":
    main()
