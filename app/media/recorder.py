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


class SpeechTrack:
    """What the app sent into the call, laid on the far end's timeline (pure: samples in and out).

    The far end's recording holds one sample for each sample heard; this track holds exactly as
    many, so the two lie side by side and mix sample for sample. ``heard(far)`` moves the timeline
    on by the far end's next samples; what the app sends is placed on it as it leaves:

    - ``sent(pcm, talkspurt_start=True)``: the first frame of a talkspurt goes at the present (the
      far end's newest sample); the frames after it follow it without a gap (``talkspurt_start=False``),
      however sending and hearing jitter against each other;
    - ``place(pcm)``: audio at the present, mixed with what is there (the key tones Asterisk plays
      for us while nothing else is sent).

    A frame that leaves a little late still lands where it belongs because the track becomes final
    only ``latency_seconds`` behind the present: ``heard`` returns the samples that just became final
    (ours and the two mixed), ``flush`` the rest at the end. Audio that would land beyond
    ``max_ahead_seconds`` past the present (a far end that stopped sending) is dropped and counted.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        latency_seconds: float = 0.2,
        max_ahead_seconds: float = 60.0,
        block_seconds: float = 0.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.latency = round(latency_seconds * sample_rate)
        self.max_ahead = round(max_ahead_seconds * sample_rate)
        # Samples become final this many at a time (0: as each frame is heard): a frame's worth of
        # numpy calls per 20 ms frame costs more than the rest of a held call's recording.
        self.block = round(block_seconds * sample_rate)
        self.now = 0  # samples of the far end heard: the present
        self.final = 0  # samples returned by heard() and flush()
        self.said_samples = 0  # samples of our audio placed (silence fills the rest)
        self.dropped_samples = 0
        self._ours = np.zeros(0, np.int32)  # our audio from ``final`` on
        self._far = np.zeros(0, np.int16)  # the far end's samples from ``final`` on ...
        self._far_chunks: list[np.ndarray] = []  # ... and the frames after those, up to ``now``
        self._next: int | None = None  # where the talkspurt's next frame goes

    def sent(self, pcm: np.ndarray, *, talkspurt_start: bool) -> None:
        at = self.now if talkspurt_start or self._next is None else self._next
        at = self._mix(at, pcm)
        self._next = at + len(pcm)

    def place(self, pcm: np.ndarray) -> None:
        self._mix(self.now, pcm)

    def heard(self, far: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The far end's next samples (int16); returns (ours, mixed) for the samples now final
        (none until a block of them is)."""
        self._far_chunks.append(np.asarray(far, np.int16))
        self.now += len(far)
        upto = self.now - self.latency
        if upto - self.final < max(self.block, 1):
            return _NOTHING, _NOTHING
        return self._take(upto)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """The end of the call: the rest of the timeline up to the present."""
        self.dropped_samples += max(0, len(self._ours) - (self.now - self.final))  # sent past the far end's end
        ours, mixed = self._take(self.now)
        self._ours = np.zeros(0, np.int32)
        return ours, mixed

    def _mix(self, at: int, pcm: np.ndarray) -> int:
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError(f"expected 1-D int16 PCM, got {pcm.dtype} with shape {pcm.shape}")
        at = max(at, self.final)  # too late for what is final already: as early as still possible
        offset = at - self.final
        if at + len(pcm) > self.now + self.max_ahead:
            self.dropped_samples += len(pcm)
            return at
        end = offset + len(pcm)
        if end > len(self._ours):
            self._ours = np.concatenate([self._ours, np.zeros(end - len(self._ours), np.int32)])
        self._ours[offset:end] += pcm
        self.said_samples += len(pcm)
        return at

    def _take(self, upto: int) -> tuple[np.ndarray, np.ndarray]:
        if self._far_chunks:
            self._far = np.concatenate([self._far, *self._far_chunks])
            self._far_chunks.clear()
        count = upto - self.final
        far = self._far[:count]
        self._far = self._far[count:]
        self.final = upto
        if not len(self._ours):
            # Nothing of ours here (most of a call: the hold): silence, and the far end as it came.
            # Called for every frame heard, so it skips the int32 mix and the clipping.
            return np.zeros(count, np.int16), far
        ours = self._ours[:count]
        if len(ours) < count:
            ours = np.concatenate([ours, np.zeros(count - len(ours), np.int32)])
        mixed = ours + far
        self._ours = self._ours[count:]
        return _clip16(ours), _clip16(mixed)


_NOTHING = np.zeros(0, np.int16)
_NOTHING.flags.writeable = False


def _clip16(samples: np.ndarray) -> np.ndarray:
    return np.clip(samples, -32768, 32767).astype(np.int16)
