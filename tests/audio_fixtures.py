"""Labelled test sessions built from the recording corpus, heard the way a call hears them.

A session is a concatenation of corpus pieces (hold music, announcements, a person talking,
line noise) passed through G.711 mu-law, with the time span of every piece, so tests can ask
"did the detector decide before the person started?" and measure latencies.

``python -m tests.audio_fixtures`` measures the simple detector on the whole corpus (feature
separation, latencies, false decisions over every pure-hold combination, held-out prompts)
and prints the tables; it takes a few minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from app.audio.features import frame_features, window_features
from app.audio.simple_detector import SimpleHoldDetector
from app.audio.types import DetectorOutput, HoldDetected, HumanDetected
from app.media.wavfile import load_audio
from app.sim.corpus import Corpus, CorpusError, ensure_corpus
from app.media.g711 import ulaw_decode, ulaw_encode

RATE = 8000

# Announcement-like prompts of the corpus (all one professional voice).
ANNOUNCEMENTS = (
    "queue-periodic-announce",
    "queue-thankyou",
    "queue-youarenext",
    "queue-holdtime",
    "queue-callswaiting",
    "pls-hold-while-try",
    "one-moment-please",
    "tt-allbusy",
    "all-circuits-busy-now",
)
# Hold sequences used for the pure-hold sessions.
ANNOUNCEMENT_SETS = (
    ("queue-periodic-announce", "queue-thankyou", "queue-youarenext"),
    ("pls-hold-while-try", "tt-allbusy", "queue-holdtime"),
    ("queue-callswaiting", "one-moment-please", "all-circuits-busy-now", "queue-periodic-announce"),
)
# Real people talking spontaneously (codec2-examples).
HUMANS = ("kristoff.raw", "vk5qi.wav", "cq_ref.raw", "ve9qrp.wav")
# More codec2 recordings of people (read sentences), never used to choose a threshold.
OTHER_HUMANS = (
    "all.wav", "hts1.raw", "hts2.raw", "g3plx.raw", "big_dog.raw", "cross.raw", "forig.raw", "morig.raw"
)


class Part(str, Enum):
    MUSIC = "music"
    ANNOUNCEMENT = "announcement"
    ANNOUNCEMENT_OVER_MUSIC = "announcement_over_music"
    HUMAN = "human"
    NOISE = "noise"
    SILENCE = "silence"


@dataclass(frozen=True)
class Piece:
    part: Part
    ref: str
    t_start: float
    t_end: float


@dataclass(frozen=True)
class Session:
    name: str
    pcm: np.ndarray  # int16, already through mu-law
    pieces: tuple[Piece, ...]

    @property
    def duration(self) -> float:
        return len(self.pcm) / RATE

    def first(self, part: Part) -> Piece | None:
        return next((p for p in self.pieces if p.part == part), None)


def corpus_or_none() -> Corpus | None:
    try:
        return ensure_corpus()
    except CorpusError:
        return None


def telephone(pcm: np.ndarray) -> np.ndarray:
    """What the far end's audio looks like after a G.711 mu-law call leg."""
    return ulaw_decode(ulaw_encode(np.asarray(pcm, dtype=np.int16)))


def moh_tracks(corpus: Corpus) -> list[str]:
    return [path.stem for path in corpus.moh_tracks()]


def music(corpus: Corpus, track: str, seconds: float, offset: float = 0.0) -> np.ndarray:
    """``seconds`` of a hold music track from ``offset``, wrapping round at the end as MOH does."""
    audio = load_audio(corpus.resolve(f"moh:{track}"))
    start = int(offset * RATE) % len(audio)
    count = int(seconds * RATE)
    reps = (start + count) // len(audio) + 1
    return np.tile(audio, reps)[start : start + count]


def prompt(corpus: Corpus, name: str) -> np.ndarray:
    return load_audio(corpus.prompt(name))


def human(corpus: Corpus, name: str, max_seconds: float | None = None) -> np.ndarray:
    audio = load_audio(corpus.speech(name))
    return audio if max_seconds is None else audio[: int(max_seconds * RATE)]


def over_music(speech: np.ndarray, bed: np.ndarray, bed_db: float = -15.0) -> np.ndarray:
    """An announcement over a music bed ``bed_db`` below the speech's level."""
    bed = bed[: len(speech)].astype(np.float64)
    gain = _rms(speech) * 10 ** (bed_db / 20) / max(_rms(bed), 1.0)
    return _clip(speech.astype(np.float64) + gain * bed)


def with_noise(pcm: np.ndarray, dbov: float, seed: int = 0) -> np.ndarray:
    """``pcm`` with line noise at ``dbov`` under it (a recording made on a noisy line)."""
    return _clip(pcm.astype(np.float64) + line_noise(len(pcm) / RATE + 0.1, dbov, seed)[: len(pcm)])


