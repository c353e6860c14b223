"""Text-to-speech behind one small protocol (the factory that picks a provider: ``app.speech.factory``).

Usage::

    tts = tts_from_settings("piper")                       # app.speech.factory
    pcm = await tts.synthesize_async("Billing, please.")   # int16, 8 kHz, mono
    await endpoint.play(pcm)                                 # RtpEndpoint paces it out

``synthesize`` is blocking (model inference or an HTTP request); ``synthesize_async`` runs it
in a worker thread so the event loop never waits on it. Results are cached per text, since the
same phrases come back call after call; pass ``cache=False`` for one-off text such as an
account number (it then stays out of the cache). Cached arrays are read-only.

A render nobody waits for any more stops: when the coroutine awaiting ``synthesize_async`` is
cancelled (its call ended, the process is stopping), a render that has not begun (queued, or
waiting for the voice another render holds) never begins, and one under way stops at its next
sentence (``RenderCancelled``, raised in the thread, seen by no one). The thread is free again
at once, so a process that stops does not wait for lines rendered ahead of time (the handoff's,
as a hold begins) before it can exit.

Providers: ``piper`` (offline, the default; see ``app.speech.piper_tts`` for the voice's
licence) and ``openai``. Without an OpenAI key, or without the ``openai`` package, the factory
returns Piper; an OpenAI voice that fails during a call (``TtsError``) hands over to Piper
for the rest of the process (``FallbackTts``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np

from app.speech.types import TtsError

log = logging.getLogger(__name__)

TtsProvider = Literal["piper", "openai"]


class RenderCancelled(Exception):
    """The speech was no longer wanted: its render stopped (not a ``TtsError``: no fallback)."""


def stop_if_cancelled(cancel: threading.Event | None) -> None:
    """In a render, between its parts: give up if the caller stopped waiting."""
    if cancel is not None and cancel.is_set():
        raise RenderCancelled


async def in_thread(synthesize: Callable[..., np.ndarray], text: str, *, cache: bool) -> np.ndarray:
    """``synthesize(text, cache=cache, cancel=event)`` in a worker thread; ``event`` is set when
    this coroutine is cancelled, and the render stops at its next check (module docstring)."""
    cancel = threading.Event()
    try:
        return await asyncio.to_thread(synthesize, text, cache=cache, cancel=cancel)
    except asyncio.CancelledError:
        cancel.set()
        raise


class TextToSpeech(Protocol):
    provider: str

    def synthesize(self, text: str, *, cache: bool = True, cancel: threading.Event | None = None) -> np.ndarray:
        """int16 8 kHz mono speech of ``text``; raises ``TtsError``, or ``RenderCancelled``
        once ``cancel`` is set."""

    async def synthesize_async(self, text: str, *, cache: bool = True) -> np.ndarray:
        """``synthesize`` in a worker thread."""

    def warm_up(self) -> None:
        """Load what the voice needs (blocking), so its first line is not kept waiting for it."""


class CachedTts(ABC):
    """Base for providers: a bounded per-text cache and the threaded async wrapper."""

    provider: str

    def __init__(self, cache_size: int = 256) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self.cache_hits = 0

    def warm_up(self) -> None:
        """Nothing to load by default (a cloud voice)."""

    @abstractmethod
    def render(self, text: str, cancel: threading.Event | None = None) -> np.ndarray:
        """Synthesise without the cache: int16 8 kHz mono; raises ``TtsError``. A render of
        several parts checks ``cancel`` between them (``stop_if_cancelled``)."""

    def synthesize(self, text: str, *, cache: bool = True, cancel: threading.Event | None = None) -> np.ndarray:
        text = " ".join(text.split())
        if not text:
            raise ValueError("nothing to say: the text is empty")
        if cache:
            with self._cache_lock:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    self.cache_hits += 1
                    return self._cache[text]
        stop_if_cancelled(cancel)
        pcm = np.asarray(self.render(text, cancel), dtype=np.int16)
        pcm.flags.writeable = False
        if cache:
            with self._cache_lock:
                self._cache[text] = pcm
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return pcm

    async def synthesize_async(self, text: str, *, cache: bool = True) -> np.ndarray:
        return await in_thread(self.synthesize, text, cache=cache)


class FallbackTts:
    """A cloud voice that hands over to a local one when it fails."""

    def __init__(self, primary: TextToSpeech, make_fallback: Callable[[], TextToSpeech]) -> None:
        self._active = primary
        self._make_fallback = make_fallback
        self._lock = threading.Lock()
        self.fallback_reason: str | None = None

    @property
    def provider(self) -> str:
        return self._active.provider

    def warm_up(self) -> None:
        self._active.warm_up()  # not the fallback: it loads if it is ever needed

    def synthesize(self, text: str, *, cache: bool = True, cancel: threading.Event | None = None) -> np.ndarray:
        active = self._active
        try:
            return active.synthesize(text, cache=cache, cancel=cancel)
        except TtsError as error:
            with self._lock:
                if self._active is active:
                    log.warning("text-to-speech %s failed (%s); going on with the local voice", error.provider, error)
                    self.fallback_reason = str(error)
                    self._active = self._make_fallback()
            return self._active.synthesize(text, cache=cache, cancel=cancel)

    async def synthesize_async(self, text: str, *, cache: bool = True) -> np.ndarray:
        return await in_thread(self.synthesize, text, cache=cache)
