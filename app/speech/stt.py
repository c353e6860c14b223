"""Speech-to-text behind one small streaming protocol, and the factory that picks a provider.

Usage (one recogniser per call, fed with the far end's 20 ms frames)::

    stt = stt_from_settings("deepgram", deepgram_api_key=key)   # app.speech.factory
    async for frame in endpoint.frames():
        stt.push(frame.pcm, frame.arrival)      # int16 8 kHz, call time of its first sample
    ...
    async for transcript in stt.results():      # in another task: Transcript, call timeline
        ...
    await stt.finish()                          # end of audio: the last utterance comes out
    await stt.close()

``push_chunk(AudioChunk)`` takes audio in any stated format (a mu-law 8 kHz chunk reaches
Deepgram byte for byte). ``push`` never blocks and never raises for a provider's trouble: failures surface as an
``SttError`` raised from ``results()``. ``results()`` has one consumer and ends after
``finish()`` once everything pushed has been transcribed. ``stream(stt, chunks)`` adapts an
async iterator of ``AudioChunk`` to the same thing.

Providers: ``local`` (faster-whisper, offline, the default), ``deepgram`` (live streaming,
interim results), ``openai`` (one request per utterance). The batch ones (local, openai)
transcribe the utterances ``app.speech.segmenter`` cuts with the VAD; Deepgram gets the raw
stream and segments by itself.

Choosing and degrading a provider: ``app.speech.factory``. The providers import this module,
never the other way round.
Vendor SDKs are imported inside the provider modules, only when one is used.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Literal, Protocol

import numpy as np

from app.speech.segmenter import Segmenter, SegmenterSettings, Utterance
from app.speech.types import TELEPHONE_RATE, AudioChunk, SttError, Transcript, resample

log = logging.getLogger(__name__)

SttProvider = Literal["local", "deepgram", "openai"]


class SpeechToText(Protocol):
    provider: str

    def push(self, pcm: np.ndarray, t: float) -> None:
        """int16 8 kHz mono samples; ``t`` is the call time of the first one."""

    def push_chunk(self, chunk: AudioChunk) -> None:
        """Audio in any ``AudioFormat`` (mu-law 8 kHz reaches a streaming provider byte for byte)."""

    def results(self) -> AsyncIterator[Transcript]:
        """Transcripts in order, until ``finish()``'s work is done; raises ``SttError`` on failure."""

    async def finish(self) -> None:
        """No more audio: transcribe what is pending, then let ``results()`` end."""

    async def close(self) -> None:
        """Stop now, dropping pending work; ``results()`` ends."""


async def stream(stt: SpeechToText, audio: AsyncIterable[AudioChunk]) -> AsyncIterator[Transcript]:
    """Feed ``audio`` (any ``AudioFormat``) to ``stt`` and yield its transcripts; closes it at the end."""

    async def feed() -> None:
        async for chunk in audio:
            stt.push_chunk(chunk)
        await stt.finish()

    feeder = asyncio.create_task(feed())
    try:
        async for transcript in stt.results():
            yield transcript
        await feeder
    finally:
        feeder.cancel()
        await stt.close()


def chunk_pcm(chunk: AudioChunk) -> np.ndarray:
    """A chunk as int16 8 kHz mono, whatever its format."""
    return resample(chunk.to_pcm(), chunk.format.rate, TELEPHONE_RATE)


class _End:
    """Marks the end of a result stream."""


