"""Per-frame and per-window audio features for telling hold music, recorded speech and a live voice apart.

Pure and vectorised: PCM in, numbers out. Audio is cut into 20 ms frames (``frame_features``:
level, zero crossings, a 256-point power spectrum); a window of frames (a few seconds) is
summarised by ``analyse_window``. A streaming caller computes each frame once and reuses it in
every window that covers it, so the cost per second of audio does not grow with the overlap.

What separates speech from music on 8 kHz mu-law (3 s windows of the corpus; balanced accuracy
of each feature alone, printed by ``python -m tests.audio_fixtures``, bounds asserted in
tests/unit/test_audio_features.py):

- ``harmonic_steadiness`` (~0.99): how alike the harmonic fine structure (the log spectrum
  minus its smooth envelope) of loud frames 100 ms apart is. Music holds pitches for notes and
  chords; a voice's pitch and formants move from one phoneme to the next. Removing the
  envelope makes it blind to the channel's colouring (radio, headset, band limits).
- ``spectral_steadiness`` (~0.96): the same on the whole spectral shape.
- ``loudness_std_db`` (~0.92) and ``pause_fraction`` (~0.93): the depth of loudness changes.
  Syllables and pauses swing frame levels by 20-30 dB; mixed, compressed music rarely by 10.
- flatness, centroid, zero-crossing rate, flux, syllable-rate modulation (0.57-0.88): reported
  in ``Classification.features`` for the record, not used for decisions.

The *pause* features describe the quiet frames of a window, where the source shows:

- ``noise_floor_fraction``: frames in stretches of >= 160 ms that hold a steady (no trend,
  within 6 dB), noise-like level well below the speech and above gated silence: the room,
  headset or line noise of an open microphone. The decays and quiet notes of music drift or
  are tonal; a music bed under an announcement is louder.
- ``clean_fraction``: frames in stretches of digital or gated silence, how a file played by a
  PBX pauses (no microphone is open).
- ``pause_steadiness``: harmonic steadiness of the frames between pause and speech level:
  high when a music bed plays under the speech.
"""


from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from app.audio.stats import median, percentile

FULL_SCALE_POWER = 32768.0**2
SILENCE_DBOV = -120.0  # the level reported for digital silence
FRAME_SECONDS = 0.02
_FFT_SIZE = 256

# A frame this far below the loud frames of its window is a pause (between syllables or words).
PAUSE_BELOW_PEAK_DB = 20.0
# Speech energy sits in this band; shape measures use only it, so mains hum (50/60 Hz and
# harmonics) and DC do not pass for tonal content.
_BAND_LOW_HZ, _BAND_HIGH_HZ = 250.0, 3400.0
# Frames this far below the loud ones, yet not silent, show what plays under the speech.
_BED_BELOW_PEAK_DB = 10.0
# Frames this far apart are compared by the steadiness measure (about one phoneme).
_STEADINESS_LAG_FRAMES = 5
# Smoothing across bins (~280 Hz) that separates the spectral envelope from harmonic peaks.
_ENVELOPE_SMOOTH_BINS = 9
# Syllable-rate band of the loudness envelope.
_MOD_LOW_HZ, _MOD_HIGH_HZ = 2.0, 8.0
# Noise floor: a stretch of this many frames whose levels stay within the tolerance.
# A decaying note drifts steadily downwards; a noise floor has no trend.
_FLOOR_STRETCH_FRAMES = 8
_FLOOR_TOLERANCE_DB = 6.0
_FLOOR_MAX_SLOPE_DB = 0.5  # per frame
# An open microphone's floor is above gated silence and well below speech (a music bed under
# an announcement is louder); it is noise-like (flat in the speech band) where music is tonal.
NOISE_FLOOR_MIN_DBOV, NOISE_FLOOR_MAX_DBOV = -70.0, -42.0
_NOISE_FLOOR_MIN_FLATNESS = 0.1
# Digital or gated silence: a stretch of this many frames below CLEAN_MAX_DBOV.
CLEAN_MAX_DBOV = -72.0
_CLEAN_STRETCH_FRAMES = 3
# The frames between pause and speech level must fill this share of a window to judge a bed.
_BED_MIN_SHARE = 0.1
# Fingerprint bands: vowels and voicing below 1 kHz, consonants above.
_ENVELOPE_BANDS = ((_BAND_LOW_HZ, 1000.0), (1000.0, _BAND_HIGH_HZ))
# Call-progress tone bands, wide enough for a 20 ms frame's spectral leakage (North American
# ringback 440+480 Hz and busy/reorder 480+620 Hz; a European 425 Hz tone falls in the first).
_RING_BAND = (380.0, 540.0)
_BUSY_HIGH_BAND = (560.0, 680.0)


