"""Audio fingerprints of recordings: has this announcement been heard before in the call?

Landmark hashes over a spectrogram (the idea behind Shazam-style matching): the strongest
spectral peaks of each 20 ms frame, paired with the peaks of the next few frames, give hashes
``(f1, f2, dt)``. The same recording played again gives the same hashes at the same relative
times, whatever plays around or under it, so a replay shows many hashes that agree on *one*
time offset, while different speech only shares hashes by chance, at scattered offsets.

Why it survives the call path: mu-law coding and a music bed add noise and peaks of their own,
but the strongest formant and harmonic peaks of a prompt stay where they are; frequencies are
coarsened to ~62 Hz and times to whole frames, so a different 20 ms frame grid on a replay moves
few hashes. Pure and vectorised: spectra in (``app.audio.features.FrameFeatures.spectrum``),
hashes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_FFT_SIZE = 256
_BAND_LOW_HZ, _BAND_HIGH_HZ = 250.0, 3400.0
_PEAKS_PER_FRAME = 3
# A peak must be the largest within this many bins either side in its frame...
_PEAK_HALF_WIDTH_BINS = 3
# ...and stand this far above the frame's median (dB) so that a noise floor yields no landmarks.
_PEAK_ABOVE_MEDIAN_DB = 10.0
_FAN_OUT_FRAMES = (2, 3, 4, 5, 6, 7, 8)  # pair every peak with the peaks of these later frames
# A pair of peaks in neighbouring cells is a held harmonic: any voice has those, a hash of it
# says nothing about which recording plays.
_MIN_CELL_DISTANCE = 2
_FREQ_COARSEN = 1  # bins per hash cell (31.25 Hz)
_OFFSET_TOLERANCE_FRAMES = 1  # a replay on another frame grid lands one frame off


@dataclass(frozen=True)
class Landmarks:
    """Hashes and the frame each starts at (row-aligned), for one stretch of audio."""

    hashes: np.ndarray  # int64
    frames: np.ndarray  # int64, frame index within the stretch

    def __len__(self) -> int:
        return len(self.hashes)

    def head(self, frames: int) -> Landmarks:
        """The landmarks of the first ``frames`` frames (a replay is known by its beginning)."""
        keep = self.frames < frames
        return Landmarks(self.hashes[keep], self.frames[keep])

    def to_bytes(self) -> bytes:
        """A compact, versioned form for storage: hashes fit 32 bits, frames 16."""
        if len(self) and (self.hashes.max() >= 2**31 or self.frames.max() >= 2**16):
            raise ValueError("landmarks out of range for storage")
        count = np.array([len(self)], dtype="<u4").tobytes()
        return _MAGIC + count + self.hashes.astype("<i4").tobytes() + self.frames.astype("<u2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Landmarks:
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
            raise ValueError("not a stored fingerprint")
        start = len(_MAGIC) + 4
        count = int(np.frombuffer(data[len(_MAGIC) : start], dtype="<u4")[0])
        if len(data) != start + 6 * count:
            raise ValueError(f"stored fingerprint of {count} landmarks has {len(data)} bytes")
        hashes = np.frombuffer(data[start : start + 4 * count], dtype="<i4").astype(np.int64)
        frames = np.frombuffer(data[start + 4 * count :], dtype="<u2").astype(np.int64)
        return cls(hashes, frames)


_MAGIC = b"HSFP1"


@dataclass(frozen=True)
class Match:
    recording: int  # index in the memory
    votes: int  # hashes agreeing on the best offset
    share: float  # votes / hashes of the query
    offset_frames: int  # known frame - query frame
    prominence: float  # votes over the 90th percentile of the other offsets' votes


def landmarks(spectrum: np.ndarray, sample_rate: int = 8000) -> Landmarks:
    """Landmark hashes of a run of frames' power spectra (shape (frames, 129))."""
    count = len(spectrum)
    if count < 2:
        return Landmarks(np.zeros(0, np.int64), np.zeros(0, np.int64))
    freqs = np.fft.rfftfreq(_FFT_SIZE, 1.0 / sample_rate)
    band = np.flatnonzero((freqs >= _BAND_LOW_HZ) & (freqs <= _BAND_HIGH_HZ))
    log = 10.0 * np.log10(spectrum[:, band] + 1e-3)
    half = _PEAK_HALF_WIDTH_BINS
    padded = np.pad(log, ((0, 0), (half, half)), mode="constant", constant_values=-np.inf)
    local_max = np.max(sliding_window_view(padded, 2 * half + 1, axis=1), axis=2)
    candidate = (log >= local_max) & (log >= np.median(log, axis=1, keepdims=True) + _PEAK_ABOVE_MEDIAN_DB)
    strength = np.where(candidate, log, -np.inf)
    top = np.argsort(-strength, axis=1)[:, :_PEAKS_PER_FRAME]
    valid = np.take_along_axis(strength, top, axis=1) > -np.inf
    cells = (band[top] // _FREQ_COARSEN).astype(np.int64)  # (frames, peaks)

    hashes, starts = [], []
    for dt in _FAN_OUT_FRAMES:
        if dt >= count:
            break
        f1, f2 = cells[:-dt, :, None], cells[dt:, None, :]
        ok = valid[:-dt, :, None] & valid[dt:, None, :] & (np.abs(f1 - f2) >= _MIN_CELL_DISTANCE)
        key = (f1 * 256 + f2) * 16 + dt
        frame = np.broadcast_to(np.arange(count - dt)[:, None, None], key.shape)
        hashes.append(key[ok])
        starts.append(frame[ok])
    return Landmarks(np.concatenate(hashes).astype(np.int64), np.concatenate(starts).astype(np.int64))


class RecordingMemory:
    """Landmarks of the recordings heard so far in a call; finds a replay of any of them."""

    def __init__(self, capacity: int = 16, min_votes: int = 12, min_share: float = 0.1, min_prominence: float = 4.0) -> None:
        self._recordings: list[Landmarks] = []
        self._capacity = capacity
        self.min_votes = min_votes
        self.min_share = min_share
        self.min_prominence = min_prominence

    def __len__(self) -> int:
        return len(self._recordings)

    def remember(self, marks: Landmarks) -> bool:
        """Keep a recording that has just played; False when it was known already (or too short)."""
        if len(marks) < self.min_votes or self.matches(marks) is not None:
            return False
        # Sorted by hash once here, not on every lookup (hundreds per call).
        order = np.argsort(marks.hashes, kind="stable")
        self._recordings.append(Landmarks(marks.hashes[order], marks.frames[order]))
        del self._recordings[: -self._capacity]
        return True

    def export(self, head_frames: int = 750) -> list[bytes]:
        """The known recordings' beginnings, for the next call to the same company."""
        return [known.head(head_frames).to_bytes() for known in self._recordings]

    def load(self, stored: list[bytes]) -> int:
        """Know these recordings (``export`` of an earlier call) from now on; how many were new."""
        return sum(self.remember(Landmarks.from_bytes(data)) for data in stored)

    def best_match(self, query: Landmarks) -> Match | None:
        """The known recording that shares the most time-consistent hashes with ``query``."""
        best: Match | None = None
        if len(query) == 0:
            return None
        for index, known in enumerate(self._recordings):
            match = _align(known, query, index)
            if match is not None and (best is None or match.votes > best.votes):
                best = match
        return best

    def matches(self, query: Landmarks) -> Match | None:
        """The best match when it is strong enough to call ``query`` a replay, else None."""
        match = self.best_match(query)
        if match is None or match.votes < self.min_votes or match.share < self.min_share or match.prominence < self.min_prominence:
            return None
        return match


def _align(known: Landmarks, query: Landmarks, index: int) -> Match | None:
    """``known`` is sorted by hash (``RecordingMemory.remember``)."""
    left = np.searchsorted(known.hashes, query.hashes, side="left")
    right = np.searchsorted(known.hashes, query.hashes, side="right")
    counts = right - left
    if not counts.any():
        return None
    # Every (query hash, known occurrence) pair votes for one offset.
    query_index = np.repeat(np.arange(len(query)), counts)
    starts = np.repeat(left, counts)
    within = np.arange(len(query_index)) - np.repeat(np.cumsum(counts) - counts, counts)
    offsets = known.frames[starts + within] - query.frames[query_index]
    low = int(offsets.min())
    histogram = np.bincount(offsets - low)
    tolerance = _OFFSET_TOLERANCE_FRAMES
    # Votes within one frame of an offset count together (kernel sum), each query hash once.
    smoothed = np.convolve(histogram, np.ones(2 * tolerance + 1, dtype=np.int64), mode="same")
    peak = int(np.argmax(smoothed))
    near = np.abs(offsets - low - peak) <= tolerance
    votes = len(np.unique(query_index[near]))
    # Chance agreement spreads over every offset; a replay towers over the offsets around it.
    background = np.delete(smoothed, np.arange(max(0, peak - 3 * tolerance - 1), min(len(smoothed), peak + 3 * tolerance + 2)))
    typical = float(np.percentile(background, 90)) if len(background) else 0.0
    return Match(
        recording=index,
        votes=votes,
        share=votes / len(query),
        offset_frames=peak + low,
        prominence=votes / max(typical, 1.0),
    )
