"""A fake of OpenAI's audio endpoints on 127.0.0.1, for the official SDK.

- ``POST /v1/audio/transcriptions``: multipart upload (``file``, ``model``, ``language``,
  ``response_format``, ``timestamp_granularities[]``). The uploaded WAV is parsed and recorded
  (rate, channels, duration) so a test can check what was sent. Answers ``json``
  (``{"text", "usage"}``) or ``verbose_json`` (``text``, ``duration``, ``language``, ``words``,
  ``segments``) from a script of replies; words without scripted times are spread over the
  uploaded audio. With an empty script it answers ``default_text``.
- ``POST /v1/audio/speech``: JSON (``model``, ``input``, ``voice``, ``response_format``) ->
  24 kHz 16-bit mono audio, raw (``pcm``) or as a WAV file. The audio comes from
  ``speech_audio(text)``; the default is a test signal: 1 kHz plus 5 kHz at equal level,
  60 ms per character of input, so a client that downsamples to 8 kHz without a proper
  low-pass shows the 5 kHz folded back to 3 kHz.

Auth is ``Authorization: Bearer KEY`` (else 401). Scripted ``AudioHttpError`` answers with
the service's error body; ``DropConnection`` closes the socket without an answer.
"""

from __future__ import annotations

import io
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

from tests.fakes import LoopbackServer

SPEECH_RATE = 24000
VOICES = frozenset("alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar".split())
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests", 500: "server_error"}


@dataclass(frozen=True)
class TranscriptionReply:
    text: str
    words: tuple[tuple[str, float, float], ...] | None = None  # (word, start, end) in seconds of the upload


@dataclass(frozen=True)
class AudioHttpError:
    status: int
    message: str = "scripted failure"


@dataclass(frozen=True)
class DropConnection:
    """Close the connection without answering (a dead service or a broken network)."""


Reply = TranscriptionReply | AudioHttpError | DropConnection


@dataclass(frozen=True)
class TranscriptionRequest:
    model: str
    response_format: str
    language: str | None
    timestamp_granularities: tuple[str, ...]
    filename: str
    content_type: str
    wav_rate: int
    wav_channels: int
    wav_sample_width: int
    duration: float
    api_key: str


@dataclass(frozen=True)
class SpeechRequest:
    body: dict[str, Any]
    api_key: str


def two_tone_signal(text: str) -> np.ndarray:
    """The default TTS audio: int16 at 24 kHz, 1 kHz + 5 kHz, 60 ms per character."""
    t = np.arange(int(SPEECH_RATE * 0.06 * max(1, len(text)))) / SPEECH_RATE
    return (8000 * np.sin(2 * np.pi * 1000 * t) + 8000 * np.sin(2 * np.pi * 5000 * t)).astype(np.int16)