@dataclass(frozen=True)
class FrameFeatures:
    """One entry per 20 ms frame (row-aligned arrays)."""

    level_db: np.ndarray  # (n,) dBov, SILENCE_DBOV for digital silence
    zcr: np.ndarray  # (n,) zero crossings per sample
    spectrum: np.ndarray  # (n, bins) power spectrum of the Hann-windowed frame

    def __len__(self) -> int:
        return len(self.level_db)

    def slice(self, start: int, stop: int) -> FrameFeatures:
        return FrameFeatures(self.level_db[start:stop], self.zcr[start:stop], self.spectrum[start:stop])


@dataclass(frozen=True)
class WindowFeatures:
    level_dbov: float  # mean power of the window
    peak_dbov: float  # level of the loud frames (90th percentile)
    loudness_std_db: float  # spread of frame levels: large for speech, small for music
    pause_fraction: float  # frames PAUSE_BELOW_PEAK_DB below the loud ones
    syllable_modulation: float  # share of the loudness envelope's modulation at 2-8 Hz
    spectral_steadiness: float  # similarity of loud frames' spectral shapes 100 ms apart
    harmonic_steadiness: float  # the same for their harmonic fine structure: held notes (music) high
    flatness: float  # spectral flatness of the loud frames (0 tonal .. 1 white)
    centroid_hz: float
    zcr: float  # zero crossings per sample, loud frames
    flux: float  # frame-to-frame spectral change between loud frames
    pause_steadiness: float  # harmonic steadiness of the quieter open frames (a music bed: high)
    noise_floor_fraction: float  # frames in steady noise-like floor stretches (open microphone)
    noise_floor_dbov: float  # median level of those frames (SILENCE_DBOV when none)
    clean_fraction: float  # frames in digital/gated silence stretches
    ring_ratio: float  # share of the power in the ringback band
    busy_ratio: float  # share of the power in the busy tone's upper band

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items()}


@dataclass(frozen=True)
class FloorMasks:
    """Per-frame pause floor flags for a window (row-aligned with its frames)."""

    noise_floor: np.ndarray  # bool: inside a steady, noise-like floor stretch
    clean: np.ndarray  # bool: inside a digital/gated silence stretch


def frame_features(pcm: np.ndarray, sample_rate: int = 8000) -> FrameFeatures:
    """Features of every whole 20 ms frame of ``pcm`` (a trailing partial frame is ignored)."""
    frame = frame_samples(sample_rate)
    count = len(pcm) // frame
    frames = np.asarray(pcm[: count * frame], dtype=np.float64).reshape(count, frame)
    power = np.mean(frames * frames, axis=1)
    with np.errstate(divide="ignore"):
        level_db = np.where(power > 0, 10.0 * np.log10(power / FULL_SCALE_POWER), SILENCE_DBOV)
    signs = np.signbit(frames)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / frame
    spectrum = np.abs(np.fft.rfft(frames * _hann(frame), n=_FFT_SIZE, axis=1)) ** 2
    return FrameFeatures(level_db=level_db, zcr=zcr, spectrum=spectrum)


@functools.lru_cache(maxsize=4)
def _hann(size: int) -> np.ndarray:
    window = np.hanning(size)
    window.flags.writeable = False  # shared by every call
    return window


def frame_samples(sample_rate: int) -> int:
    return int(round(sample_rate * FRAME_SECONDS))


def concat_frames(parts: list[FrameFeatures]) -> FrameFeatures:
    return FrameFeatures(
        level_db=np.concatenate([p.level_db for p in parts]),
        zcr=np.concatenate([p.zcr for p in parts]),
        spectrum=np.concatenate([p.spectrum for p in parts]),
    )


