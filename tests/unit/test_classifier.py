"""Window classes from features, Silero's speech share and the tone detector's state."""

from __future__ import annotations

import numpy as np

from app.audio.classifier import ToneState, classify_window
from app.audio.features import frame_features, window_features
from app.audio.types import AudioClass
from app.media.g711 import ulaw_decode, ulaw_encode

RATE = 8000


def features_of(samples: np.ndarray):
    pcm = ulaw_decode(ulaw_encode(np.clip(samples, -32768, 32767).astype(np.int16)))
    return window_features(frame_features(pcm))


def chord(seconds: float = 3.0, amplitude: float = 3000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * sum(np.sin(2 * np.pi * f * t) for f in (262.0, 330.0, 392.0))


def test_tones_win_over_the_sound_they_make():
    f = features_of(chord())
    assert classify_window(f, 0.0, ToneState(sit=True))[0] == AudioClass.SIT
    assert classify_window(f, 0.0, ToneState(dtmf=True))[0] == AudioClass.DTMF
    assert classify_window(f, 0.0, ToneState(steady="ringback"))[0] == AudioClass.RINGING
    assert classify_window(f, 0.0, ToneState(steady="busy"))[0] == AudioClass.BUSY


def test_held_chords_without_speech_steps_are_music():
    audio_class, confidence = classify_window(features_of(chord()), 0.0, ToneState())
    assert audio_class == AudioClass.MUSIC and confidence > 0.5


def test_silero_speech_steps_make_the_window_speech():
    assert classify_window(features_of(chord()), 0.8, ToneState())[0] == AudioClass.SPEECH


def test_quiet_window_is_silence():
    assert classify_window(features_of(chord(amplitude=10.0)), 0.0, ToneState())[0] == AudioClass.SILENCE
