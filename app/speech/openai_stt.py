"""OpenAI transcription: one ``POST /v1/audio/transcriptions`` per VAD-cut utterance.

Each utterance goes up as a WAV file of the call's own audio (8 kHz 16-bit mono: the service
resamples, and upsampling here would only make the upload bigger). ``whisper-1`` answers in
``verbose_json`` with word timestamps, which are mapped to the call timeline; the
``gpt-4o*-transcribe`` models only answer ``json`` (text, no timings): their transcript spans
the utterance. Failures raise from ``results()``: a refused key -> ``SttUnavailable``;
network, timeout, any other HTTP error (after the SDK's ``max_retries``) -> ``SttConnectionError``.
"""

from __future__ import annotations

import io
import math
import wave
from typing import Any

import numpy as np

from app.speech.segmenter import Segmenter, Utterance
from app.speech.stt import BatchStt
from app.speech.types import TELEPHONE_RATE, SttConnectionError, SttUnavailable, Transcript, Word

PROVIDER = "openai"


def wav_bytes(pcm: np.ndarray, rate: int = TELEPHONE_RATE) -> bytes:
    """A mono 16-bit WAV file in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return buffer.getvalue()


class OpenAiStt(BatchStt):
    provider = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "gpt-4o-mini-transcribe",
        base_url: str | None = None,
        language: str = "en",
        timeout: float = 20.0,
        max_retries: int = 1,
        segmenter: Segmenter | None = None,
    ) -> None:
        super().__init__(segmenter)
        self.model = model
        self._client_options: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self._language = language
        self._client: Any = None

    async def transcribe_utterance(self, utterance: Utterance) -> Transcript | None:
        import openai

        if self._client is None:
            self._client = openai.AsyncOpenAI(**self._client_options)
        verbose = self.model.startswith("whisper")
        request: dict[str, Any] = {
            "file": ("utterance.wav", wav_bytes(utterance.pcm), "audio/wav"),
            "model": self.model,
            "language": self._language,
        }
        if verbose:
            request.update(response_format="verbose_json", timestamp_granularities=["word", "segment"])
        else:
            request["response_format"] = "json"
        try:
            result = await self._client.audio.transcriptions.create(**request)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise SttUnavailable(PROVIDER, f"the API key was refused ({error.status_code})") from error
        except openai.APIConnectionError as error:  # includes timeouts
            raise SttConnectionError(PROVIDER, f"request failed: {error}") from error
        except openai.APIStatusError as error:
            raise SttConnectionError(PROVIDER, f"HTTP {error.status_code}: {error.message}") from error
        text = result.text.strip()
        if not text:
            return None
        words = [
            Word(w.word.strip(), utterance.t_start + w.start, utterance.t_start + w.end)
            for w in (getattr(result, "words", None) or ())
        ]
        segments = getattr(result, "segments", None) or ()
        confidence = math.exp(float(np.mean([s.avg_logprob for s in segments]))) if segments else None
        return Transcript(
            text=text,
            t_start=words[0].t_start if words else utterance.t_start,
            t_end=words[-1].t_end if words else utterance.t_end,
            is_final=True,
            confidence=confidence,
            words=words,
        )

    async def close(self) -> None:
        await super().close()
        if self._client is not None:
            await self._client.close()