class FrameShapes:
    """What a window's spectral features take from each of its frames, one row per frame.

    A frame lies in six 3 s windows at a 0.5 s hop; a streaming caller derives these once per
    frame (``ShapeTracker``) and keeps them beside the frames instead of deriving them again for
    every window. Columns: the band's flatness, the centroid, the cosine of the frame's spectral
    shape and of its harmonic fine structure with those of the frame ``_STEADINESS_LAG_FRAMES``
    before, the spectral flux from the frame before (NaN where that frame is not known), and
    the power in all, in the ringback band and in the busy tone's upper band."""

    COLUMNS = ("flatness", "centroid_hz", "shape_similarity", "fine_similarity", "flux", "power", "ring_power", "busy_power")

    def __init__(self, values: np.ndarray) -> None:
        self.values = values  # (n, len(COLUMNS))

    def __len__(self) -> int:
        return len(self.values)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.COLUMNS.index(name)]


class ShapeTracker:
    """Derives ``FrameShapes`` frame by frame over a stream, carrying the rows that the next
    frames are compared with (the newest ``_STEADINESS_LAG_FRAMES`` shapes and fine structures,
    the newest normalised spectrum). The numbers are those ``analyse_window`` derives from the
    window's spectra, row for row."""

    def __init__(self, sample_rate: int = 8000) -> None:
        freqs, band = _band(sample_rate)
        self._freqs, self._band = freqs, band
        self._ring = (freqs >= _RING_BAND[0]) & (freqs <= _RING_BAND[1])
        self._busy = (freqs >= _BUSY_HIGH_BAND[0]) & (freqs <= _BUSY_HIGH_BAND[1])
        bins = int(np.count_nonzero(band))
        self._shape_units = np.zeros((0, bins))
        self._fine_units = np.zeros((0, bins))
        self._normalised = np.zeros((0, bins))

    def push(self, spectrum: np.ndarray) -> FrameShapes:
        """The rows of these frames (power spectra, oldest first), continuing the stream."""
        count = len(spectrum)
        values = np.full((count, len(FrameShapes.COLUMNS)), np.nan)
        if count == 0:
            return FrameShapes(values)
        band_spectrum = spectrum[:, self._band] + 1e-9
        log_spectrum = np.log(band_spectrum)
        mean_log = np.mean(log_spectrum, axis=1, keepdims=True)
        row_sum = np.sum(band_spectrum, axis=1, keepdims=True)
        shape, fine = _shape_and_fine(log_spectrum, mean_log)
        lag = _STEADINESS_LAG_FRAMES
        shape_units = np.concatenate([self._shape_units, _unit_rows(shape)])
        fine_units = np.concatenate([self._fine_units, _unit_rows(fine)])
        normalised = np.concatenate([self._normalised, band_spectrum / row_sum])
        known = len(shape_units) - count  # rows carried from earlier frames
        first = max(0, lag - known)  # this push's first row with a frame ``lag`` before it
        if first < count:
            start, stop = known + first, known + count
            values[first:, 2] = np.sum(shape_units[start:stop] * shape_units[start - lag : stop - lag], axis=1)
            values[first:, 3] = np.sum(fine_units[start:stop] * fine_units[start - lag : stop - lag], axis=1)
        if len(normalised) >= 2:  # the flux of every row that has a frame before it
            values[count - (len(normalised) - 1) :, 4] = np.sum(np.abs(np.diff(normalised, axis=0)), axis=1)
        values[:, 0] = _flatness(mean_log[:, 0], row_sum[:, 0], band_spectrum.shape[1])
        power = np.sum(spectrum, axis=1)
        values[:, 1] = (spectrum @ self._freqs) / (power + 1e-9)
        values[:, 5] = power
        values[:, 6] = np.sum(spectrum[:, self._ring], axis=1)
        values[:, 7] = np.sum(spectrum[:, self._busy], axis=1)
        self._shape_units = shape_units[-lag:]
        self._fine_units = fine_units[-lag:]
        self._normalised = normalised[-1:]
        return FrameShapes(values)


