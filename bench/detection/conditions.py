"""Call-centre conditions: what a real agent's line and a real trunk do to audio. Pure numpy.

Every function takes float samples at 8 kHz (int16 scale, full scale 32768) and returns new
samples of the same length; random ones take a ``numpy.random.Generator``. ``draw_conditions``
picks a set of them per session from a seeded generator; ``apply_person`` and ``apply_line``
run them. Order, as on a call: the agent's microphone hears the voice, the room (noise,
babble) and the headset's own hiss; the softphone's noise gate (digital silence, or comfort
noise) and AGC come next; the call then crosses another codec (GSM-like, or a lower-rate
band-limited one) with packet loss concealed by repeating the last frame, and last of all the
8 kHz G.711 mu-law leg (``dataset.telephone``), which every session ends through.

- ``hiss``: white noise high-passed (a headset or a cheap microphone amplifier);
- ``coloured_noise``: room noise, 1/f^alpha (alpha 1 pink, 2 brown), band-limited;
- ``babble``: other people talking in the room, several speech clips summed at a low level;
- ``noise_gate``: 20 ms frames under a threshold set to exact zeros (or to comfort noise
  with ``fill_dbov``), with a hangover so that word endings pass;
- ``agc``: slow gain riding towards a target level (gain changes a bounded amount per frame);
- ``codec``: a low-bitrate codec imitation: band-limit and coarse spectral quantisation
  (magnitudes in ``step_db`` steps, bins far under the frame's peak dropped) in 32 ms frames;
- ``packet_loss``: 20 ms frames lost in bursts (a two-state Gilbert model) and concealed by
  repeating the last good frame, fading by ``fade_db`` per lost frame, silent after
  ``mute_after`` frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

RATE = 8000
FRAME = 160  # 20 ms
FULL_SCALE = 32768.0


def _rms_scale(noise: np.ndarray, dbov: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(noise * noise))) if len(noise) else 0.0
    if rms == 0.0:
        return np.zeros_like(noise)
    return noise / rms * FULL_SCALE * 10 ** (dbov / 20)


def level_dbov(pcm: np.ndarray) -> float:
    power = float(np.mean(np.square(pcm, dtype=np.float64))) if len(pcm) else 0.0
    return 10.0 * np.log10(max(power, 1e-12 * FULL_SCALE**2) / FULL_SCALE**2)


def frame_levels(pcm: np.ndarray, frame: int = FRAME) -> np.ndarray:
    count = len(pcm) // frame
    frames = np.asarray(pcm[: count * frame], dtype=np.float64).reshape(count, frame)
    return 10.0 * np.log10(np.maximum(np.mean(frames * frames, axis=1), 1e-12 * FULL_SCALE**2) / FULL_SCALE**2)


# -- noises -------------------------------------------------------------------------------------


def hiss(count: int, dbov: float, rng: np.random.Generator) -> np.ndarray:
    """Headset hiss: white noise through a first-difference high-pass (tilted up), at ``dbov``."""
    white = rng.normal(size=count + 1)
    return _rms_scale(np.diff(white) + 0.3 * white[1:], dbov)


def coloured_noise(count: int, dbov: float, rng: np.random.Generator, alpha: float = 1.0) -> np.ndarray:
    """Room noise with a 1/f^alpha power spectrum (alpha 1: pink, 2: brown), 50 Hz and up."""
    if count == 0:
        return np.zeros(0)
    spectrum = np.fft.rfft(rng.normal(size=count))
    freqs = np.fft.rfftfreq(count, 1 / RATE)
    shape = np.zeros_like(freqs)
    audible = freqs >= 50.0
    shape[audible] = freqs[audible] ** (-alpha / 2)
    return _rms_scale(np.fft.irfft(spectrum * shape, n=count), dbov)


def loop_to(pcm: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """A recording repeated from a random point to ``count`` samples (a noise bed from a file)."""
    if len(pcm) == 0:
        return np.zeros(count)
    start = int(rng.integers(len(pcm)))
    return np.asarray(pcm, dtype=np.float64)[(start + np.arange(count)) % len(pcm)]


def babble(clips: list[np.ndarray], count: int, dbov: float, rng: np.random.Generator) -> np.ndarray:
    """Several talkers in the room: each clip looped from a random point, summed, at ``dbov``."""
    if not clips:
        return np.zeros(count)
    mix = np.zeros(count)
    for clip in clips:
        part = loop_to(clip, count, rng)
        mix += _rms_scale(part, 0.0)
    return _rms_scale(mix, dbov)


# -- the agent's softphone ----------------------------------------------------------------------


def noise_gate(
    pcm: np.ndarray,
    threshold_dbov: float,
    *,
    hangover_frames: int = 3,
    fill_dbov: float | None = None,
    rng: np.random.Generator | None = None,
    start: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (20 ms, counted from sample ``start``) under ``threshold_dbov`` are closed once
    ``hangover_frames`` quiet frames have passed: exact zeros, or comfort noise at ``fill_dbov``.
    Samples before ``start`` are closed too. Returns the audio and the closed-frame mask."""
    out = np.array(pcm, dtype=np.float64)
    levels = frame_levels(out[start:])
    open_ = levels >= threshold_dbov
    closed = np.zeros(len(levels), dtype=bool)
    quiet_run = hangover_frames  # closed until the first loud frame
    for i, loud in enumerate(open_):
        quiet_run = 0 if loud else quiet_run + 1
        closed[i] = quiet_run > hangover_frames
    if fill_dbov is not None and rng is None:
        raise ValueError("comfort noise needs rng")

    def fill(n: int) -> np.ndarray:
        return np.zeros(n) if fill_dbov is None else coloured_noise(n, fill_dbov, rng, alpha=0.5)  # type: ignore[arg-type]

    if start:
        out[:start] = fill(start)
    body = out[start : start + len(levels) * FRAME].reshape(-1, FRAME)
    if closed.any():
        body[closed] = fill(int(closed.sum()) * FRAME).reshape(-1, FRAME)
    return out, closed


