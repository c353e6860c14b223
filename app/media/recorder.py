"""Call recordings written as the audio arrives.

A two-hour call is ~115 MB of 16-bit 8 kHz PCM, so nothing is held in memory: samples go
straight to a buffered file and the RIFF sizes are filled in on close. Until then the header
carries 0xFFFFFFFF sizes, the usual "length unknown" marker of streaming WAV writers, so a file
left behind by a crash is still readable (``read_wav`` and most tools read to the end of file).
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

_UNKNOWN_SIZE = 0xFFFFFFFF
_HEADER_BYTES = 44
_FORMAT_PCM = 1
_MAX_DATA_BYTES = 0xFFFFFFFF - (_HEADER_BYTES - 8)  # RIFF sizes are 32-bit: ~74 h at 8 kHz


def _header(data_bytes: int, sample_rate: int) -> bytes:
    riff_size = _UNKNOWN_SIZE if data_bytes == _UNKNOWN_SIZE else data_bytes + _HEADER_BYTES - 8
    channels, bits = 1, 16
    block_align = channels * bits // 8
    return (
        struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        + struct.pack(
            "<4sIHHIIHH", b"fmt ", 16, _FORMAT_PCM, channels, sample_rate, sample_rate * block_align, block_align, bits
        )
        + struct.pack("<4sI", b"data", data_bytes)
    )


class StreamingWavWriter:
    """Mono 16-bit PCM WAV file written incrementally; use as a context manager or call close()."""

    def __init__(self, path: str | Path, sample_rate: int = 8000) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.samples_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._file.write(_header(_UNKNOWN_SIZE, sample_rate))

    @property
    def closed(self) -> bool:
        return self._file.closed

    @property
    def duration(self) -> float:
        return self.samples_written / self.sample_rate

    def write(self, pcm: np.ndarray) -> None:
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError(f"expected 1-D int16 PCM, got {pcm.dtype} with shape {pcm.shape}")
        if (self.samples_written + len(pcm)) * 2 > _MAX_DATA_BYTES:
            raise ValueError(f"{self.path}: WAV data would exceed 4 GiB")
        self._file.write(pcm.astype("<i2", copy=False).tobytes())
        self.samples_written += len(pcm)

    def close(self) -> None:
        """Write the final sizes and close; calling it again does nothing."""
        if self._file.closed:
            return
        self._file.seek(0)
        self._file.write(_header(self.samples_written * 2, self.sample_rate))
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