def frame_shapes(spectrum: np.ndarray, sample_rate: int = 8000) -> FrameShapes:
    """``FrameShapes`` of a stretch of frames on its own (the first rows have no frames before them)."""
    return ShapeTracker(sample_rate).push(spectrum)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    # np.linalg.norm(vectors, axis=1, keepdims=True), as it computes it, without its overhead.
    return vectors / (np.sqrt(np.add.reduce(vectors * vectors, axis=1, keepdims=True)) + 1e-9)


def _band(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    freqs = np.fft.rfftfreq(_FFT_SIZE, 1.0 / sample_rate)
    return freqs, (freqs >= _BAND_LOW_HZ) & (freqs <= min(_BAND_HIGH_HZ, sample_rate / 2))


def band_flatness(spectrum: np.ndarray, sample_rate: int = 8000) -> np.ndarray:
    """Spectral flatness per frame in the speech band (geometric over arithmetic mean)."""
    _, band = _band(sample_rate)
    band_spectrum = spectrum[:, band] + 1e-9
    return _flatness(np.mean(np.log(band_spectrum), axis=1), np.sum(band_spectrum, axis=1), band_spectrum.shape[1])


def _flatness(mean_log: np.ndarray, row_sum: np.ndarray, bins: int) -> np.ndarray:
    """Geometric over arithmetic mean of each row, from its mean log and its sum (as np.mean
    divides its sum by the count, so the arithmetic mean is exactly ``row_sum / bins``)."""
    return np.exp(mean_log) / (row_sum / bins)


def tonality_db(spectrum: np.ndarray, sample_rate: int = 8000) -> float:
    """How tonal a stretch of frames is: the spread (dB) of the fine structure (log spectrum minus
    its smooth envelope, as in ``harmonic_steadiness``) of their mean power spectrum in the speech band.

    Averaging frames smooths a noise floor towards its envelope, whatever its colour (white, pink,
    brown, a headset's hiss): about 3.5 / sqrt(frames) dB of spread is left (under 5 / sqrt(frames)
    in 99.5% of stretches, through mu-law, -64..-35 dBov). Music, even faint and through mu-law,
    keeps the peaks of its held notes and chords, and so do mains hum's harmonics."""
    _, band = _band(sample_rate)
    mean_spectrum = np.mean(spectrum[:, band], axis=0, keepdims=True) + 1e-9
    _, fine = _log_spectra(mean_spectrum)
    return float(np.std(fine) * 10.0 / np.log(10.0))


def floor_masks(
    frames: FrameFeatures, peak_dbov: float, sample_rate: int = 8000, flatness: np.ndarray | None = None
) -> FloorMasks:
    """Which frames of a window belong to an open-microphone noise floor or to clean silence
    (``flatness``: the frames' ``band_flatness`` if the caller has it already)."""
    level = frames.level_db
    noise_floor = np.zeros(len(level), dtype=bool)
    clean = np.zeros(len(level), dtype=bool)
    if len(level) >= _FLOOR_STRETCH_FRAMES:
        stretch = sliding_window_view(level, _FLOOR_STRETCH_FRAMES)
        highest, lowest = np.max(stretch, axis=1), np.min(stretch, axis=1)
        top = min(NOISE_FLOOR_MAX_DBOV, peak_dbov - PAUSE_BELOW_PEAK_DB)
        # The median lies between the extremes: most stretches (music, speech) fail on those
        # alone, and the costly statistics are computed for the rest only.
        candidate = np.flatnonzero(
            (highest - lowest <= _FLOOR_TOLERANCE_DB) & (highest >= NOISE_FLOOR_MIN_DBOV) & (lowest <= top)
        )
        steady = np.zeros(len(stretch), dtype=bool)
        if len(candidate):
            rows = stretch[candidate]
            medians = np.median(rows, axis=1)
            position = np.arange(_FLOOR_STRETCH_FRAMES) - (_FLOOR_STRETCH_FRAMES - 1) / 2
            slope = (rows - np.mean(rows, axis=1, keepdims=True)) @ position / np.sum(position**2)
            if flatness is None:
                flatness = band_flatness(frames.spectrum, sample_rate)
            stretch_flatness = sliding_window_view(flatness, _FLOOR_STRETCH_FRAMES)[candidate]
            steady[candidate] = (
                (medians >= NOISE_FLOOR_MIN_DBOV)
                & (medians <= top)
                & (np.abs(slope) <= _FLOOR_MAX_SLOPE_DB)
                & (np.median(stretch_flatness, axis=1) >= _NOISE_FLOOR_MIN_FLATNESS)
            )
        noise_floor = _spread(steady, _FLOOR_STRETCH_FRAMES, len(level))
    if len(level) >= _CLEAN_STRETCH_FRAMES:
        silent = sliding_window_view(level < CLEAN_MAX_DBOV, _CLEAN_STRETCH_FRAMES).all(axis=1)
        clean = _spread(silent, _CLEAN_STRETCH_FRAMES, len(level))
    return FloorMasks(noise_floor=noise_floor, clean=clean)


def _spread(starts: np.ndarray, width: int, length: int) -> np.ndarray:
    """Mark every frame covered by a stretch of ``width`` frames beginning where ``starts`` is true."""
    covered = np.zeros(length + 1, dtype=np.int32)
    index = np.flatnonzero(starts)
    np.add.at(covered, index, 1)
    np.add.at(covered, index + width, -1)
    return np.cumsum(covered[:length]) > 0


def window_features(frames: FrameFeatures, sample_rate: int = 8000) -> WindowFeatures:
    """Summarise a window of frames (a second or more of them for meaningful modulation)."""
    return analyse_window(frames, sample_rate)[0]


def analyse_window(
    frames: FrameFeatures, sample_rate: int = 8000, shapes: FrameShapes | None = None
) -> tuple[WindowFeatures, FloorMasks]:
    """The window's features and its per-frame floor flags. ``shapes``: the frames' rows from a
    ``ShapeTracker`` that saw the frames before them too (derived here when not given)."""
    level = frames.level_db
    if shapes is None:
        shapes = frame_shapes(frames.spectrum, sample_rate)
    peak = percentile(level, 90)
    mean_power = float(np.mean(10.0 ** (level / 10.0)))
    level_dbov = 10.0 * np.log10(mean_power) if mean_power > 10.0 ** (SILENCE_DBOV / 10.0) else SILENCE_DBOV
    # Clip the bottom so that digital silence does not dominate the spread.
    clipped = np.maximum(level, peak - 45.0)
    loud = level > peak - PAUSE_BELOW_PEAK_DB

    flatness = shapes.column("flatness")
    masks = floor_masks(frames, peak, sample_rate, flatness)
    floor_levels = level[masks.noise_floor]
    between = _bed_frames(level, peak)
    fine_similarity = shapes.column("fine_similarity")
    power = float(np.sum(shapes.column("power")))
    features = WindowFeatures(
        level_dbov=level_dbov,
        peak_dbov=peak,
        loudness_std_db=float(np.std(clipped)),
        pause_fraction=float(np.mean(~loud)),
        syllable_modulation=_syllable_modulation(clipped),
        spectral_steadiness=_lagged_mean(shapes.column("shape_similarity"), loud, _STEADINESS_LAG_FRAMES),
        harmonic_steadiness=_lagged_mean(fine_similarity, loud, _STEADINESS_LAG_FRAMES),
        pause_steadiness=_lagged_mean(fine_similarity, between, _STEADINESS_LAG_FRAMES) if _judges_bed(between) else 0.0,
        flatness=_mean_where(flatness, loud),
        centroid_hz=_mean_where(shapes.column("centroid_hz"), loud),
        zcr=_mean_where(frames.zcr, loud),
        flux=_lagged_mean(shapes.column("flux"), loud, 1),
        noise_floor_fraction=float(np.mean(masks.noise_floor)),
        noise_floor_dbov=median(floor_levels) if len(floor_levels) else SILENCE_DBOV,
        clean_fraction=float(np.mean(masks.clean)),
        ring_ratio=float(np.sum(shapes.column("ring_power")) / power) if power > 0 else 0.0,
        busy_ratio=float(np.sum(shapes.column("busy_power")) / power) if power > 0 else 0.0,
    )
    return features, masks


def _lagged_mean(values: np.ndarray, selected: np.ndarray, lag: int) -> float:
    """Mean of a pair measure (``values[i]`` compares frame i with frame i - lag) over the pairs
    of this window whose frames are both selected."""
    if len(values) <= lag:
        return 0.0
    return _mean_where(values[lag:], selected[lag:] & selected[:-lag])


def pause_steadiness(frames: FrameFeatures, sample_rate: int = 8000) -> float:
    """``analyse_window(frames).pause_steadiness`` alone (the same operations, none of the rest)."""
    level = frames.level_db
    between = _bed_frames(level, percentile(level, 90))
    if not _judges_bed(between):
        return 0.0
    _, band = _band(sample_rate)
    return _similarity(_log_spectra(frames.spectrum[:, band] + 1e-9)[1], between)


def harmonic_steadiness(frames: FrameFeatures, sample_rate: int = 8000) -> float:
    """``analyse_window(frames).harmonic_steadiness`` alone (the same operations, none of the rest)."""
    level = frames.level_db
    loud = level > percentile(level, 90) - PAUSE_BELOW_PEAK_DB
    _, band = _band(sample_rate)
    return _similarity(_log_spectra(frames.spectrum[:, band] + 1e-9)[1], loud)


def _bed_frames(level: np.ndarray, peak: float) -> np.ndarray:
    """Quieter than the speech but not silent: where a music bed under an announcement shows."""
    return (level < peak - _BED_BELOW_PEAK_DB) & (level >= CLEAN_MAX_DBOV)


def _judges_bed(between: np.ndarray) -> bool:
    return bool(np.mean(between) >= _BED_MIN_SHARE)


def band_powers(frames: FrameFeatures, sample_rate: int = 8000) -> np.ndarray:
    """Power of every frame in the low (250-1000 Hz) and high (1000-3400 Hz) bands, shape (2, n).

    The loudness of the two bands over time is a cheap fingerprint of a recording: the same
    file played again gives the same curves, whatever plays before or after it.
    """
    freqs, _ = _band(sample_rate)
    return np.array(
        [np.sum(frames.spectrum[:, (freqs >= low) & (freqs < high)], axis=1) for low, high in _ENVELOPE_BANDS]
    )


def _mean_where(values: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean(values[mask])) if np.any(mask) else 0.0


def _syllable_modulation(envelope_db: np.ndarray) -> float:
    envelope = envelope_db - np.mean(envelope_db)
    power = np.abs(np.fft.rfft(envelope)) ** 2
    freqs = np.fft.rfftfreq(len(envelope), FRAME_SECONDS)
    total = float(np.sum(power[freqs >= 0.5]))
    in_band = (freqs >= _MOD_LOW_HZ) & (freqs <= _MOD_HIGH_HZ)
    return float(np.sum(power[in_band]) / total) if total > 0 else 0.0


def _log_spectra(band_spectrum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: shape is the log spectrum with its level removed; fine structure has
    the smooth envelope (channel colour, formants) removed too, leaving harmonic peaks."""
    log_spectrum = np.log(band_spectrum)
    return _shape_and_fine(log_spectrum, np.mean(log_spectrum, axis=1, keepdims=True))


def _shape_and_fine(log_spectrum: np.ndarray, mean_log: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = log_spectrum - mean_log
    half = _ENVELOPE_SMOOTH_BINS // 2
    # Edge padding as np.pad(mode="edge") makes it, without its per-call overhead, in the same
    # memory order (the row sums downstream depend on it in their last bits).
    bins = log_spectrum.shape[1]
    order = "F" if log_spectrum.flags.fnc else "C"
    padded = np.empty((len(log_spectrum), half + 1 + bins + half), order=order)
    padded[:, half + 1 : half + 1 + bins] = log_spectrum
    padded[:, : half + 1] = log_spectrum[:, :1]
    padded[:, half + 1 + bins :] = log_spectrum[:, -1:]
    running = np.cumsum(padded, axis=1)
    width = _ENVELOPE_SMOOTH_BINS
    envelope = (running[:, width:] - running[:, :-width]) / width
    return shape, log_spectrum - envelope


def _similarity(vectors: np.ndarray, selected: np.ndarray) -> float:
    """Mean cosine similarity of selected rows 100 ms apart."""
    lag = _STEADINESS_LAG_FRAMES
    if len(vectors) <= lag:
        return 0.0
    unit = _unit_rows(vectors)
    similarity = np.sum(unit[lag:] * unit[:-lag], axis=1)
    return _mean_where(similarity, selected[lag:] & selected[:-lag])
