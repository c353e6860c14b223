"""Labelled test sessions built from the recording corpus, heard the way a call hears them.

A session is a concatenation of corpus pieces (hold music, announcements, a person talking,
line noise) passed through G.711 mu-law, with the time span of every piece, so tests can ask
"did the detector decide before the person started?" and measure latencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from app.audio.types import DetectorOutput, HoldDetected, HumanDetected
from app.corpus import Corpus, CorpusError, ensure_corpus, load_audio
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
# Real people talking spontaneously (codec2-examples).
HUMANS = ("kristoff.raw", "vk5qi.wav", "cq_ref.raw", "ve9qrp.wav")


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


def music(corpus: Corpus, track: str, seconds: float, offset: float = 0.0) -> np.ndarray:
    """``seconds`` of a hold music track from ``offset``, wrapping round at the end as MOH does."""
    audio = load_audio(corpus.resolve(f"moh:{track}"))
    start = int(offset * RATE) % len(audio)
    count = int(seconds * RATE)
    reps = (start + count) // len(audio) + 1
    return np.tile(audio, reps)[start : start + count]


def moh_tracks(corpus: Corpus) -> list[str]:
    return [path.stem for path in corpus.moh_tracks()]


def prompt(corpus: Corpus, name: str) -> np.ndarray:
    return load_audio(corpus.prompt(name))


def human(corpus: Corpus, name: str, max_seconds: float | None = None) -> np.ndarray:
    audio = load_audio(corpus.speech(name))
    return audio if max_seconds is None else audio[: int(max_seconds * RATE)]


def over_music(speech: np.ndarray, bed: np.ndarray, bed_db: float = -15.0) -> np.ndarray:
    """An announcement over a music bed ``bed_db`` below the speech's level."""
    bed = bed[: len(speech)].astype(np.float64)
    speech_rms = _rms(speech)
    gain = speech_rms * 10 ** (bed_db / 20) / max(_rms(bed), 1.0)
    return _clip(speech.astype(np.float64) + gain * bed)


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


def build(name: str, parts: list[tuple[Part, str, np.ndarray]]) -> Session:
    """Concatenate labelled pieces and pass the whole through mu-law."""
    pieces: list[Piece] = []
    t = 0.0
    for part, ref, pcm in parts:
        seconds = len(pcm) / RATE
        pieces.append(Piece(part, ref, t, t + seconds))
        t += seconds
    pcm = np.concatenate([np.asarray(p, dtype=np.int16) for _, _, p in parts])
    return Session(name=name, pcm=telephone(pcm), pieces=tuple(pieces))


def hold_then_human(corpus: Corpus, track: str, person: str, offset: float = 0.0) -> Session:
    """Music 20 s, periodic announcement, music 15 s, "you are next", music 10 s, a person, 3 s of quiet noise."""
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
    announcements: list[str],
    *,
    music_seconds: float = 12.0,
    offset: float = 0.0,
    bed_db: float | None = None,
) -> Session:
    """Music and announcements alternating, no person: ``bed_db`` plays the announcements over music."""
    parts: list[tuple[Part, str, np.ndarray]] = [(Part.MUSIC, track, music(corpus, track, music_seconds, offset))]
    position = offset + music_seconds
    for name in announcements:
        speech = prompt(corpus, name)
        if bed_db is None:
            parts.append((Part.ANNOUNCEMENT, name, speech))
        else:
            bed = music(corpus, track, len(speech) / RATE + 0.1, position)
            parts.append((Part.ANNOUNCEMENT_OVER_MUSIC, name, over_music(speech, bed, bed_db)))
        position += len(speech) / RATE
        parts.append((Part.MUSIC, track, music(corpus, track, music_seconds, position)))
        position += music_seconds
    suffix = "" if bed_db is None else f"@bed{bed_db:g}dB"
    return build(f"{track}:{'+'.join(announcements)}{suffix}", parts)


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


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(pcm, dtype=np.float64))))) if len(pcm) else 0.0


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
