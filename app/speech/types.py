"""Plain data shared by every speech provider: audio formats, transcripts, errors, resampling.

Audio formats are explicit (as in rhasspy/wyoming): a chunk says its rate, sample width,
channels and encoding, so nothing guesses whether bytes are mu-law or linear PCM.
Times are seconds on the call's timeline (the clock the caller stamps audio with), never
seconds since a provider's stream started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd
from typing import Literal

import numpy as np

from app import provider_errors
from app.media.g711 import ulaw_decode, ulaw_encode

TELEPHONE_RATE = 8000
AudioEncoding = Literal["pcm_s16le", "mulaw"]


@dataclass(frozen=True)
class AudioFormat:
    """How audio bytes are laid out. ``width`` is bytes per sample: 2 for pcm_s16le, 1 for mulaw."""

    rate: int
    width: int
    channels: int
    encoding: AudioEncoding

    def __post_init__(self) -> None:
        expected_width = {"pcm_s16le": 2, "mulaw": 1}.get(self.encoding)
        if expected_width is None:
            raise ValueError(f"unknown audio encoding {self.encoding!r}")
        if self.width != expected_width:
            raise ValueError(f"{self.encoding} has {expected_width}-byte samples, got width={self.width}")
        if self.rate <= 0 or self.channels <= 0:
            raise ValueError(f"rate and channels must be positive, got {self.rate} Hz x {self.channels}")

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.width * self.channels


PCM_8K = AudioFormat(rate=TELEPHONE_RATE, width=2, channels=1, encoding="pcm_s16le")
MULAW_8K = AudioFormat(rate=TELEPHONE_RATE, width=1, channels=1, encoding="mulaw")


@dataclass(frozen=True)
class AudioChunk:
    """Audio bytes in a stated format; ``t`` is the call time of the first sample."""

    audio: bytes
    format: AudioFormat
    t: float

    @classmethod
    def from_pcm(cls, pcm: np.ndarray, t: float) -> AudioChunk:
        """Wrap int16 8 kHz mono samples (what the RTP endpoint's frames carry)."""
        return cls(np.asarray(pcm, dtype="<i2").tobytes(), PCM_8K, t)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.format.bytes_per_second

    def to_pcm(self) -> np.ndarray:
        """int16 mono at the chunk's rate (channels are averaged)."""
        if self.format.encoding == "mulaw":
            samples = ulaw_decode(self.audio)
        else:
            samples = np.frombuffer(self.audio, dtype="<i2")
        if self.format.channels > 1:
            frames = samples[: len(samples) // self.format.channels * self.format.channels]
            samples = frames.reshape(-1, self.format.channels).mean(axis=1).round().astype(np.int16)
        return np.asarray(samples, dtype=np.int16)

    def to_mulaw(self) -> bytes:
        """G.711 mu-law bytes at 8 kHz mono: mu-law input passes through untouched."""
        if self.format == MULAW_8K:
            return self.audio
        return ulaw_encode(resample(self.to_pcm(), self.format.rate, TELEPHONE_RATE))


@dataclass(frozen=True)
class Word:
    text: str
    t_start: float
    t_end: float


@dataclass(frozen=True)
class Transcript:
    """What a recogniser heard, on the call's timeline.

    ``is_final``: the whole utterance, no longer revised (batch recognisers only emit these;
    Deepgram's interim guesses come first with ``is_final=False`` and grow until the final).
    ``confidence``: 0..1 where the provider gives one. ``words`` may be empty when the provider
    gives no word timings.
    """

    text: str
    t_start: float
    t_end: float
    is_final: bool
    confidence: float | None = None
    words: list[Word] = field(default_factory=list)


class SpeechError(RuntimeError):
    """A speech provider failed."""


class SttError(SpeechError):
    """Speech-to-text failed; ``provider`` names who failed."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        provider_errors.count(provider, "stt")


class SttUnavailable(SttError):
    """The provider cannot be used at all: no key, key refused, SDK or model missing."""


class SttConnectionError(SttError):
    """The provider was reachable once but the connection or a request failed (network, 5xx, timeout)."""


class TtsError(SpeechError):
    """Text-to-speech failed; ``provider`` names who failed."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        provider_errors.count(provider, "tts")


def resample(pcm: np.ndarray, rate: int, target: int) -> np.ndarray:
    """int16 mono from ``rate`` to ``target`` Hz with a Kaiser-windowed sinc (like scipy's resample_poly).

    Polyphase: the output is exact rational resampling, zero-phase (no delay), and a
    downsampling low-pass at 0.95 x the lower Nyquist keeps what would alias out (a 5 kHz
    component of 24 kHz audio does not come back at 3 kHz after 8 kHz).
    """
    samples = np.asarray(pcm, dtype=np.float64)
    if rate == target:
        return np.asarray(pcm, dtype=np.int16).copy()
    divisor = gcd(rate, target)
    up, down = target // divisor, rate // divisor
    kernel, half = _lowpass_kernel(up, down)
    n_out = -(-len(samples) * up // down)
    taps_per_output = -(-len(kernel) // up) + 1
    out = np.empty(n_out, dtype=np.float64)
    block = max(1, 2_000_000 // taps_per_output)  # bounds the index matrices' memory
    for first in range(0, n_out, block):
        positions = np.arange(first, min(first + block, n_out), dtype=np.int64) * down + half
        first_input = -((len(kernel) - 1 - positions) // up)  # ceil((position - L + 1) / up)
        inputs = first_input[:, None] + np.arange(taps_per_output)
        kernel_index = positions[:, None] - inputs * up
        valid = (kernel_index >= 0) & (kernel_index < len(kernel)) & (inputs >= 0) & (inputs < len(samples))
        products = samples[np.clip(inputs, 0, len(samples) - 1)] * kernel[np.clip(kernel_index, 0, len(kernel) - 1)]
        out[first : first + len(positions)] = np.where(valid, products, 0.0).sum(axis=1)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


_KERNELS: dict[tuple[int, int], tuple[np.ndarray, int]] = {}


def _lowpass_kernel(up: int, down: int) -> tuple[np.ndarray, int]:
    key = (up, down)
    if key not in _KERNELS:
        widest = max(up, down)
        half = 10 * widest
        cutoff = 0.95 / widest  # relative to the upsampled rate's Nyquist
        offsets = np.arange(-half, half + 1, dtype=np.float64)
        kernel = cutoff * np.sinc(cutoff * offsets) * np.kaiser(2 * half + 1, 5.0)
        # Unity gain at DC per output phase; the factor ``up`` makes up for the inserted zeros.
        _KERNELS[key] = (kernel / kernel.sum() * up, half)
    return _KERNELS[key]
