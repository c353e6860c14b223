"""Audio for the simulated PBX: 20 ms frames, synthesised call-progress tones, corpus clips.

Pure numpy, no I/O except reading corpus files through ``AudioLibrary``. Every frame is
160 int16 samples (8 kHz); ``None`` stands for a silent frame so that idle channels cost nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from app.corpus import Corpus, load_audio

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE

# Asterisk's locally generated indications measured -13.1 dBFS RMS in the captures.
TONE_LEVEL_DBFS = -13.1
# A frame louder than this counts as someone talking (speech prompts sit at -17..-26 dBFS).
VOICE_RMS_THRESHOLD = 32768 * 10 ** (-40 / 20)

Frame = np.ndarray  # int16, FRAME_SAMPLES long

SIT_SEQUENCES: dict[str, tuple[tuple[float, float], ...]] = {
    # ITU-T E.180 / Telcordia special information tones: (frequency Hz, seconds)
    "intercept": ((913.8, 0.274), (1370.6, 0.274), (1776.7, 0.380)),
    "vacant-code": ((985.2, 0.380), (1370.6, 0.274), (1776.7, 0.380)),
    "reorder": ((913.8, 0.274), (1428.5, 0.380), (1776.7, 0.380)),
    "no-circuit": ((985.2, 0.380), (1428.5, 0.380), (1776.7, 0.380)),
}
AUDIO_REF_PATTERN = re.compile(r"^(prompt|moh|speech|tone|silence|sit):(.+)$")


class AudioRefError(ValueError):
    """An audio reference that cannot be parsed or loaded."""


def check_audio_ref(ref: str) -> str:
    """Validate the syntax of an audio reference (no file access)."""
    match = AUDIO_REF_PATTERN.match(ref)
    if not match:
        raise AudioRefError(
            f"{ref!r} is not an audio reference: use prompt:NAME, moh:TRACK, speech:FILE, tone:FILE, "
            f"silence:SECONDS or sit:{'|'.join(SIT_SEQUENCES)}"
        )
    kind, name = match.groups()
    if kind == "silence":
        try:
            seconds = float(name)
        except ValueError:
            raise AudioRefError(f"{ref!r}: silence needs a number of seconds") from None
        if not 0 < seconds <= 600:
            raise AudioRefError(f"{ref!r}: silence must be between 0 and 600 seconds")
    elif kind == "sit" and name not in SIT_SEQUENCES:
        raise AudioRefError(f"{ref!r}: unknown SIT, use one of {', '.join(SIT_SEQUENCES)}")
    return ref


def _amplitude(dbfs: float) -> float:
    return 32768 * 10 ** (dbfs / 20)


def sine_mix(freqs: tuple[float, ...], seconds: float, rms_dbfs: float = TONE_LEVEL_DBFS) -> np.ndarray:
    """Equal-level sum of sines whose total RMS is ``rms_dbfs``."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    per_tone = _amplitude(rms_dbfs) * np.sqrt(2.0 / len(freqs))
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) * per_tone
    return np.clip(np.round(wave), -32768, 32767).astype(np.int16)


def cadence(freqs: tuple[float, ...], on: float, off: float) -> np.ndarray:
    """One period of an on/off call-progress tone (a whole number of frames)."""
    tone = sine_mix(freqs, on)
    return np.concatenate([tone, np.zeros(int(round(off * SAMPLE_RATE)), np.int16)])


def sit_tone(kind: str) -> np.ndarray:
    return np.concatenate([sine_mix((f,), seconds, rms_dbfs=-16.0) for f, seconds in SIT_SEQUENCES[kind]])


# North American indications, as Asterisk's indications.conf [us] generates them.
RINGBACK_CYCLE = cadence((440.0, 480.0), on=2.0, off=4.0)
BUSY_CYCLE = cadence((480.0, 620.0), on=0.5, off=0.5)


def noise_frame(rng: np.random.Generator, rms_dbfs: float) -> Frame:
    """A line noise floor: quiet, but not digital zero."""
    return np.clip(np.round(rng.normal(0.0, _amplitude(rms_dbfs), FRAME_SAMPLES)), -32768, 32767).astype(np.int16)


def is_voice(frame: np.ndarray | None) -> bool:
    if frame is None:
        return False
    samples = frame.astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) > VOICE_RMS_THRESHOLD


class LoopCursor:
    """Plays a periodic signal frame by frame, from the start of its period."""

    def __init__(self, cycle: np.ndarray) -> None:
        self._cycle = cycle
        self._pos = 0

    def next_frame(self) -> Frame:
        end = self._pos + FRAME_SAMPLES
        if end <= len(self._cycle):
            frame = self._cycle[self._pos : end]
        else:
            frame = np.concatenate([self._cycle[self._pos :], self._cycle[: end - len(self._cycle)]])
        self._pos = end % len(self._cycle)
        return frame


class ClipCursor:
    """Plays a clip once, frame by frame; the last frame is zero-padded."""

    def __init__(self, pcm: np.ndarray) -> None:
        self._pcm = pcm
        self._pos = 0

    @property
    def done(self) -> bool:
        return self._pos >= len(self._pcm)

    def next_frame(self) -> Frame | None:
        if self.done:
            return None
        end = self._pos + FRAME_SAMPLES
        frame = self._pcm[self._pos : end]
        self._pos = end
        if len(frame) < FRAME_SAMPLES:
            frame = np.concatenate([frame, np.zeros(FRAME_SAMPLES - len(frame), np.int16)])
        return frame


@dataclass
class AudioLibrary:
    """Resolves audio references to 8 kHz int16 PCM, loading each file once."""

    corpus: Corpus

    def __post_init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}
        self._sequences: dict[tuple[str, ...], np.ndarray] = {}

    def clip(self, ref: str) -> np.ndarray:
        pcm = self._cache.get(ref)
        if pcm is None:
            pcm = self._load(ref)
            self._cache[ref] = pcm
        return pcm

    def sequence(self, refs: list[str] | tuple[str, ...]) -> np.ndarray:
        """The clips played one after the other, as one array."""
        key = tuple(refs)
        pcm = self._sequences.get(key)
        if pcm is None:
            parts = [self.clip(ref) for ref in key]
            pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
            self._sequences[key] = pcm
        return pcm

    def _load(self, ref: str) -> np.ndarray:
        check_audio_ref(ref)
        kind, _, name = ref.partition(":")
        if kind == "silence":
            return np.zeros(int(round(float(name) * SAMPLE_RATE)), np.int16)
        if kind == "sit":
            return sit_tone(name)
        try:
            return load_audio(self.corpus.resolve(ref))
        except Exception as exc:  # a missing or unreadable file: report the reference
            raise AudioRefError(f"{ref}: {exc}") from exc
