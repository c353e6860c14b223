"""The class of one analysis window from its features, the VAD and the tone detector.

Pure: numbers in, ``(AudioClass, confidence)`` out. The source of speech (recording or person)
is the human detector's business; this module only says *speech*, *music*, *tone* or *silence*.

Why Silero decides speech versus music: on 8 kHz mu-law it marks ~0% of the hold music as
speech and ~95% of the active steps of speech (CORPUS.md, app/audio/vad.py), where the window
features alone (``app.audio.features``) confuse percussive music with speech now and then. The
features still decide when Silero is unsure (a music bed under speech lowers its probability).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.audio.features import WindowFeatures
from app.audio.types import AudioClass

# A window whose newest second has this share of Silero steps at >= 0.5 holds speech.
_SPEECH_SHARE = 0.25
# Below this share of speech steps the window is not speech, whatever its loudness swings say.
_NOT_SPEECH_SHARE = 0.05


@dataclass(frozen=True)
class ClassifierSettings:
    silence_peak_dbov: float = -45.0
    speech_max_harmonic_steadiness: float = 0.12
    speech_min_loudness_std_db: float = 6.0
    music_max_flatness: float = 0.25


@dataclass(frozen=True)
class ToneState:
    """What the tone detector heard inside the window."""

    steady: str | None = None  # "ringback" | "busy" | "reorder" | "dialtone" sounding now
    sit: bool = False
    dtmf: bool = False


def classify_window(
    features: WindowFeatures,
    speech_share: float,
    tones: ToneState,
    settings: ClassifierSettings = ClassifierSettings(),
    window_speech_share: float = 0.0,
) -> tuple[AudioClass, float]:
    """Base class of a window: SILENCE, RINGING, BUSY, SIT, DTMF, MUSIC or SPEECH.

    ``speech_share`` is the share of Silero's speech steps in the window's newest second,
    ``window_speech_share`` in the whole window."""
    if tones.sit:
        return AudioClass.SIT, 0.95
    if tones.dtmf:
        return AudioClass.DTMF, 0.95
    if tones.steady == "ringback":
        return AudioClass.RINGING, 0.9
    if tones.steady in ("busy", "reorder"):
        return AudioClass.BUSY, 0.9
    if features.peak_dbov < settings.silence_peak_dbov:
        return AudioClass.SILENCE, _confidence(settings.silence_peak_dbov - features.peak_dbov, 10.0)
    if speech_share >= _SPEECH_SHARE:
        return AudioClass.SPEECH, _confidence(speech_share - _SPEECH_SHARE + 0.1, 0.3)
    pitch_margin = (settings.speech_max_harmonic_steadiness - features.harmonic_steadiness) / 0.05
    depth_margin = (features.loudness_std_db - settings.speech_min_loudness_std_db) / 4.0
    if speech_share >= _NOT_SPEECH_SHARE and pitch_margin > 0 and depth_margin > 0:
        return AudioClass.SPEECH, _confidence(min(pitch_margin, depth_margin), 1.0)
    if window_speech_share >= _SPEECH_SHARE and pitch_margin > 0:
        # Words earlier in the window trailing into a pause: the swing of a voice dying away,
        # not music (no held notes). Calling it music would end a talker's turn as "music came
        # back" and count silence as hold music.
        return AudioClass.SPEECH, 0.6
    if features.flatness > settings.music_max_flatness:
        # Neither held notes nor speech: a noise floor, not music.
        return AudioClass.SILENCE, _confidence(features.flatness - settings.music_max_flatness, 0.25)
    return AudioClass.MUSIC, _confidence(max(-pitch_margin, 0.0) + 1.0 - 4.0 * speech_share, 1.0)


def _confidence(margin: float, scale: float) -> float:
    """Map a margin past a threshold to 0.5 .. 0.99."""
    return float(min(0.99, 0.5 + 0.5 * np.tanh(max(margin, 0.0) / scale)))
