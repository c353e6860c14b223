"""Tones on the far end's audio: DTMF digits, call-progress tones with their cadences, SIT.

Pure and streaming: 8 kHz int16 PCM in (any chunk length, normally 20 ms RTP frames), events
out. Everything is vectorised over the blocks of a chunk with ``app.audio.goertzel``; the only
Python loops run over analysis windows (a few per frame) to follow state.

DTMF (``DtmfDetector``), built to ITU-T Q.24 receiver limits
    Windows of 106 samples (13.25 ms) every 53 samples, each made of two 53-sample halves.
    A cheap gate (each tone read at its frequency and 2% either side) stops 99.8% of the
    windows of music and speech. A window *hits* a digit when one row and one column frequency
    hold at least 80% of its energy (after correcting for their measured frequency offsets and
    for the leakage between them), each is above -45 dBov, and neither has a second harmonic
    within 15 dB of it (a voice or an instrument has harmonics; a DTMF generator does not).
    The frequency offsets come from the phase advance of each tone: first between a window's
    halves (coarse, unambiguous to +-75 Hz), then between the first and last windows of a run
    (fine).

    - frequency: accept within 2.5% + 1 Hz of nominal, halfway between Q.24's operate limit
      (1.5% + 2 Hz) and its non-operate limit (3.5%).
    - twist: the column (high) tone may be up to 8 dB stronger than the row tone (normal
      twist) and up to 4 dB weaker (reverse twist), plus 0.5 dB for measurement.
    - duration: a digit needs 4 consecutive hits; a window only hits when the tone fills it
      (its halves' energies within 2.2 dB, purity 80%), so tones shorter than 28 ms never pass
      and, at every alignment with the windows, tones of 37.5 ms or more always do (Q.24:
      operate at 40 ms, non-operate at 23 ms).
    - pause: 5 consecutive windows without the digit end it: pauses of 25 ms or more always
      separate two digits, interruptions of 18 ms or less are bridged (Q.24: 40 ms / 10 ms).

    Digits this app sent itself (through ARI, heard back through externalMedia) are announced
    with ``expect_echo`` and reported with ``echo=True``.

Call-progress tones (``CallProgressDetector``)
    A 50 ms window every 20 ms; it is labelled with a tone pattern when the pattern's
    frequencies hold at least 70% of its energy (both components present for a pair) above
    -45 dBov. 400 samples put 440 and 480 Hz exactly two bins apart, and 425 Hz falls between
    the 400/440/450 Hz bins. Runs of one label are tone bursts; their lengths (corrected for
    the window's reach) and the quiet between them are the cadence.

    ====================  ===================  =====================================
    decision              pattern              rule
    ====================  ===================  =====================================
    ringback, na          440+480 Hz           one burst of 1.0 s (440+480 is used for
                                               nothing else in the precise tone plan)
    busy / reorder, na    480+620 Hz           burst, gap, next burst: 0.5/0.5 s or
                                               0.25/0.25 s
    dialtone, na          350+440 Hz           1.0 s continuous
    ringback, eu          425 Hz               burst of 0.7-2.5 s then 0.8 s quiet
    busy / reorder, eu    425 Hz               0.5/0.5 s or 0.2-0.25/0.2-0.25 s
    dialtone, eu          425 Hz               3.0 s continuous
    ringback, eu (uk)     400+450 Hz           double ring: 0.4 on, 0.2 off, 0.4 on
    sit                   913.8/985.2, then    three contiguous segments; cause from the
                          1370.6/1428.5, then  frequencies and lengths of the first two
                          1776.7 Hz            (decided 0.2 s into the third)
    ====================  ===================  =====================================

    ``current`` holds the steady tone (ringback, busy, reorder, dialtone) until its cadence
    stops or other sound (a voice, music) is heard for 0.2 s.

``ToneDetector`` runs both and reports ``ToneEvent``s.
"""

from __future__ import annotations

import cmath
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from app.audio.goertzel import SAMPLE_RATE, GoertzelBank, block_energy, dirichlet

FULL_SCALE_POWER = 32768.0**2

ToneKind = Literal["dtmf", "ringback", "busy", "reorder", "sit", "dialtone"]
Region = Literal["na", "eu"]


def _dbov(mean_power: float) -> float:
    return 10 * math.log10(max(mean_power, 1e-12) / FULL_SCALE_POWER)


def _power_at(dbov: float) -> float:
    """Mean power (per sample) of a signal at ``dbov``."""
    return FULL_SCALE_POWER * 10 ** (dbov / 10)


def _wrap(phase: float) -> float:
    return (phase + math.pi) % (2 * math.pi) - math.pi


def _wrap_array(phase: np.ndarray) -> np.ndarray:
    return (phase + np.pi) % (2 * np.pi) - np.pi


def _frames(samples: np.ndarray, size: int, hop: int, count: int) -> np.ndarray:
    """``count`` blocks of ``size`` samples every ``hop`` samples: a view of contiguous ``samples``."""
    return np.ndarray((count, size), np.float64, buffer=samples, strides=(hop * 8, 8))