def gated(pcm: np.ndarray, below_dbov: float = -40.0) -> np.ndarray:
    """``pcm`` with every 20 ms frame quieter than ``below_dbov`` zeroed (noise suppression)."""
    levels = frame_features(pcm, RATE).level_db
    frames = np.asarray(pcm[: len(levels) * 160], dtype=np.int16).reshape(-1, 160).copy()
    frames[levels < below_dbov] = 0
    return frames.reshape(-1)


def line_noise(seconds: float, dbov: float = -60.0, seed: int = 0) -> np.ndarray:
    """Room/line noise: random noise with a gentle low-frequency tilt, at ``dbov``."""
    rng = np.random.default_rng(seed)
    white = rng.normal(size=int(seconds * RATE))
    tilted = np.convolve(white, [1.0, 0.7, 0.4], mode="same")
    return _clip(tilted / _rms(tilted) * 32768 * 10 ** (dbov / 20))


def tone_pair(f1: float, f2: float, seconds: float, dbov: float = -20.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wave = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)
    return _clip(wave / _rms(wave) * 32768 * 10 ** (dbov / 20))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def build(name: str, parts: Iterable[tuple[Part, str, np.ndarray]]) -> Session:
    """Concatenate labelled pieces and pass the whole through mu-law."""
    pieces: list[Piece] = []
    chunks: list[np.ndarray] = []
    t = 0.0
    for part, ref, pcm in parts:
        seconds = len(pcm) / RATE
        pieces.append(Piece(part, ref, t, t + seconds))
        chunks.append(np.asarray(pcm, dtype=np.int16))
        t += seconds
    return Session(name=name, pcm=telephone(np.concatenate(chunks)), pieces=tuple(pieces))


def hold_then_human(corpus: Corpus, track: str, person: str, offset: float = 0.0) -> Session:
    """Music 20 s, periodic announcement, music 15 s, "you are next", music 10 s, then a person
    (at most 20 s of them) and 3 s of quiet line noise."""
    return build(
        f"{track}+{person}",
        [
            (Part.MUSIC, track, music(corpus, track, 20, offset)),
            (Part.ANNOUNCEMENT, "queue-periodic-announce", prompt(corpus, "queue-periodic-announce")),
            (Part.MUSIC, track, music(corpus, track, 15, offset + 20)),
            (Part.ANNOUNCEMENT, "queue-youarenext", prompt(corpus, "queue-youarenext")),
            (Part.MUSIC, track, music(corpus, track, 10, offset + 35)),
            (Part.HUMAN, person, human(corpus, person, max_seconds=20)),
            (Part.NOISE, "line_noise", line_noise(3.0)),
        ],
    )


def pure_hold(
    corpus: Corpus,
    track: str,
    announcements: Iterable[str],
    *,
    music_seconds: float = 12.0,
    offset: float = 0.0,
    bed_db: float | None = None,
) -> Session:
    """Music and announcements alternating, no person: ``bed_db`` plays the announcements over music."""
    first = music(corpus, track, music_seconds, offset)
    parts: list[tuple[Part, str, np.ndarray]] = [(Part.MUSIC, track, first)]
    position = offset + music_seconds
    names = list(announcements)
    for name in names:
        speech = prompt(corpus, name)
        if bed_db is None:
            parts.append((Part.ANNOUNCEMENT, name, speech))
        else:
            bed = music(corpus, track, len(speech) / RATE + 0.1, position)
            parts.append((Part.ANNOUNCEMENT_OVER_MUSIC, name, over_music(speech, bed, bed_db)))
        position += len(speech) / RATE
        parts.append((Part.MUSIC, track, music(corpus, track, music_seconds, position)))
        position += music_seconds
    suffix = "" if bed_db is None else f" over music at {bed_db:g} dB"
    return build(f"{track} @{offset:g}s: {'+'.join(names)}{suffix}", parts)


def stream(detector, pcm: np.ndarray, chunk_seconds: float = 0.02, t0: float = 0.0) -> list[DetectorOutput]:
    """Push ``pcm`` in chunks as RTP would deliver it; all outputs in order."""
    chunk = int(round(chunk_seconds * RATE))
    outputs: list[DetectorOutput] = []
    for start in range(0, len(pcm), chunk):
        outputs.extend(detector.push(pcm[start : start + chunk], t0 + start / RATE))
    return outputs


def decisions(outputs: list[DetectorOutput]) -> list[HoldDetected | HumanDetected]:
    return [o for o in outputs if isinstance(o, (HoldDetected, HumanDetected))]


def first_human(outputs: list[DetectorOutput]) -> HumanDetected | None:
    return next((o for o in outputs if isinstance(o, HumanDetected)), None)