class ResultQueue:
    """Transcripts (or the error that ended them) from a provider's tasks to one ``results()`` reader."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Transcript | SttError | _End] = asyncio.Queue()
        self._ended = False

    def put(self, transcript: Transcript) -> None:
        if not self._ended:
            self._queue.put_nowait(transcript)

    def fail(self, error: SttError) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(error)

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_End())

    async def __aiter__(self) -> AsyncIterator[Transcript]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, SttError):
                raise item
            yield item


class BatchStt(ABC):
    """A recogniser that transcribes whole utterances, one at a time, cut by the ``Segmenter``.

    Subclasses give ``provider`` and ``transcribe_utterance``; this runs them in order in one
    worker task so results come out in call order and the event loop is never blocked by
    the segmenter's waiting.
    """

    provider: str

    def __init__(self, segmenter: Segmenter | None = None) -> None:
        self._segmenter = segmenter if segmenter is not None else Segmenter(SegmenterSettings())
        self._utterances: asyncio.Queue[Utterance | None] = asyncio.Queue()
        self._results = ResultQueue()
        self._worker: asyncio.Task[None] | None = None
        self._finished = False

    @abstractmethod
    async def transcribe_utterance(self, utterance: Utterance) -> Transcript | None:
        """The final transcript of one utterance (None: nothing was said); raises ``SttError``."""

    def push(self, pcm: np.ndarray, t: float) -> None:
        if self._finished:
            return
        for utterance in self._segmenter.push(pcm, t):
            self._enqueue(utterance)

    def push_chunk(self, chunk: AudioChunk) -> None:
        self.push(chunk_pcm(chunk), chunk.t)

    def results(self) -> AsyncIterator[Transcript]:
        return self._results.__aiter__()

    async def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        for utterance in self._segmenter.flush():
            self._enqueue(utterance)
        self._start_worker()
        self._utterances.put_nowait(None)
        await asyncio.shield(self._worker)

    async def close(self) -> None:
        self._finished = True
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._results.end()

    def _enqueue(self, utterance: Utterance) -> None:
        self._start_worker()
        self._utterances.put_nowait(utterance)

    def _start_worker(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"stt-{self.provider}")

    async def _work(self) -> None:
        while (utterance := await self._utterances.get()) is not None:
            try:
                transcript = await self.transcribe_utterance(utterance)
            except SttError as error:
                self._results.fail(error)
                return
            except Exception as error:  # a provider bug must still end the stream, not hang it
                log.exception("%s recogniser failed", self.provider)
                self._results.fail(SttError(self.provider, f"unexpected {type(error).__name__}: {error}"))
                return
            if transcript is not None:
                self._results.put(transcript)
        self._results.end()


class FallbackStt:
    """A cloud recogniser that hands over to a local one when it fails (see the module docstring)."""

    def __init__(
        self,
        primary: SpeechToText,
        make_fallback: Callable[[], SpeechToText],
        *,
        retain_seconds: float = 30.0,
    ) -> None:
        self._active = primary
        self._make_fallback = make_fallback
        self._retained: deque[tuple[np.ndarray, float]] = deque()
        self._retain_seconds = retain_seconds
        self._finishing = False
        self.fallback_reason: str | None = None

    @property
    def provider(self) -> str:
        return self._active.provider

    def push(self, pcm: np.ndarray, t: float) -> None:
        self._retain(np.asarray(pcm, dtype=np.int16), t)
        self._active.push(pcm, t)

    def push_chunk(self, chunk: AudioChunk) -> None:
        self._retain(chunk_pcm(chunk), chunk.t)
        self._active.push_chunk(chunk)

    async def results(self) -> AsyncIterator[Transcript]:
        try:
            async for transcript in self._active.results():
                if transcript.is_final:
                    self._forget_until(transcript.t_end)
                yield transcript
            return
        except SttError as error:
            self.fallback_reason = str(error)
            log.warning("speech-to-text %s failed (%s); going on with the local recogniser", error.provider, error)
        failed = self._active
        self._active = self._make_fallback()
        for pcm, t in self._retained:
            self._active.push(pcm, t)
        if self._finishing:
            await self._active.finish()
        await failed.close()
        async for transcript in self._active.results():
            yield transcript

    async def finish(self) -> None:
        self._finishing = True
        await self._active.finish()

    async def close(self) -> None:
        await self._active.close()

    def _retain(self, pcm: np.ndarray, t: float) -> None:
        self._retained.append((pcm, t))
        while self._retained and self._retained[-1][1] - self._retained[0][1] > self._retain_seconds:
            self._retained.popleft()

    def _forget_until(self, t_end: float) -> None:
        """Audio a final transcript covered will not be needed again."""
        while self._retained and self._retained[0][1] + len(self._retained[0][0]) / TELEPHONE_RATE <= t_end:
            self._retained.popleft()