class FakeOpenAiAudio(LoopbackServer):
    def __init__(
        self,
        *,
        api_key: str = "test-key",
        default_text: str = "Thank you for calling.",
        speech_audio: Callable[[str], np.ndarray] = two_tone_signal,
    ) -> None:
        self.api_key = api_key
        self.default_text = default_text
        self.speech_audio = speech_audio
        self.transcriptions: list[TranscriptionRequest] = []
        self.speech_requests: list[SpeechRequest] = []
        self._transcription_script: deque[Reply] = deque()
        self._speech_script: deque[AudioHttpError | DropConnection] = deque()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script_transcriptions(self, *replies: Reply) -> None:
        self._transcription_script.extend(replies)

    def script_speech_failures(self, *failures: AudioHttpError | DropConnection) -> None:
        self._speech_script.extend(failures)

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=25 * 1024 * 1024)  # the service's upload limit
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_post("/v1/audio/speech", self._speech)
        return app

    # --- handlers ------------------------------------------------------------------------------
    async def _transcribe(self, request: web.Request) -> web.StreamResponse:
        api_key = self._api_key(request)
        if api_key != self.api_key:
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return _error(400, "'file' is a required property", param="file")
        if "model" not in form:
            return _error(400, "'model' is a required property", param="model")
        response_format = str(form.get("response_format", "json"))
        if response_format not in ("json", "verbose_json", "text"):
            return _error(400, f"the fake does not produce {response_format!r}", param="response_format")
        if response_format == "verbose_json" and not str(form["model"]).startswith("whisper"):
            return _error(400, f"response_format 'verbose_json' is not compatible with model '{form['model']}'")
        try:
            with wave.open(io.BytesIO(upload.file.read()), "rb") as wav:
                rate, channels, width, frames = wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()
        except (wave.Error, EOFError) as error:
            return _error(400, f"Invalid file format: {error}", param="file")
        granularities = tuple(str(v) for v in form.getall("timestamp_granularities[]", []))
        self.transcriptions.append(
            TranscriptionRequest(
                model=str(form["model"]),
                response_format=response_format,
                language=str(form["language"]) if "language" in form else None,
                timestamp_granularities=granularities,
                filename=upload.filename,
                content_type=upload.content_type,
                wav_rate=rate,
                wav_channels=channels,
                wav_sample_width=width,
                duration=frames / rate,
                api_key=api_key,
            )
        )
        reply = self._transcription_script.popleft() if self._transcription_script else TranscriptionReply(self.default_text)
        if isinstance(reply, DropConnection):
            return await _drop(request)
        if isinstance(reply, AudioHttpError):
            return _error(reply.status, reply.message)
        if response_format == "text":
            return web.Response(text=reply.text + "\n")
        if response_format == "json":
            usage = {"type": "tokens", "input_tokens": 50, "output_tokens": len(reply.text.split()), "total_tokens": 60}
            return web.json_response({"text": reply.text, "usage": usage})
        return web.json_response(_verbose(reply, frames / rate, granularities))

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        api_key = self._api_key(request)
        if api_key != self.api_key:
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        body = await request.json()
        self.speech_requests.append(SpeechRequest(body=body, api_key=api_key))
        for name in ("model", "input", "voice"):
            if not body.get(name):
                return _error(400, f"'{name}' is a required property", param=name)
        if len(body["input"]) > 4096:
            return _error(400, "input is longer than 4096 characters", param="input")
        if body["voice"] not in VOICES:
            return _error(400, f"Invalid value for 'voice': {body['voice']!r}", param="voice")
        if self._speech_script:
            failure = self._speech_script.popleft()
            if isinstance(failure, DropConnection):
                return await _drop(request)
            return _error(failure.status, failure.message)
        audio = np.asarray(self.speech_audio(body["input"]), dtype="<i2")
        response_format = body.get("response_format", "mp3")
        if response_format == "pcm":
            return web.Response(body=audio.tobytes(), content_type="audio/pcm")
        if response_format == "wav":
            buffer = io.BytesIO()
            with wave.open(buffer, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(SPEECH_RATE)
                wav.writeframes(audio.tobytes())
            return web.Response(body=buffer.getvalue(), content_type="audio/wav")
        return _error(400, f"the fake does not encode {response_format!r}", param="response_format")

    @staticmethod
    def _api_key(request: web.Request) -> str:
        return request.headers.get("Authorization", "").removeprefix("Bearer ")


def _verbose(reply: TranscriptionReply, duration: float, granularities: tuple[str, ...]) -> dict[str, Any]:
    if reply.words is not None:
        words = [{"word": w, "start": s, "end": e} for w, s, e in reply.words]
    else:
        tokens = reply.text.split()
        span = duration / max(1, len(tokens))
        words = [
            {"word": token.strip(".,?!"), "start": round(i * span, 2), "end": round((i + 1) * span, 2)}
            for i, token in enumerate(tokens)
        ]
    result: dict[str, Any] = {
        "task": "transcribe",
        "language": "english",
        "duration": round(duration, 2),
        "text": reply.text,
        "usage": {"type": "duration", "seconds": int(np.ceil(duration))},
    }
    if "word" in granularities:
        result["words"] = words
    if "segment" in granularities or "word" not in granularities:
        result["segments"] = [
            {
                "id": 0,
                "seek": 0,
                "start": words[0]["start"] if words else 0.0,
                "end": words[-1]["end"] if words else duration,
                "text": " " + reply.text,
                "tokens": [50364, 2264, 50414],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.1,
                "no_speech_prob": 0.01,
            }
        ]
    return result


async def _drop(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.abort()
    raise web.HTTPInternalServerError()  # never delivered: the socket is gone


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "param": param, "code": code}}
    return web.json_response(body, status=status)