def agc(
    pcm: np.ndarray,
    target_dbov: float = -20.0,
    *,
    time_constant: float = 2.0,
    max_gain_db: float = 20.0,
    min_gain_db: float = -10.0,
    max_step_db: float = 0.25,
    speech_above_dbov: float = -50.0,
    initial_gain_db: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Slow automatic gain control: per 20 ms frame, the gain moves towards what would bring a
    smoothed level (time constant ``time_constant`` s, loud frames only) to ``target_dbov``,
    never by more than ``max_step_db`` per frame; interpolated within frames. Returns the
    audio and the gain (dB) of every frame."""
    x = np.asarray(pcm, dtype=np.float64)
    levels = frame_levels(x)
    alpha = 1.0 - np.exp(-FRAME / RATE / time_constant)
    smoothed = None
    gain = initial_gain_db
    gains = np.empty(len(levels))
    for i, level in enumerate(levels):
        if level >= speech_above_dbov:
            power = 10 ** (level / 10)
            smoothed = power if smoothed is None else smoothed + alpha * (power - smoothed)
        if smoothed is not None:
            wanted = float(np.clip(target_dbov - 10 * np.log10(smoothed), min_gain_db, max_gain_db))
            gain += float(np.clip(wanted - gain, -max_step_db, max_step_db))
        gains[i] = gain
    if len(levels) == 0:
        return x.copy(), gains
    centres = np.arange(len(levels)) * FRAME + FRAME / 2
    per_sample = np.interp(np.arange(len(x)), centres, gains)
    return x * 10 ** (per_sample / 20), gains


# -- the trunk ----------------------------------------------------------------------------------

CODEC_FRAME = 256
CODEC_HOP = 128


def codec(
    pcm: np.ndarray, *, low_hz: float = 200.0, high_hz: float = 3400.0, step_db: float = 3.0, floor_db: float = 35.0
) -> np.ndarray:
    """A low-bitrate speech codec's footprint: only ``low_hz..high_hz`` survives, spectral
    magnitudes are quantised to ``step_db`` steps and bins more than ``floor_db`` under the
    frame's peak are dropped (the holes and the warble of GSM/AMR at low rates). Phase is kept.
    Overlap-add of sqrt-Hann frames (32 ms, 50% overlap): without quantisation it is exact."""
    x = np.asarray(pcm, dtype=np.float64)
    n = len(x)
    if n == 0:
        return x.copy()
    padded = np.concatenate([np.zeros(CODEC_HOP), x, np.zeros(CODEC_FRAME + CODEC_HOP)])
    window = np.sqrt(np.hanning(CODEC_FRAME + 1)[:-1])
    freqs = np.fft.rfftfreq(CODEC_FRAME, 1 / RATE)
    keep = (freqs >= low_hz) & (freqs <= high_hz)
    starts = np.arange(0, len(padded) - CODEC_FRAME + 1, CODEC_HOP)
    out = np.zeros(len(padded))
    for chunk in range(0, len(starts), 4096):  # bounded memory on long holds
        chunk_starts = starts[chunk : chunk + 4096]
        index = chunk_starts[:, None] + np.arange(CODEC_FRAME)[None, :]
        spectra = np.fft.rfft(padded[index] * window, axis=1)
        spectra[:, ~keep] = 0.0
        mags = np.abs(spectra)
        db = 20 * np.log10(np.maximum(mags, 1e-9))
        if step_db > 0:
            db = np.round(db / step_db) * step_db
        peak = db.max(axis=1, keepdims=True)
        quantised = 10 ** (db / 20) * (db >= peak - floor_db) * (mags > 1e-9)
        synth = np.fft.irfft(quantised * np.exp(1j * np.angle(spectra)), n=CODEC_FRAME, axis=1) * window
        for s, frame in zip(chunk_starts, synth):
            out[s : s + CODEC_FRAME] += frame
    return out[CODEC_HOP : CODEC_HOP + n]


def loss_pattern(
    frames: int, rng: np.random.Generator, *, loss_rate: float = 0.03, mean_burst: float = 2.0
) -> np.ndarray:
    """Which 20 ms frames are lost: a Gilbert model with the given long-run loss rate and mean
    burst length (frames)."""
    leave_bad = 1.0 / max(mean_burst, 1.0)
    enter_bad = loss_rate * leave_bad / max(1.0 - loss_rate, 1e-9)
    lost = np.zeros(frames, dtype=bool)
    bad = False
    draws = rng.random(frames)
    for i in range(frames):
        bad = draws[i] >= leave_bad if bad else draws[i] < enter_bad
        lost[i] = bad
    return lost


def conceal(pcm: np.ndarray, lost: np.ndarray, *, fade_db: float = 3.0, mute_after: int = 5) -> np.ndarray:
    """Packet-loss concealment: a lost 20 ms frame is the last good frame again, ``fade_db``
    quieter per consecutive loss, and silence after ``mute_after`` losses in a row."""
    out = np.array(pcm, dtype=np.float64)
    last_good = np.zeros(FRAME)
    run = 0
    for i, is_lost in enumerate(lost[: len(out) // FRAME]):
        frame = slice(i * FRAME, (i + 1) * FRAME)
        if is_lost:
            run += 1
            out[frame] = 0.0 if run > mute_after else last_good * 10 ** (-fade_db * run / 20)
        else:
            run = 0
            last_good = out[frame].copy()
    return out


def packet_loss(
    pcm: np.ndarray, rng: np.random.Generator, *, loss_rate: float = 0.03, mean_burst: float = 2.0, fade_db: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Lose frames in bursts and conceal them; returns the audio and the lost-frame mask."""
    lost = loss_pattern(len(pcm) // FRAME, rng, loss_rate=loss_rate, mean_burst=mean_burst)
    return conceal(pcm, lost, fade_db=fade_db), lost


# -- a session's draw ---------------------------------------------------------------------------


@dataclass
class Conditions:
    """What a session's person line and trunk do (None: not applied)."""

    hiss_dbov: float | None = None
    room_dbov: float | None = None
    room_alpha: float = 1.0
    babble_snr_db: float | None = None  # babble this far under the voice
    babble_talkers: int = 0
    gate: str | None = None  # None | "zeros" | "comfort"
    gate_above_floor_db: float = 6.0
    comfort_dbov: float | None = None
    agc_target_dbov: float | None = None
    agc_on_trunk: bool = False
    codec: str | None = None  # None | "gsm" | "lowrate"
    loss_rate: float | None = None
    loss_burst: float = 2.0
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {} and v is not False}

    def names(self) -> list[str]:
        """The conditions applied, as short names (for the per-condition tables)."""
        names = []
        if self.hiss_dbov is not None:
            names.append("hiss")
        if self.room_dbov is not None:
            names.append("room")
        if self.babble_snr_db is not None:
            names.append("babble")
        if self.gate:
            names.append("gate" if self.gate == "zeros" else "comfort-noise")
        if self.agc_target_dbov is not None:
            names.append("agc")
        if self.codec:
            names.append(f"codec-{self.codec}")
        if self.loss_rate is not None:
            names.append("plc")
        return names or ["clean"]


CODECS = {"gsm": {"low_hz": 200.0, "high_hz": 3400.0, "step_db": 3.0, "floor_db": 35.0},
          "lowrate": {"low_hz": 300.0, "high_hz": 2900.0, "step_db": 6.0, "floor_db": 25.0}}


def draw_conditions(rng: np.random.Generator, *, person: bool = True) -> Conditions:
    """A seeded draw of conditions: each one independently, at call-centre-like rates."""
    c = Conditions()
    if person:
        if rng.random() < 0.5:
            c.hiss_dbov = float(rng.uniform(-66.0, -52.0))
        if rng.random() < 0.4:
            c.room_dbov = float(rng.uniform(-60.0, -45.0))
            c.room_alpha = float(rng.choice([1.0, 1.5, 2.0]))
        if rng.random() < 0.3:
            c.babble_snr_db = float(rng.uniform(12.0, 24.0))
            c.babble_talkers = int(rng.integers(2, 6))
        gate = rng.random()
        if gate < 0.2:
            c.gate = "zeros"
        elif gate < 0.35:
            c.gate = "comfort"
            c.comfort_dbov = float(rng.uniform(-75.0, -62.0))
        c.gate_above_floor_db = float(rng.uniform(4.0, 10.0))
        if rng.random() < 0.3:
            c.agc_target_dbov = float(rng.uniform(-24.0, -16.0))
    elif rng.random() < 0.15:
        c.agc_target_dbov = float(rng.uniform(-24.0, -16.0))
        c.agc_on_trunk = True
    codec_draw = rng.random()
    if codec_draw < 0.3:
        c.codec = "gsm"
    elif codec_draw < 0.45:
        c.codec = "lowrate"
    if rng.random() < 0.25:
        c.loss_rate = float(rng.uniform(0.01, 0.08))
        c.loss_burst = float(rng.uniform(1.0, 3.0))
    return c


def apply_person(
    voice: np.ndarray,
    conditions: Conditions,
    rng: np.random.Generator,
    *,
    floor_dbov: float,
    voice_dbov: float,
    onset: int,
    babble_clips: list[np.ndarray] | None = None,
    room_recording: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The person's channel: their words (``voice``, on its line floor) in a room, through a
    headset and a softphone. ``onset`` (samples) aligns the gate's frames on the first word."""
    x = np.array(voice, dtype=np.float64)
    n = len(x)
    notes: dict[str, Any] = {}
    if conditions.room_dbov is not None:
        if room_recording is not None and len(room_recording):
            x += _rms_scale(loop_to(room_recording, n, rng), conditions.room_dbov)
            notes["room"] = "recording"
        else:
            x += coloured_noise(n, conditions.room_dbov, rng, conditions.room_alpha)
    if conditions.babble_snr_db is not None:
        x += babble(babble_clips or [], n, voice_dbov - conditions.babble_snr_db, rng)
        notes["babble_clips"] = len(babble_clips or [])
    if conditions.hiss_dbov is not None:
        x += hiss(n, conditions.hiss_dbov, rng)
    if conditions.gate:
        floor = max(level_dbov(x[: max(onset, 1)]) if onset > FRAME else floor_dbov, floor_dbov)
        threshold = min(max(floor + conditions.gate_above_floor_db, -55.0), voice_dbov - 15.0)
        fill = conditions.comfort_dbov if conditions.gate == "comfort" else None
        x, closed = noise_gate(x, threshold, fill_dbov=fill, rng=rng, start=onset)
        notes["gate_dbov"] = round(threshold, 1)
        notes["gated_frames"] = int(closed.sum())
    if conditions.agc_target_dbov is not None and not conditions.agc_on_trunk:
        x, gains = agc(x, conditions.agc_target_dbov)
        notes["agc_gain_db"] = [round(float(gains.min()), 1), round(float(gains.max()), 1)] if len(gains) else []
    return x, notes


def apply_line(pcm: np.ndarray, conditions: Conditions, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """The trunk between the far end and the app's G.711 leg: AGC (rare), codec, packet loss."""
    x = np.asarray(pcm, dtype=np.float64)
    notes: dict[str, Any] = {}
    if conditions.agc_target_dbov is not None and conditions.agc_on_trunk:
        x, _ = agc(x, conditions.agc_target_dbov)
    if conditions.codec:
        x = codec(x, **CODECS[conditions.codec])
    if conditions.loss_rate is not None:
        x, lost = packet_loss(x, rng, loss_rate=conditions.loss_rate, mean_burst=conditions.loss_burst)
        notes["lost_frames"] = int(lost.sum())
    return x, notes
