"""Deepgram live streaming speech-to-text (deepgram-sdk 7, ``listen.v1`` websocket).

The call's mu-law 8 kHz goes out as it is (``encoding=mulaw&sample_rate=8000&channels=1``),
one binary message per push, with interim results and endpointing on. Deepgram's own VAD
segments the stream, so the project's segmenter is not used here.

Deepgram's messages and this protocol's transcripts:
  - interim ``Results`` (``is_final: false``): a ``Transcript(is_final=False)`` of the
    utterance so far: the finalised pieces of the utterance plus the interim guess;
  - final ``Results`` (``is_final: true``): a finalised piece, kept until the utterance ends;
  - the utterance ends at ``speech_final: true`` (endpointing heard a pause), at an
    ``UtteranceEnd`` message (words stopped for ``utterance_end_ms``, for noisy lines where
    endpointing never fires) or when the stream closes: one ``Transcript(is_final=True)``
    of all its pieces.
Deepgram's times count seconds of audio sent; pushes carry call times, so the mapping
between the two is kept (re-anchored whenever the pushed audio is not contiguous).

Failures, all raised from ``results()``: a refused key -> ``SttUnavailable``; refused or lost
connection, an ``Error`` message, the server closing early -> ``SttConnectionError``; and a
stream that stays connected but answers nothing: once ``stall_seconds`` of audio went out with
no message back, a ``Finalize`` asks the service to flush what it has (it answers with a
``Results`` marked ``from_finalize``); no message within ``stall_seconds`` more and the stream is
stalled -> ``SttConnectionError``, so that a hung service hands over to the local recogniser
instead of leaving the call deaf until the stream is closed.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.media.g711 import ulaw_encode
from app.speech.stt import ResultQueue
from app.speech.types import TELEPHONE_RATE, AudioChunk, SttConnectionError, SttError, SttUnavailable, Transcript, Word

log = logging.getLogger(__name__)

PROVIDER = "deepgram"
# Pushes further than this from where the previous one ended start a new time anchor.
_CONTIGUITY_TOLERANCE = 0.03


@dataclass
class _Piece:
    """A finalised part of the utterance in progress."""

    text: str
    t_start: float
    t_end: float
    confidence: float
    words: list[Word]


class DeepgramStt:
    """One live Deepgram stream per call; connects on the first push.

    ``url``: the websocket base (``wss://api.deepgram.com`` by default; a self-hosted
    Deepgram or a test fake otherwise).
    """

    provider = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "nova-3",
        language: str = "en-US",
        endpointing_ms: int = 300,
        utterance_end_ms: int = 1000,
        url: str | None = None,
        connect_timeout: float = 10.0,
        keepalive_seconds: float = 5.0,
        close_timeout: float = 10.0,
        stall_seconds: float = 15.0,
    ) -> None:
        if stall_seconds <= 0:
            raise ValueError("stall_seconds must be positive")
        self._api_key = api_key
        self._options = {
            "model": model,
            "language": language,
            "encoding": "mulaw",
            "sample_rate": str(TELEPHONE_RATE),
            "channels": "1",
            "interim_results": "true",
            "endpointing": str(endpointing_ms),
            "utterance_end_ms": str(utterance_end_ms),
            "punctuate": "true",
        }
        self._url = url
        self._connect_timeout = connect_timeout
        self._keepalive_seconds = keepalive_seconds
        self._close_timeout = close_timeout
        self._stall_seconds = stall_seconds
        self._heard_from_server = 0.0  # self._sent_seconds when the last server message came
        self._finalize_sent_at: float | None = None  # loop time of an unanswered Finalize
        self._outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._results = ResultQueue()
        self._task: asyncio.Task[None] | None = None
        self._finished = False
        self._closing_stream = False  # CloseStream sent: the server's close is expected
        # Time mapping: stream seconds (audio sent) -> call time, one anchor per contiguous run.
        self._sent_seconds = 0.0
        self._anchor_stream: list[float] = []
        self._anchor_call: list[float] = []
        self._pieces: list[_Piece] = []

    # --- the protocol ----------------------------------------------------------------------
    def push(self, pcm: np.ndarray, t: float) -> None:
        self._send_mulaw(ulaw_encode(np.asarray(pcm, dtype=np.int16)), t)

    def push_chunk(self, chunk: AudioChunk) -> None:
        self._send_mulaw(chunk.to_mulaw(), chunk.t)  # mu-law 8 kHz goes out byte for byte

    def _send_mulaw(self, mulaw: bytes, t: float) -> None:
        if self._finished or not mulaw:
            return
        if not self._anchor_stream or abs(self._call_time(self._sent_seconds) - t) > _CONTIGUITY_TOLERANCE:
            self._anchor_stream.append(self._sent_seconds)
            self._anchor_call.append(t)
        self._sent_seconds += len(mulaw) / TELEPHONE_RATE
        self._outgoing.put_nowait(mulaw)
        self._start()

    def results(self) -> AsyncIterator[Transcript]:
        return self._results.__aiter__()

    async def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._task is None:  # nothing was ever pushed
            self._results.end()
            return
        self._outgoing.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self._close_timeout + self._connect_timeout)
        except TimeoutError:
            self._results.fail(SttConnectionError(PROVIDER, "the stream did not close after CloseStream"))
            await self.close()

    async def close(self) -> None:
        self._finished = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._results.end()

    # --- the connection --------------------------------------------------------------------
    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="stt-deepgram")

    async def _run(self) -> None:
        try:
            await self._converse()
        except SttError as error:
            self._results.fail(error)
            return
        except Exception as error:  # network and websocket failures of every kind: the fallback takes over
            log.warning("Deepgram stream failed", exc_info=True)
            self._results.fail(SttConnectionError(PROVIDER, f"connection failed: {error!r}"))
            return
        self._emit_utterance()
        self._results.end()

    async def _converse(self) -> None:
        from deepgram import AsyncDeepgramClient
        from deepgram.core.api_error import ApiError
        from deepgram.environment import DeepgramClientEnvironment
        from websockets.exceptions import ConnectionClosed

        kwargs: dict[str, Any] = {"api_key": self._api_key}
        if self._url is not None:
            base = self._url.rstrip("/")
            http = base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
            kwargs["environment"] = DeepgramClientEnvironment(base=http, production=base, agent=base, agent_rest=http)
        client = AsyncDeepgramClient(**kwargs)
        async with contextlib.AsyncExitStack() as stack:
            try:
                socket = await asyncio.wait_for(
                    stack.enter_async_context(client.listen.v1.connect(**self._options)), self._connect_timeout
                )
            except ApiError as error:
                if error.status_code in (401, 403):
                    raise SttUnavailable(PROVIDER, f"the API key was refused ({error.status_code})") from error
                raise SttConnectionError(PROVIDER, f"connection refused ({error.status_code}): {error.body}") from error
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._send(socket))
                    receiving = group.create_task(self._receive(socket))
                    group.create_task(self._watch(socket, receiving))
            except* ConnectionClosed as errors:
                raise SttConnectionError(PROVIDER, f"the connection was lost: {errors.exceptions[0]}") from None
            except* SttError as errors:
                raise errors.exceptions[0] from None

    async def _send(self, socket: Any) -> None:
        while True:
            try:
                audio = await asyncio.wait_for(self._outgoing.get(), self._keepalive_seconds)
            except TimeoutError:
                await socket.send_keep_alive()  # no audio for a while: Deepgram closes idle streams at 10 s
                continue
            if audio is None:
                self._closing_stream = True
                await socket.send_close_stream()
                return
            await socket.send_media(audio)

    async def _watch(self, socket: Any, receiving: asyncio.Task[None]) -> None:
        """Ends when the receiver does; raises when the service stopped answering (module doc)."""
        loop = asyncio.get_running_loop()
        tick = min(1.0, self._stall_seconds / 4)
        while not receiving.done():
            await asyncio.wait({receiving}, timeout=tick)
            if self._closing_stream or receiving.done():
                return
            if self._finalize_sent_at is not None:
                if loop.time() - self._finalize_sent_at >= self._stall_seconds:
                    unanswered = self._sent_seconds - self._heard_from_server
                    raise SttConnectionError(
                        PROVIDER, f"no answer for {unanswered:.0f} s of audio, nor to Finalize: the stream is stalled"
                    )
            elif self._sent_seconds - self._heard_from_server >= self._stall_seconds:
                self._finalize_sent_at = loop.time()
                await socket.send_finalize()

    async def _receive(self, socket: Any) -> None:
        from deepgram.listen.v1.types import ListenV1Error, ListenV1Results, ListenV1UtteranceEnd

        async for message in socket:
            self._heard_from_server, self._finalize_sent_at = self._sent_seconds, None
            if isinstance(message, ListenV1Results):
                self._on_results(message)
            elif isinstance(message, ListenV1UtteranceEnd):
                self._emit_utterance()
            elif isinstance(message, ListenV1Error):
                raise SttConnectionError(PROVIDER, f"{message.variant}: {message.description}")
        if not self._closing_stream:
            raise SttConnectionError(PROVIDER, "the server closed the stream")

    # --- messages -> transcripts -----------------------------------------------------------
    def _on_results(self, message: Any) -> None:
        if not message.channel.alternatives:
            return
        piece = self._piece(message, message.channel.alternatives[0])
        if message.is_final:
            if piece.text:
                self._pieces.append(piece)
            if message.speech_final:
                self._emit_utterance()
        elif piece.text:
            self._results.put(self._merge([*self._pieces, piece], is_final=False))

    def _piece(self, message: Any, best: Any) -> _Piece:
        words = [
            Word(w.punctuated_word or w.word, self._call_time(w.start), self._call_time(w.end)) for w in best.words
        ]
        return _Piece(
            text=best.transcript.strip(),
            t_start=words[0].t_start if words else self._call_time(message.start),
            t_end=words[-1].t_end if words else self._call_time(message.start + message.duration),
            confidence=float(best.confidence),
            words=words,
        )

    def _emit_utterance(self) -> None:
        if self._pieces:
            self._results.put(self._merge(self._pieces, is_final=True))
            self._pieces = []

    @staticmethod
    def _merge(pieces: list[_Piece], *, is_final: bool) -> Transcript:
        return Transcript(
            text=" ".join(piece.text for piece in pieces),
            t_start=pieces[0].t_start,
            t_end=pieces[-1].t_end,
            is_final=is_final,
            confidence=float(np.mean([piece.confidence for piece in pieces])),
            words=[w for piece in pieces for w in piece.words],
        )

    def _call_time(self, stream_seconds: float) -> float:
        if not self._anchor_stream:
            return stream_seconds
        i = max(0, bisect.bisect_right(self._anchor_stream, stream_seconds) - 1)
        return self._anchor_call[i] + (stream_seconds - self._anchor_stream[i])