def first_hold(outputs: list[DetectorOutput]) -> HoldDetected | None:
    return next((o for o in outputs if isinstance(o, HoldDetected)), None)


def windows(pcm: np.ndarray, window_frames: int = 150, hop_frames: int = 25) -> list[dict[str, float]]:
    """Window features of telephone-coded ``pcm`` (3 s windows every 0.5 s by default)."""
    frames = frame_features(telephone(pcm), RATE)
    return [
        window_features(frames.slice(start, start + window_frames), RATE).as_dict()
        for start in range(0, len(frames) - window_frames + 1, hop_frames)
    ]


def audible(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """Windows with something in them (the detector calls the rest SILENCE)."""
    return [row for row in rows if row["peak_dbov"] >= -45.0]


def best_threshold(music_values: np.ndarray, speech_values: np.ndarray) -> tuple[float, bool, float]:
    """The single threshold with the best balanced accuracy: (threshold, speech_above, accuracy)."""
    pooled = np.concatenate([music_values, speech_values])
    candidates = np.unique(np.percentile(pooled, np.linspace(1, 99, 197)))
    best = (0.0, True, 0.0)
    for threshold in candidates:
        above = 0.5 * (np.mean(speech_values >= threshold) + np.mean(music_values < threshold))
        below = 0.5 * (np.mean(speech_values < threshold) + np.mean(music_values >= threshold))
        for speech_above, accuracy in ((True, above), (False, below)):
            if accuracy > best[2]:
                best = (float(threshold), speech_above, float(accuracy))
    return best


def balanced_accuracy(
    music_values: np.ndarray, speech_values: np.ndarray, threshold: float, speech_above: bool
) -> float:
    if speech_above:
        return float(0.5 * (np.mean(speech_values >= threshold) + np.mean(music_values < threshold)))
    return float(0.5 * (np.mean(speech_values < threshold) + np.mean(music_values >= threshold)))


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(pcm, dtype=np.float64))))) if len(pcm) else 0.0


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


# -- the measurement (python -m tests.audio_fixtures) ------------------------------------------


def _measure_features(corpus: Corpus) -> None:
    tracks = moh_tracks(corpus)
    music_rows = [
        row for track in tracks for row in audible(windows(load_audio(corpus.resolve(f"moh:{track}"))))
    ]
    prompts = np.concatenate([load_audio(path) for path in sorted(corpus.prompts_dir.glob("*.wav"))])
    speech_rows = audible(windows(prompts)) + [
        row for name in HUMANS + OTHER_HUMANS for row in audible(windows(human(corpus, name)))
    ]
    print(f"\nFeatures alone, 3 s windows: {len(music_rows)} music (all tracks), {len(speech_rows)} speech")
    print(f"{'feature':24} {'music median':>13} {'speech median':>14} {'balanced acc.':>14}")
    for name in music_rows[0]:
        m = np.array([row[name] for row in music_rows])
        s = np.array([row[name] for row in speech_rows])
        print(f"{name:24} {np.median(m):13.3f} {np.median(s):14.3f} {best_threshold(m, s)[2]:14.3f}")


def _first_word_seconds(pcm: np.ndarray) -> float:
    """When a recording of a person first gets loud (their first word, after any line noise)."""
    levels = frame_features(telephone(pcm), RATE).level_db
    return float(np.argmax(levels > -35.0)) * 0.02


def _measure_humans(corpus: Corpus) -> None:
    print("\nHold (music, 2 announcements, music), then a person: HumanDetected latency (s) over the")
    print("5 tracks, from the person's first sample [and from their first word]")
    for person in HUMANS + OTHER_HUMANS:
        latencies, rules = [], set()
        first_word = _first_word_seconds(human(corpus, person, max_seconds=20))
        for track in moh_tracks(corpus):
            session = hold_then_human(corpus, track, person)
            outputs = stream(SimpleHoldDetector(), session.pcm, 0.5)
            onset = session.first(Part.HUMAN).t_start
            found = first_human(outputs)
            if found is None:
                latencies.append("miss")
            elif found.t < onset:
                latencies.append(f"EARLY {found.t - onset:.1f}")
            else:
                latencies.append(f"{found.t - onset:.1f} [{found.t - onset - first_word:.1f}]")
                rules.add(found.evidence["rule"])
        print(f"  {person:14} {'  '.join(latencies)}  {','.join(sorted(rules))}")


def _count_false(sessions: Iterable[Session]) -> tuple[int, list[str]]:
    count, false = 0, []
    for session in sessions:
        count += 1
        found = first_human(stream(SimpleHoldDetector(), session.pcm, 0.5))
        if found is not None:
            piece = [p for p in session.pieces if p.t_start <= found.t][-1]
            into = found.t - piece.t_start
            false.append(f"{session.name} -> at {found.t:.1f}s, {into:.1f}s into {piece.ref}")
    return count, false


