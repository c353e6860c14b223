"""Reading and writing WAV files: the one place that knows the RIFF layout.

``load_audio`` reads a WAV (or codec2's headerless ``.raw``) at the rate the caller wants.

Reads PCM (8/16/24/32-bit), IEEE float, A-law and mu-law WAV (the stdlib ``wave`` module
refuses the G.711 and float formats that telephony recordings often use).
"""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from app.media.g711 import alaw_decode, ulaw_decode

_FMT_PCM, _FMT_FLOAT, _FMT_ALAW, _FMT_ULAW, _FMT_EXTENSIBLE = 1, 3, 6, 7, 0xFFFE


class WavError(ValueError):
    """The file is not a WAV file this module can read."""


@dataclass(frozen=True)
class Audio:
    """Mono int16 PCM and its sample rate."""

    pcm: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate


def _chunks(file: BinaryIO, size: int, path: str | Path) -> Iterator[tuple[bytes, int, int]]:
    """(id, size, offset of its body) of each RIFF chunk of a WAVE file of ``size`` bytes; reads
    only the headers (the caller reads the bodies it wants)."""
    file.seek(0)
    head = file.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    pos = 12
    while pos + 8 <= size:
        file.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", file.read(8))
        yield chunk_id, chunk_size, pos + 8
        pos += 8 + chunk_size + (chunk_size & 1)


def read_wav(path: str | Path) -> Audio:
    """Read a WAV file as mono int16 (channels are averaged)."""
    data = Path(path).read_bytes()
    fmt = None
    body = None
    for chunk_id, size, start in _chunks(io.BytesIO(data), len(data), path):
        if chunk_id == b"fmt ":
            if size < 16:
                raise WavError(f"{path}: fmt chunk too short")
            fmt = struct.unpack_from("<HHIIHH", data, start)
            if fmt[0] == _FMT_EXTENSIBLE and size >= 40:
                # The real format tag is the first two bytes of the SubFormat GUID.
                fmt = (struct.unpack_from("<H", data, start + 24)[0],) + fmt[1:]
        elif chunk_id == b"data":
            body = data[start : start + size]
    if fmt is None or body is None:
        raise WavError(f"{path}: missing fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    if channels < 1 or rate <= 0:
        raise WavError(f"{path}: invalid channel count or sample rate")
    samples = _decode(tag, bits, body, path)
    usable = len(samples) - len(samples) % channels
    frames = samples[:usable].reshape(-1, channels)
    mono = frames[:, 0] if channels == 1 else frames.mean(axis=1)
    return Audio(np.clip(np.round(mono), -32768, 32767).astype(np.int16), rate)


def wav_seconds(path: str | Path) -> float:
    """A WAV file's duration from its headers alone (a call's recording can be hundreds of MB).
    A data size left unknown (0xFFFFFFFF by a writer that never finished) or past the end of the
    file counts what the file holds."""
    path = Path(path)
    size = path.stat().st_size
    byte_rate = None
    with path.open("rb") as file:
        for chunk_id, chunk_size, start in _chunks(file, size, path):
            if chunk_id == b"fmt ":
                file.seek(start)
                _, channels, rate, byte_rate = struct.unpack("<HHII", file.read(12))
                if channels < 1 or rate <= 0 or byte_rate <= 0:
                    raise WavError(f"{path}: invalid format")
            elif chunk_id == b"data":
                if byte_rate is None:
                    raise WavError(f"{path}: data before fmt")
                return min(chunk_size, size - start) / byte_rate
    raise WavError(f"{path}: missing fmt or data chunk")


def _decode(tag: int, bits: int, body: bytes, path) -> np.ndarray:
    if tag == _FMT_PCM:
        if bits == 8:
            return (np.frombuffer(body, np.uint8).astype(np.int32) - 128) * 256
        if bits == 16:
            return np.frombuffer(body[: len(body) // 2 * 2], "<i2").astype(np.int32)
        if bits == 24:
            raw = np.frombuffer(body[: len(body) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
            value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            return np.where(value >= 1 << 23, value - (1 << 24), value) >> 8
        if bits == 32:
            return np.frombuffer(body[: len(body) // 4 * 4], "<i4") >> 16
    elif tag == _FMT_FLOAT and bits in (32, 64):
        dtype = "<f4" if bits == 32 else "<f8"
        usable = len(body) // (bits // 8) * (bits // 8)
        return np.frombuffer(body[:usable], dtype).astype(np.float64) * 32767.0
    elif tag == _FMT_ULAW:
        return ulaw_decode(body).astype(np.int32)
    elif tag == _FMT_ALAW:
        return alaw_decode(body).astype(np.int32)
    raise WavError(f"{path}: unsupported WAV format tag {tag} with {bits}-bit samples")


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int = 8000) -> None:
    """Write mono int16 PCM as a 16-bit WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def load_audio(path: Path, sample_rate: int = 8000) -> np.ndarray:
    """Load an audio file as mono int16 at ``sample_rate``.

    Handles any WAV that ``read_wav`` reads, at any rate, and codec2's headerless ``.raw`` (8 kHz s16le).
    Resampling is linear interpolation after a moving-average anti-alias filter: good enough
    for telephone-band material that is then mu-law coded anyway.
    """
    path = Path(path)
    if path.suffix == ".raw":
        pcm, rate = np.fromfile(path, dtype="<i2"), 8000
    else:
        audio = read_wav(path)
        pcm, rate = audio.pcm, audio.sample_rate
    return resample(pcm, rate, sample_rate)


def resample(pcm: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return np.asarray(pcm, dtype=np.int16)
    x = np.asarray(pcm, dtype=np.float64)
    if target < rate:
        taps = int(round(rate / target))
        if taps > 1:
            x = np.convolve(x, np.ones(taps) / taps, mode="same")
    n_out = int(len(x) * target / rate)
    positions = np.arange(n_out) * (rate / target)
    out = np.interp(positions, np.arange(len(x)), x)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)
