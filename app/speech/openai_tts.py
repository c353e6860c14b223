"""OpenAI text-to-speech (``POST /v1/audio/speech``), brought down to the call's 8 kHz.

``response_format="pcm"`` (the default) is raw 24 kHz 16-bit little-endian mono; ``"wav"`` is
the same in a WAV file (its rate is read from the header). Either is resampled to 8 kHz with
the anti-aliasing low-pass of ``app.speech.types.resample``. Blocking (the sync SDK client):
``synthesize_async`` runs it in a thread. Any failure (key refused, network, HTTP error,
audio it cannot read) raises ``TtsError``.
"""

from __future__ import annotations

import struct
import threading
from typing import Any, Literal

import numpy as np

from app.speech.tts import CachedTts
from app.speech.types import TELEPHONE_RATE, TtsError, resample

PROVIDER = "openai"
PCM_RATE = 24000


class OpenAiTts(CachedTts):
    provider = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        response_format: Literal["pcm", "wav"] = "pcm",
        base_url: str | None = None,
        timeout: float = 20.0,
        max_retries: int = 1,
        cache_size: int = 256,
    ) -> None:
        super().__init__(cache_size)
        self.model = model
        self.voice = voice
        self.response_format = response_format
        self._client_options: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self._client: Any = None

    def render(self, text: str, cancel: threading.Event | None = None) -> np.ndarray:
        import openai

        if self._client is None:
            self._client = openai.OpenAI(**self._client_options)
        try:
            response = self._client.audio.speech.create(
                model=self.model, voice=self.voice, input=text, response_format=self.response_format
            )
            audio = response.read()
        except openai.APIStatusError as error:
            raise TtsError(PROVIDER, f"HTTP {error.status_code}: {error.message}") from error
        except openai.APIConnectionError as error:  # includes timeouts
            raise TtsError(PROVIDER, f"request failed: {error}") from error
        if self.response_format == "pcm":
            pcm, rate = np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2"), PCM_RATE
        else:
            pcm, rate = decode_wav(audio)
        if len(pcm) == 0:
            raise TtsError(PROVIDER, f"no audio came back for {text!r}")
        return resample(pcm, rate, TELEPHONE_RATE)


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """(int16 mono samples, rate) of a 16-bit PCM WAV held in memory.

    Tolerates the placeholder sizes (0xFFFFFFFF) that streamed WAV headers carry: the data
    chunk then runs to the end of the bytes.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TtsError(PROVIDER, "the audio is not a WAV file")
    position, rate, channels, bits = 12, 0, 0, 0
    while position + 8 <= len(data):
        chunk_id, size = data[position : position + 4], struct.unpack_from("<I", data, position + 4)[0]
        body = data[position + 8 : position + 8 + size]
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack_from("<HHI", body)
            bits = struct.unpack_from("<H", body, 14)[0]
            if tag != 1 or bits != 16:
                raise TtsError(PROVIDER, f"unsupported WAV format (tag {tag}, {bits} bits)")
        elif chunk_id == b"data":
            if not rate:
                raise TtsError(PROVIDER, "WAV data before its fmt chunk")
            samples = np.frombuffer(body[: len(body) // (2 * channels) * 2 * channels], dtype="<i2")
            if channels > 1:
                samples = samples.reshape(-1, channels).mean(axis=1).round().astype(np.int16)
            return samples, rate
        position += 8 + size + (size & 1)
    raise TtsError(PROVIDER, "the WAV file has no data chunk")