class _SampleClock:
    """Stream time of absolute sample indices, anchored at the latest push (the caller's clock wins)."""

    def __init__(self) -> None:
        self.samples = 0  # samples pushed so far
        self._anchor_index = 0
        self._anchor_time = 0.0

    def advance(self, count: int, t: float) -> None:
        """Record a push of ``count`` samples starting at stream time ``t``."""
        self._anchor_index, self._anchor_time = self.samples, t
        self.samples += count

    def time(self, index: float) -> float:
        return self._anchor_time + (index - self._anchor_index) / SAMPLE_RATE

    @property
    def now(self) -> float:
        return self.time(self.samples)


# -- DTMF ---------------------------------------------------------------------------------------

DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")  # row (low) by column (high)
DTMF_DIGITS = "".join(DTMF_KEYS)


def tone_bursts(
    tones: Sequence[Sequence[float]],
    *,
    on_ms: int,
    off_ms: int,
    level_dbfs: float = -10.0,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Bursts of ``on_ms``, ``off_ms`` apart: burst i sums the frequencies of ``tones[i]``
    (each at ``level_dbfs``; an empty one is silence). int16 PCM."""
    on, off = sample_rate * on_ms // 1000, sample_rate * off_ms // 1000
    out = np.zeros(max(0, len(tones) * (on + off) - off), np.float64)
    t = np.arange(on) / sample_rate
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    for i, freqs in enumerate(tones):
        start = i * (on + off)
        for freq in freqs:
            out[start : start + on] += amplitude * np.sin(2 * np.pi * freq * t)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def dtmf_signal(digits: str, *, on_ms: int = 100, off_ms: int = 100, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The key tones of ``digits`` as the far end hears them when Asterisk sends them with
    ``duration=on_ms`` and ``between=off_ms``; a character that is no key is a silent slot."""
    tones = []
    for digit in digits.upper():
        row = next((r for r, keys in enumerate(DTMF_KEYS) if digit in keys), None)
        tones.append(() if row is None else (DTMF_LOW[row], DTMF_HIGH[DTMF_KEYS[row].index(digit)]))
    return tone_bursts(tones, on_ms=on_ms, off_ms=off_ms, sample_rate=sample_rate)


_HALF = 53  # samples per half window
_WINDOW = 2 * _HALF  # the classic 106-sample DTMF block
_MIN_HITS = 4  # consecutive hit windows to accept a digit (see the module docstring)
_END_MISSES = 5  # consecutive windows without it to end a digit
_MIN_PURITY = 0.8  # share of a window's energy in the two tones
# A cheap first gate: each tone's energy read at its frequency and 2% either side (so that an
# offset tone loses at most 14%), loose enough for the worst accepted tone (offset, twist at the
# limit, 8 dB SNR), tight enough that 99.8% of windows of music and speech stop here.
_GATE_PROBES = (-0.02, 0.0, 0.02)
_GATE_PURITY = 0.55
_GATE_TONE_SHARE = 0.07
_MIN_HALF_RATIO = 0.6  # the quieter half of a hit window against the louder: a steady tone
_MIN_TONE_DBOV = -45.0  # each tone; Q.24 receivers operate down to about -25..-30 dBm0
_MIN_TONE_SHARE = 0.04  # each tone's share, so that a single tone never passes on its own
_MAX_HARMONIC_DB = -15.0  # second harmonic relative to its fundamental
_COARSE_MAX_DEVIATION = 0.045  # a window whose tones are further off is no hit at all
_MAX_DEVIATION = 0.025  # relative, plus _MAX_DEVIATION_HZ: between Q.24's 1.5%+2 Hz and 3.5%
_MAX_DEVIATION_HZ = 1.0
_MAX_NORMAL_TWIST_DB = 8.0  # column tone stronger
_MAX_REVERSE_TWIST_DB = 4.0  # row tone stronger
_TWIST_MARGIN_DB = 0.5  # measurement error allowed at the twist limits
_MIN_CORRECTION_GAIN = 0.2  # do not trust offset corrections beyond this loss

_DTMF_FUNDAMENTALS = DTMF_LOW + DTMF_HIGH
_DTMF_BANK = GoertzelBank(_DTMF_FUNDAMENTALS + tuple(2 * f for f in _DTMF_FUNDAMENTALS), _WINDOW)
_DTMF_HALF_BANK = GoertzelBank(_DTMF_FUNDAMENTALS, _HALF)
_DTMF_OMEGA = _DTMF_BANK.omegas[:8]
_DTMF_GATE_BANK = GoertzelBank([f * (1 + p) for f in _DTMF_FUNDAMENTALS for p in _GATE_PROBES], _WINDOW)


@dataclass(frozen=True)
class DtmfDigit:
    """A DTMF digit heard from ``t_start`` to ``t_end`` (stream seconds)."""

    digit: str
    t_start: float
    t_end: float
    level_dbov: float  # both tones together
    echo: bool = False  # a digit this app sent itself, heard back


@dataclass
class _Run:
    """Consecutive windows that hit one digit."""

    digit: int
    first_index: int  # sample index of the first window
    first_low: complex  # complex amplitudes of the tones in the first window
    first_high: complex
    last_index: int = 0
    last_low: complex = 0j
    last_high: complex = 0j
    count: int = 0
    energy_low: float = 0.0
    energy_high: float = 0.0
    offset_low: float = 0.0  # sum of coarse offsets, rad/sample
    offset_high: float = 0.0
    accepted: bool = False

    def add(
        self, index: int, low: complex, high: complex, e_low: float, e_high: float, d_low: float, d_high: float
    ) -> None:
        self.last_index, self.last_low, self.last_high = index, low, high
        self.count += 1
        self.energy_low += e_low
        self.energy_high += e_high
        self.offset_low += d_low
        self.offset_high += d_high

    def valid(self) -> bool:
        """Frequencies (fine estimate) and twist within the limits."""
        row, column = divmod(self.digit, 4)
        lag = self.last_index - self.first_index
        for first, last, offset_sum, tone in (
            (self.first_low, self.last_low, self.offset_low, row),
            (self.first_high, self.last_high, self.offset_high, 4 + column),
        ):
            offset = offset_sum / self.count  # coarse, unambiguous
            if lag:
                # The phase advance over the run, unwrapped with the coarse estimate.
                advance = _wrap(cmath.phase(last * first.conjugate()) - _DTMF_OMEGA[tone] * lag)
                offset += _wrap(advance - offset * lag) / lag
            nominal = _DTMF_FUNDAMENTALS[tone]
            if abs(offset) * SAMPLE_RATE / (2 * math.pi) > _MAX_DEVIATION * nominal + _MAX_DEVIATION_HZ:
                return False
        twist = 10 * math.log10(self.energy_high / self.energy_low)
        return -_MAX_REVERSE_TWIST_DB - _TWIST_MARGIN_DB <= twist <= _MAX_NORMAL_TWIST_DB + _TWIST_MARGIN_DB


@dataclass
class _ActiveDigit:
    digit: int
    first_index: int
    last_index: int
    energy: float
    windows: int
    misses: int = 0


@dataclass
class _ExpectedEcho:
    digit: str
    t_from: float
    t_until: float


class DtmfDetector:
    """Streaming DTMF receiver: ``push`` 8 kHz int16 PCM, get the digits that ended."""

    def __init__(self) -> None:
        self._clock = _SampleClock()
        # Samples not yet out of every window; the first window starts half a window before the
        # stream (silence).
        self._buffer = np.zeros(_HALF)
        self._buffer_start = -_HALF
        self._run: _Run | None = None
        self._active: _ActiveDigit | None = None
        self._expected: list[_ExpectedEcho] = []

    def expect_echo(self, digits: str, window_seconds: float = 2.0, *, now: float | None = None) -> None:
        """Digits just sent by this app: those heard starting within ``window_seconds`` of ``now``
        (default: the end of the audio pushed so far) are matched in order and flagged ``echo``."""
        start = self._clock.now if now is None else now
        self._expected.extend(_ExpectedEcho(d, start - 0.05, start + window_seconds) for d in digits.upper())

    def push(self, pcm: np.ndarray, t: float) -> list[DtmfDigit]:
        """Analyse ``pcm`` (int16, any length) whose first sample is at stream time ``t``."""
        samples = np.asarray(pcm, dtype=np.float64)
        self._clock.advance(len(samples), t)
        self._buffer = np.concatenate((self._buffer, samples))
        count = (len(self._buffer) - _WINDOW) // _HALF + 1
        if count <= 0:
            return []
        windows = _frames(self._buffer, _WINDOW, _HALF, count)
        first_index = self._buffer_start
        hits = _window_hits(windows)
        self._buffer = self._buffer[count * _HALF :]
        self._buffer_start += count * _HALF
        if hits is None and self._run is None and self._active is None:
            return []
        return self._follow(first_index, hits, count)

    def flush(self) -> list[DtmfDigit]:
        """End of stream: the digit still sounding, if any."""
        self._run = None
        if self._active is None:
            return []
        digit = self._emit(self._active)
        self._active = None
        return [digit]

    def _follow(self, first_index: int, hits: _Hits | None, count: int) -> list[DtmfDigit]:
        """Step the digit state through ``count`` windows, the first starting at sample ``first_index``."""
        out: list[DtmfDigit] = []
        digits = hits.digit.tolist() if hits is not None else [-1] * count
        for k, digit in enumerate(digits):
            index = first_index + k * _HALF
            run = self._run
            if digit < 0:
                self._run = None
            else:
                low, high = complex(hits.amp_low[k]), complex(hits.amp_high[k])
                if run is None or run.digit != digit:
                    run = self._run = _Run(digit, index, low, high)
                run.add(
                    index,
                    low,
                    high,
                    float(hits.energy_low[k]),
                    float(hits.energy_high[k]),
                    float(hits.offset_low[k]),
                    float(hits.offset_high[k]),
                )
            active = self._active
            if active is not None:
                if digit == active.digit:
                    active.last_index = index
                    active.energy += float(hits.energy_low[k] + hits.energy_high[k])
                    active.windows += 1
                    active.misses = 0
                else:
                    active.misses += 1
                    if active.misses >= _END_MISSES:
                        out.append(self._emit(active))
                        self._active = active = None
            run = self._run
            if run is not None and run.count >= _MIN_HITS and (active is None or active.digit != run.digit):
                if not run.accepted:
                    run.accepted = run.valid()
                if run.accepted:
                    if active is not None:
                        out.append(self._emit(active))
                    self._active = _ActiveDigit(
                        run.digit, run.first_index, run.last_index, run.energy_low + run.energy_high, run.count
                    )
        return out

    def _emit(self, active: _ActiveDigit) -> DtmfDigit:
        t_start = self._clock.time(active.first_index)
        digit = DTMF_DIGITS[active.digit]
        return DtmfDigit(
            digit=digit,
            t_start=t_start,
            t_end=self._clock.time(active.last_index + _WINDOW),
            level_dbov=_dbov(active.energy / (active.windows * _WINDOW)),
            echo=self._match_echo(digit, t_start),
        )

    def _match_echo(self, digit: str, t_start: float) -> bool:
        self._expected = [e for e in self._expected if e.t_until >= t_start]
        for position, expected in enumerate(self._expected):
            if expected.digit == digit and expected.t_from <= t_start:
                # Digits sent before this one and not heard were lost: stop waiting for them.
                del self._expected[: position + 1]
                return True
        return False


@dataclass
class _Hits:
    """Per window of a chunk: the digit it hits (-1: none) and, for hits, the tones' measures."""

    digit: np.ndarray
    amp_low: np.ndarray  # complex amplitude, phase at the window's first sample
    amp_high: np.ndarray
    energy_low: np.ndarray  # energy of each tone in the window
    energy_high: np.ndarray
    offset_low: np.ndarray  # coarse frequency offset, rad/sample
    offset_high: np.ndarray


_MIN_TONE_ENERGY = _power_at(_MIN_TONE_DBOV) * _WINDOW


def _window_hits(windows: np.ndarray) -> _Hits | None:
    """Which of the 106-sample ``windows`` hit a digit; None when none does. A cheap gate on the
    raw DFT terms first; the measures and checks only for the windows that pass it."""
    probes = _DTMF_GATE_BANK.power(windows)
    energy = block_energy(windows)
    strongest = probes.reshape(-1, 2, 4 * len(_GATE_PROBES)).max(axis=2)  # per window: row, column
    gate = (strongest.sum(axis=1) >= _GATE_PURITY * energy) & (strongest.min(axis=1) >= _GATE_TONE_SHARE * energy)
    if not gate.any():
        return None
    candidates = np.flatnonzero(gate & (energy >= 2 * _MIN_TONE_ENERGY))  # room for two tones
    if len(candidates) == 0:
        return None
    energy, windows = energy[candidates], windows[candidates]
    power = probes[candidates].reshape(-1, 8, len(_GATE_PROBES)).max(axis=2)
    row = np.argmax(power[:, :4], axis=1)
    column = 4 + np.argmax(power[:, 4:], axis=1)
    first_half = block_energy(windows[:, :_HALF])
    second_half = energy - first_half
    steady = np.minimum(first_half, second_half) >= _MIN_HALF_RATIO * np.maximum(first_half, second_half)
    spectrum = _DTMF_BANK.spectrum(windows)  # fundamentals and second harmonics
    first = _DTMF_HALF_BANK.spectrum(windows[:, :_HALF])
    second = _DTMF_HALF_BANK.spectrum(windows[:, _HALF:])
    rows = np.arange(len(candidates))
    omega_low, omega_high = _DTMF_OMEGA[row], _DTMF_OMEGA[column]
    # Coarse offsets: the phase advance of each tone from the first half to the second.
    d_low = _wrap_array(np.angle(second[rows, row] * np.conj(first[rows, row])) - omega_low * _HALF) / _HALF
    d_high = _wrap_array(np.angle(second[rows, column] * np.conj(first[rows, column])) - omega_high * _HALF) / _HALF
    # Both tones at once: each leaks into the other's term (2x2 solve with the window's kernel).
    own_low, own_high = dirichlet(d_low, _WINDOW), dirichlet(d_high, _WINDOW)
    high_into_low = dirichlet(omega_high + d_high - omega_low, _WINDOW)
    low_into_high = dirichlet(omega_low + d_low - omega_high, _WINDOW)
    x_low, x_high = spectrum[rows, row], spectrum[rows, column]
    determinant = own_low * own_high - high_into_low * low_into_high
    amp_low = (own_high * x_low - high_into_low * x_high) / determinant
    amp_high = (own_low * x_high - low_into_high * x_low) / determinant
    e_low = 2 * _WINDOW * np.abs(amp_low) ** 2
    e_high = 2 * _WINDOW * np.abs(amp_high) ** 2
    # Second harmonics, after removing what the fundamentals leak into their terms.
    harmonic_low = _harmonic_energy(
        spectrum[rows, 8 + row], 2 * omega_low, d_low, amp_low, amp_high, omega_low + d_low, omega_high + d_high
    )
    harmonic_high = _harmonic_energy(
        spectrum[rows, 8 + column], 2 * omega_high, d_high, amp_low, amp_high, omega_low + d_low, omega_high + d_high
    )
    gain_low = np.abs(own_low) ** 2 / _WINDOW**2
    gain_high = np.abs(own_high) ** 2 / _WINDOW**2
    harmonic_ratio = 10 ** (_MAX_HARMONIC_DB / 10)
    hit = (
        steady
        & (np.abs(d_low) <= _COARSE_MAX_DEVIATION * omega_low)
        & (np.abs(d_high) <= _COARSE_MAX_DEVIATION * omega_high)
        & (gain_low >= _MIN_CORRECTION_GAIN)
        & (gain_high >= _MIN_CORRECTION_GAIN)
        & (e_low + e_high >= _MIN_PURITY * energy)
        & (np.minimum(e_low, e_high) >= np.maximum(_MIN_TONE_ENERGY, _MIN_TONE_SHARE * energy))
        & (harmonic_low <= harmonic_ratio * e_low)
        & (harmonic_high <= harmonic_ratio * e_high)
    )
    if not hit.any():
        return None
    count = len(gate)
    digit = np.full(count, -1)
    digit[candidates[hit]] = (row * 4 + (column - 4))[hit]

    def spread(values: np.ndarray) -> np.ndarray:
        out = np.zeros(count, dtype=values.dtype)
        out[candidates] = values
        return out

    return _Hits(digit, spread(amp_low), spread(amp_high), spread(e_low), spread(e_high), spread(d_low), spread(d_high))


def _harmonic_energy(
    term: np.ndarray,
    omega: np.ndarray,
    offset: np.ndarray,
    amp_low: np.ndarray,
    amp_high: np.ndarray,
    w_low: np.ndarray,
    w_high: np.ndarray,
) -> np.ndarray:
    """Energy of a second harmonic at ``omega + 2*offset`` seen in the DFT ``term`` at ``omega``."""
    leak = amp_low * dirichlet(w_low - omega, _WINDOW) + amp_high * dirichlet(w_high - omega, _WINDOW)
    residual = term - leak
    gain = np.maximum(np.abs(dirichlet(2 * offset, _WINDOW)) ** 2 / _WINDOW**2, _MIN_CORRECTION_GAIN)
    return 2 * np.abs(residual) ** 2 / _WINDOW / gain


# -- call-progress tones and SIT ------------------------------------------------------------------

_CPT_WINDOW = 400  # 50 ms: 20 Hz bins
_CPT_HOP = 160  # one RTP frame
_CPT_MIN_SHARE = 0.7
_CPT_MIN_DBOV = -45.0
_CPT_MIN_COMPONENT_SHARE = 0.1  # each tone of a pair
_CPT_MIN_ENERGY = _power_at(_CPT_MIN_DBOV) * _CPT_WINDOW
_QUIET_MAX_DBOV = -50.0  # a frame this quiet is a pause whatever the tone's level ...
_QUIET_BELOW_TONE_DB = 8.0  # ... and so is one this far below the last tone burst (a line noise)
_MAX_GAP_OTHER_FRAMES = 3  # loud non-tone frames tolerated between bursts (window edges)
_END_ON_OTHER_FRAMES = 10  # 0.2 s of other sound ends the current tone
_EU_RING_MIN_OFF = 0.8  # seconds of quiet after a 425 Hz burst: longer than any busy or congestion pause
_GLITCH_FRAMES = 3  # a burst survives this many unlabelled frames (a lost packet, a phase jump)

SIT_LOW_1, SIT_HIGH_1 = 913.8, 985.2
SIT_LOW_2, SIT_HIGH_2 = 1370.6, 1428.5
SIT_3 = 1776.7
SIT_SHORT_SECONDS, SIT_LONG_SECONDS = 0.274, 0.380

_CPT_FREQS = (350.0, 400.0, 425.0, 440.0, 450.0, 480.0, 620.0, SIT_LOW_1, SIT_HIGH_1, SIT_LOW_2, SIT_HIGH_2, SIT_3)
_CPT_BANK = GoertzelBank(_CPT_FREQS, _CPT_WINDOW)
_F = {f: i for i, f in enumerate(_CPT_FREQS)}

# Tone patterns a window can carry: pairs first, then single tones.
_PAIRS = (("dial_na", 350.0, 440.0), ("ring_na", 440.0, 480.0), ("busy_na", 480.0, 620.0), ("ring_uk", 400.0, 450.0))
_SINGLES = (
    ("eu", 425.0),
    ("sit_low_1", SIT_LOW_1),
    ("sit_high_1", SIT_HIGH_1),
    ("sit_low_2", SIT_LOW_2),
    ("sit_high_2", SIT_HIGH_2),
    ("sit_3", SIT_3),
)
_PATTERNS = tuple(name for name, *_ in _PAIRS) + tuple(name for name, _ in _SINGLES)
_SINGLE_FREQUENCY = dict(_SINGLES)


def _pattern_analysis() -> np.ndarray:
    """A real (window, 2 * components) matrix: a window times it gives, for each component (the
    two tones of each pair, then each single tone), its real and imaginary parts, scaled so that
    the two squares sum to the component's energy in the window. A pair's tones are solved
    together (the inverse of [[N, K(wb-wa)], [K(wa-wb), N]]) because 350/440 and 400/450 Hz are
    not a whole number of bins apart and leak into each other."""
    bank, n = _CPT_BANK, _CPT_WINDOW
    firsts, seconds = [], []
    for _, fa, fb in _PAIRS:
        a, b = _F[fa], _F[fb]
        gram = np.array(
            [[n, dirichlet(bank.omegas[b] - bank.omegas[a], n)], [dirichlet(bank.omegas[a] - bank.omegas[b], n), n]],
            dtype=np.complex128,
        )
        inverse = np.linalg.inv(gram)
        firsts.append(bank.basis[:, a] * inverse[0, 0] + bank.basis[:, b] * inverse[0, 1])
        seconds.append(bank.basis[:, a] * inverse[1, 0] + bank.basis[:, b] * inverse[1, 1])
    pairs = np.array(firsts + seconds).T * math.sqrt(2 * n)  # amplitude -> energy 2 N |a|^2
    singles = bank.basis[:, [_F[f] for _, f in _SINGLES]] * math.sqrt(2 / n)  # DFT term -> energy
    columns = np.ascontiguousarray(np.concatenate((pairs, singles), axis=1))
    return np.ascontiguousarray(columns.view(np.float64).reshape(n, -1))


_PATTERN_ANALYSIS = _pattern_analysis()
_PAIR_COUNT = len(_PAIRS)

# Special information tones: the cause is coded by the band (low/high) and length (short 274 ms,
# long 380 ms) of the first two segments; the third is always 1776.7 Hz, long. Table of
# Telcordia GR-1162 / ANSI T1.209 as printed in a central-office recorder/announcer manual
# (reproduced at gbppr.ddns.net/2600/touch_tone.txt), cross-checked with the Dialogic Voice API
# Programming Guide (Table 5, TID_SIT_NC/IC/VC/RO/NC_INTERLATA/RO_INTERLATA/IO), the IBM
# Blueworx Voice Response tone table (RO', VC, NC', IC) and TELECOM Digest 1990 (NC, IC, VC, RO).
_SIT_CODES: dict[tuple[str, str, str, str], tuple[str, str, str | None]] = {
    ("low", "short", "low", "short"): ("IC", "intercept", None),
    ("high", "long", "high", "long"): ("NC", "no_circuit", "intra_lata"),
    ("low", "long", "low", "long"): ("NC", "no_circuit", "inter_lata"),
    ("high", "long", "low", "short"): ("VC", "vacant_code", None),
    ("low", "short", "high", "long"): ("RO", "reorder", "intra_lata"),
    ("high", "short", "low", "long"): ("RO", "reorder", "inter_lata"),
    ("low", "long", "high", "short"): ("IO", "ineffective_other", None),
}  # the other combinations are unassigned: cause "unknown"
_SIT_MIN_SEGMENT, _SIT_MAX_SEGMENT = 0.2, 0.5
_SIT_MAX_JOIN = 0.08  # seconds between segments (specified: none to a few ms)
_SIT_THIRD_DECIDE = 0.2  # seconds of the third segment before deciding

# How long a steady tone may be silent before it is over: its longest pause plus a margin.
_MAX_QUIET = {
    ("ringback", "na"): 4.6,
    ("ringback", "eu"): 5.5,  # Italy and Germany pause 4 s
    ("busy", "na"): 0.9,
    ("busy", "eu"): 0.9,
    ("reorder", "na"): 0.6,
    ("reorder", "eu"): 0.6,
    ("dialtone", "na"): 0.3,
    ("dialtone", "eu"): 0.3,
}


@dataclass(frozen=True)
class ToneEvent:
    """A tone decision. ``t`` is the stream time the tone (its first burst, or the digit) began;
    ``detail["decided_at"]`` the stream time of the decision."""

    kind: ToneKind
    t: float
    region: Region | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def decided_at(self) -> float:
        return float(self.detail.get("decided_at", self.t))

    @property
    def confidence(self) -> float:
        """Tones are decided only when every frequency, level and cadence rule holds (Q.24 for
        DTMF; a whole cadence for call progress; three segments for SIT): the residual doubt is
        an echo or a tone-like note in music, which the rules already rejected."""
        return 0.99 if self.kind in ("sit", "dtmf") else 0.95


@dataclass
class _Burst:
    pattern: str
    start: float
    end: float
    level_sum: float  # dBov, summed over windows
    windows: int
    others_before: int  # loud non-tone frames between the previous burst and this one
    reported: bool = False  # a SIT already decided on this (third) segment

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def level_dbov(self) -> float:
        return self.level_sum / self.windows


class CallProgressDetector:
    """Ringback, busy, reorder, dial tone (North American and European) and SIT, with cadences."""

    def __init__(self) -> None:
        self._clock = _SampleClock()
        # Samples from the stream's start (preceded by silence) not yet out of every window.
        self._buffer = np.zeros(_CPT_WINDOW - _CPT_HOP)
        self._buffer_start = -(_CPT_WINDOW - _CPT_HOP)
        self._bursts: deque[_Burst] = deque(maxlen=4)  # the newest may still be sounding
        self._burst_open = False
        self._last_tone_frame_end = -math.inf
        self._others = 0  # loud non-tone frames since the last tone frame
        self._current: ToneEvent | None = None
        self._current_pattern = ""
        self._current_heard = -math.inf  # end of the last frame that carried the current tone

    @property
    def current(self) -> ToneEvent | None:
        """The steady call-progress tone heard now (ringback, busy, reorder, dialtone), or None."""
        return self._current

    def push(self, pcm: np.ndarray, t: float) -> list[ToneEvent]:
        """Analyse ``pcm`` (int16, any length) whose first sample is at stream time ``t``."""
        samples = np.asarray(pcm, dtype=np.float64)
        self._clock.advance(len(samples), t)
        self._buffer = np.concatenate((self._buffer, samples))
        count = (len(self._buffer) - _CPT_WINDOW) // _CPT_HOP + 1
        if count <= 0:
            return []
        windows = _frames(self._buffer, _CPT_WINDOW, _CPT_HOP, count)
        components = (windows @ _PATTERN_ANALYSIS).tolist()
        energies = block_energy(windows).tolist()
        frame_energies = block_energy(windows[:, -_CPT_HOP:]).tolist()
        first_end = self._buffer_start + _CPT_WINDOW
        self._buffer = self._buffer[count * _CPT_HOP :]
        self._buffer_start += count * _CPT_HOP
        events: list[ToneEvent] = []
        for k in range(count):
            label, tone_energy = _label_window(components[k], energies[k])
            end = self._clock.time(first_end + k * _CPT_HOP)
            frame_level = _dbov(frame_energies[k] / _CPT_HOP)
            events.extend(self._observe(label, _dbov(tone_energy / _CPT_WINDOW), frame_level, end))
        return events

    def _observe(self, label: int, level: float, frame_level: float, frame_end: float) -> list[ToneEvent]:
        hop = _CPT_HOP / SAMPLE_RATE
        if label >= 0:
            pattern = _PATTERNS[label]
            # The window ending now carries the tone from about 0.7 of its length back.
            start = frame_end - (_CPT_MIN_SHARE * _CPT_WINDOW + _CPT_HOP / 2) / SAMPLE_RATE
            end = frame_end - ((1 - _CPT_MIN_SHARE) * _CPT_WINDOW - _CPT_HOP / 2) / SAMPLE_RATE
            newest = self._bursts[-1] if self._bursts else None
            if (
                self._burst_open
                and newest is not None
                and newest.pattern == pattern
                and frame_end - self._last_tone_frame_end <= (_GLITCH_FRAMES + 1) * hop + 1e-9
            ):
                newest.end = end
                newest.level_sum += level
                newest.windows += 1
            else:
                if newest is not None and start - newest.end < _SIT_MAX_JOIN:
                    # Back to back (SIT segments): a window straddling the change carries neither
                    # tone cleanly, so both estimates stop short of it; split the difference.
                    newest.end = start = (newest.end + start) / 2
                self._bursts.append(_Burst(pattern, start, end, level, 1, self._others))
                self._burst_open = True
            self._last_tone_frame_end = frame_end
            self._others = 0
        else:
            reference = self._bursts[-1].level_dbov - _QUIET_BELOW_TONE_DB if self._bursts else _QUIET_MAX_DBOV
            if frame_level > max(_QUIET_MAX_DBOV, reference):
                self._others += 1
            if frame_end - self._last_tone_frame_end > (_GLITCH_FRAMES + 1) * hop:
                self._burst_open = False
        events = self._decide(frame_end)
        self._expire(label, frame_end)
        return events

    def _decide(self, now: float) -> list[ToneEvent]:
        bursts = self._bursts
        if not bursts:
            return []
        newest = bursts[-1]
        previous = bursts[-2] if len(bursts) >= 2 else None
        decision: tuple[ToneKind, Region, _Burst, dict[str, Any]] | None = None
        if self._burst_open:
            on = newest.seconds
            if newest.pattern == "ring_na" and on >= 1.0:
                decision = ("ringback", "na", newest, {"on_seconds": round(on, 3)})
            elif newest.pattern == "dial_na" and on >= 1.0:
                decision = ("dialtone", "na", newest, {"on_seconds": round(on, 3)})
            elif newest.pattern == "eu" and on >= 3.0:
                decision = ("dialtone", "eu", newest, {"on_seconds": round(on, 3)})
            elif newest.pattern == "sit_3" and on >= _SIT_THIRD_DECIDE and not newest.reported:
                return self._decide_sit(now)
            elif (
                previous is not None
                and previous.pattern == newest.pattern
                and newest.others_before <= _MAX_GAP_OTHER_FRAMES
            ):
                decision = _cadence(previous, newest)
        elif (
            newest.pattern == "eu"
            and 0.7 <= newest.seconds <= 2.5
            and now - newest.end >= _EU_RING_MIN_OFF
            and self._others <= _MAX_GAP_OTHER_FRAMES
        ):
            decision = (
                "ringback",
                "eu",
                newest,
                {"on_seconds": round(newest.seconds, 3), "off_seconds": round(now - newest.end, 3)},
            )
        if decision is None:
            return []
        kind, region, first, detail = decision
        if self._current is not None and (self._current.kind, self._current.region) == (kind, region):
            return []
        event = ToneEvent(kind, round(first.start, 3), region, {**detail, "decided_at": round(now, 3)})
        self._current, self._current_pattern, self._current_heard = event, newest.pattern, now
        return [event]

    def _decide_sit(self, now: float) -> list[ToneEvent]:
        if len(self._bursts) < 3:
            return []
        first, second, third = list(self._bursts)[-3:]
        if second.pattern not in ("sit_low_2", "sit_high_2") or first.pattern not in ("sit_low_1", "sit_high_1"):
            return []
        if third.start - second.end > _SIT_MAX_JOIN or second.start - first.end > _SIT_MAX_JOIN:
            return []
        if not all(_SIT_MIN_SEGMENT <= b.seconds <= _SIT_MAX_SEGMENT for b in (first, second)):
            return []
        threshold = (SIT_SHORT_SECONDS + SIT_LONG_SECONDS) / 2
        key = tuple(
            item
            for burst in (first, second)
            for item in ("low" if "low" in burst.pattern else "high", "short" if burst.seconds < threshold else "long")
        )
        if key not in _SIT_CODES and key[1] == "short":
            # Lost or late packets can only shorten what we hear, and the first segment is the one
            # cut when the tone starts with the audio: an unassigned reading whose first segment
            # is "short" is the assigned one with it long, if there is one.
            key = (key[0], "long", *key[2:])
        code, cause, variant = _SIT_CODES.get(key, ("--", "unknown", None))  # type: ignore[arg-type]
        third.reported = True
        detail = {
            "cause": cause,
            "code": code,
            "variant": variant,
            "segments": [[_SINGLE_FREQUENCY[b.pattern], round(b.seconds, 3)] for b in (first, second, third)],
            "decided_at": round(now, 3),
        }
        return [ToneEvent("sit", round(first.start, 3), None, detail)]

    def _expire(self, label: int, now: float) -> None:
        current = self._current
        if current is None:
            return
        if label >= 0 and _PATTERNS[label] == self._current_pattern:
            self._current_heard = now
        elif (
            now - self._current_heard > _MAX_QUIET[(current.kind, current.region)]
            or self._others >= _END_ON_OTHER_FRAMES
        ):
            self._current = None


def _cadence(previous: _Burst, newest: _Burst) -> tuple[ToneKind, Region, _Burst, dict[str, Any]] | None:
    """Busy, reorder or the UK double ring from one burst, the gap after it and the next burst's start."""
    on, off = previous.seconds, newest.start - previous.end
    detail = {"on_seconds": round(on, 3), "off_seconds": round(off, 3)}
    if previous.pattern in ("busy_na", "eu"):
        region: Region = "na" if previous.pattern == "busy_na" else "eu"
        if 0.35 <= on <= 0.75 and 0.3 <= off <= 0.8:
            return ("busy", region, previous, detail)
        if 0.12 <= on < 0.35 and 0.12 <= off < 0.4:
            return ("reorder", region, previous, detail)
    if previous.pattern == "ring_uk" and 0.25 <= on <= 0.6 and 0.1 <= off <= 0.35 and newest.seconds >= 0.25:
        return ("ringback", "eu", previous, {**detail, "variant": "uk"})
    return None


def _label_window(components: list[float], energy: float) -> tuple[int, float]:
    """The pattern a window carries (-1: none) and that pattern's energy, from the real and
    imaginary parts of its components (``_PATTERN_ANALYSIS``) and its energy."""
    squares = [x * x for x in components]
    energies = [squares[i] + squares[i + 1] for i in range(0, len(squares), 2)]
    best, best_energy = -1, 0.0
    component_floor = _CPT_MIN_COMPONENT_SHARE * energy
    for p in range(_PAIR_COUNT):
        a, b = energies[p], energies[_PAIR_COUNT + p]
        if a >= component_floor and b >= component_floor and a + b > best_energy:
            best, best_energy = p, a + b
    for s in range(len(energies) - 2 * _PAIR_COUNT):
        if energies[2 * _PAIR_COUNT + s] > best_energy:
            best, best_energy = _PAIR_COUNT + s, energies[2 * _PAIR_COUNT + s]
    if best_energy < _CPT_MIN_SHARE * energy or best_energy < _CPT_MIN_ENERGY:
        return -1, best_energy
    return best, best_energy


# -- both -----------------------------------------------------------------------------------------


class ToneDetector:
    """DTMF and call-progress tones on one stream: ``push`` PCM, get ``ToneEvent``s."""

    def __init__(self) -> None:
        self.dtmf = DtmfDetector()
        self.call_progress = CallProgressDetector()
        self._now = 0.0

    @property
    def current(self) -> ToneEvent | None:
        """The steady call-progress tone heard now (ringback, busy, reorder, dialtone), or None."""
        return self.call_progress.current

    def expect_echo(self, digits: str, window_seconds: float = 2.0, *, now: float | None = None) -> None:
        """See ``DtmfDetector.expect_echo``."""
        self.dtmf.expect_echo(digits, window_seconds, now=now)

    def push(self, pcm: np.ndarray, t: float) -> list[ToneEvent]:
        """Analyse ``pcm`` (int16, any length) whose first sample is at stream time ``t``; the
        decisions it completes, in order."""
        self._now = t + len(pcm) / SAMPLE_RATE
        events = [_dtmf_event(d, self._now) for d in self.dtmf.push(pcm, t)]
        events.extend(self.call_progress.push(pcm, t))
        return sorted(events, key=lambda e: e.detail["decided_at"]) if len(events) > 1 else events

    def flush(self) -> list[ToneEvent]:
        """End of stream: a digit still sounding."""
        return [_dtmf_event(d, self._now) for d in self.dtmf.flush()]


def _dtmf_event(digit: DtmfDigit, decided_at: float) -> ToneEvent:
    return ToneEvent(
        "dtmf",
        round(digit.t_start, 3),
        None,
        {
            "digit": digit.digit,
            "echo": digit.echo,
            "t_end": round(digit.t_end, 3),
            "level_dbov": round(digit.level_dbov, 1),
            "decided_at": round(decided_at, 3),
        },
    )
