"""Stored recordings of the simulated PBX: WAV files (8 kHz, 16-bit mono) in one directory."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from app.media.wavfile import read_wav
from app.sim.audio import FRAME_SAMPLES, SAMPLE_RATE
from app.sim.model import AriError

_SILENT_FRAME = np.zeros(FRAME_SAMPLES, np.int16).tobytes()


class WavRecordingWriter:
    """Appends 20 ms frames to a WAV file as they come (the header is fixed up on close)."""

    def __init__(self, path: Path, *, append: bool) -> None:
        previous = read_wav(path).pcm if append and path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(path), "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        if previous is not None:
            self._wav.writeframesraw(previous.astype("<i2").tobytes())
        self.frames = 0

    def write(self, frame: np.ndarray | None) -> None:
        self._wav.writeframesraw(_SILENT_FRAME if frame is None else frame.astype("<i2").tobytes())
        self.frames += 1

    def close(self) -> None:
        self._wav.close()


class RecordingStore:
    """Recordings by name, as Asterisk's /recordings/stored sees them (format is always wav)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts:
            raise AriError(400, f"Invalid recording name {name!r}")
        return self.directory / f"{name}.wav"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def open(self, name: str, *, append: bool) -> WavRecordingWriter:
        return WavRecordingWriter(self.path(name), append=append)

    def list(self) -> list[dict[str, str]]:
        names = sorted(p.relative_to(self.directory).with_suffix("").as_posix() for p in self.directory.rglob("*.wav"))
        return [{"name": name, "format": "wav"} for name in names]

    def get(self, name: str) -> dict[str, str]:
        if not self.exists(name):
            raise AriError(404, "Recording not found")
        return {"name": name, "format": "wav"}

    def read(self, name: str) -> bytes:
        self.get(name)
        return self.path(name).read_bytes()

    def pcm(self, name: str) -> np.ndarray | None:
        return read_wav(self.path(name)).pcm if self.exists(name) else None

    def delete(self, name: str) -> None:
        self.get(name)
        self.path(name).unlink()