def _measure_pure_holds(corpus: Corpus) -> None:
    def sessions() -> Iterable[Session]:
        for track in moh_tracks(corpus):
            length = len(load_audio(corpus.resolve(f"moh:{track}"))) / RATE
            for offset in np.arange(0.0, length, 25.0):
                for names in ANNOUNCEMENT_SETS:
                    for bed_db in (None, -15.0, -20.0):
                        yield pure_hold(corpus, track, names, offset=offset, bed_db=bed_db, music_seconds=10)

    count, false = _count_false(sessions())
    print("\nPure holds (every track, offsets every 25 s, 3 announcement sets, clean / bed -15 / -20 dB):")
    print(f"  {len(false)} false human decisions in {count} sessions")
    for line in false:
        print("   ", line)


def _measure_held_out_prompts(corpus: Corpus) -> None:
    names = sorted(p.stem for p in corpus.prompts_dir.glob("*.wav") if p.stem not in ANNOUNCEMENTS)
    tracks = moh_tracks(corpus)

    def sessions() -> Iterable[Session]:
        for bed_db in (None, -20.0):
            for index in range(0, len(names), 6):
                track = tracks[(index // 6) % len(tracks)]
                group = names[index : index + 6]
                yield pure_hold(corpus, track, group, offset=17.0 * index, music_seconds=8, bed_db=bed_db)

    count, false = _count_false(sessions())
    print(f"\nHeld-out prompts ({len(names)} other Asterisk prompts, 6 per session between music,")
    print("clean and over a music bed at -20 dB):")
    print(f"  {len(false)} false human decisions in {count} sessions")
    for line in false:
        print("   ", line)


def _measure_noisy_recordings(corpus: Corpus) -> None:
    print("\nAnnouncements recorded on a noisy line (first play after music: the known gap):")
    for dbov in (-60.0, -50.0):
        sessions = (
            build(
                "noisy",
                [
                    (Part.MUSIC, track, music(corpus, track, 12)),
                    (Part.ANNOUNCEMENT, name, with_noise(prompt(corpus, name), dbov)),
                    (Part.MUSIC, track, music(corpus, track, 10, 20)),
                ],
            )
            for track in moh_tracks(corpus)
            for name in ANNOUNCEMENTS
        )
        count, false = _count_false(sessions)
        print(f"  noise at {dbov:g} dBov: {len(false)} false of {count}")


def _measure_cost(corpus: Corpus) -> None:
    session = hold_then_human(corpus, moh_tracks(corpus)[0], "vk5qi.wav")
    started = time.perf_counter()
    stream(SimpleHoldDetector(), session.pcm, 0.02)
    elapsed = time.perf_counter() - started
    packets = session.duration / 0.02
    share = elapsed / session.duration * 100
    print(f"\nCost: {elapsed / packets * 1e6:.0f} us per 20 ms packet ({share:.2f}% of one core)")


def main() -> None:
    corpus = corpus_or_none()
    if corpus is None:
        raise SystemExit("the recording corpus is not available (scripts/fetch_corpus.py)")
    _measure_features(corpus)
    _measure_humans(corpus)
    _measure_pure_holds(corpus)
    _measure_held_out_prompts(corpus)
    _measure_noisy_recordings(corpus)
    _measure_cost(corpus)


if __name__ == "__main__":
    main()


def best_match(haystack: np.ndarray, clip: np.ndarray, window: int = 4000, step: int = 2000) -> float:
    """The best normalised cross-correlation of any voiced 0.5 s window of ``clip`` anywhere in
    ``haystack``: 1.0 when that window is in it as is; audio mixed over it lowers the score
    (two voices at equal level: about 0.7), a clip that is not in it scores near 0."""
    h = np.asarray(haystack, np.float64)
    if len(h) < window:
        return 0.0
    energy = np.concatenate([[0.0], np.cumsum(h * h)])
    local = np.sqrt(np.maximum(energy[window:] - energy[:-window], 1e-9))
    size = 1 << int(np.ceil(np.log2(len(h) + window)))
    spectrum = np.fft.rfft(h, size)
    best = 0.0
    for start in range(0, len(clip) - window + 1, step):
        needle = np.asarray(clip[start : start + window], np.float64)
        if np.sqrt(np.mean(needle**2)) < 32768 * 10 ** (-40 / 20):  # not voiced: matches any quiet stretch
            continue
        corr = np.fft.irfft(spectrum * np.conj(np.fft.rfft(needle, size)), size)[: len(h) - window + 1]
        best = max(best, float(np.max(corr / (local * np.linalg.norm(needle)))))
    return best
