"""Text-to-speech behind one small protocol (the factory that picks a provider: ``app.speech.factory``).

Usage::

    tts = tts_from_settings("piper")                       # app.speech.factory
    pcm = await tts.synthesize_async("Billing, please.")   # int16, 8 kHz, mono
    await endpoint.play(pcm)                                 # RtpEndpoint paces it out

``synthesize`` is blocking (model inference or an HTTP request); ``synthesize_async`` runs it
in a worker thread so the event loop never waits on it. Results are cached per text, since the
same phrases come back call after call; pass ``cache=False`` for one-off text such as an
account number (it then stays out of the cache). Cached arrays are read-only.

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


class TextToSpeech(Protocol):
    provider: str

    def synthesize(self, text: str, *, cache: bool = True) -> np.ndarray:
        """int16 8 kHz mono speech of ``text``; raises ``TtsError``."""

    async def synthesize_async(self, text: str, *, cache: bool = True) -> np.ndarray:
        """``synthesize`` in a worker thread."""


class CachedTts(ABC):
    """Base for providers: a bounded per-text cache and the threaded async wrapper."""

    provider: str

    def __init__(self, cache_size: int = 256) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self.cache_hits = 0

    @abstractmethod
    def render(self, text: str) -> np.ndarray:
        """Synthesise without the cache: int16 8 kHz mono; raises ``TtsError``."""

    def synthesize(self, text: str, *, cache: bool = True) -> np.ndarray:
        text = " ".join(text.split())
        if not text:
            raise ValueError("nothing to say: the text is empty")
        if cache:
            with self._cache_lock:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    self.cache_hits += 1
                    return self._cache[text]
        pcm = np.asarray(self.render(text), dtype=np.int16)
        pcm.flags.writeable = False
        if cache:
            with self._cache_lock:
                self._cache[text] = pcm
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return pcm

    async def synthesize_async(self, text: str, *, cache: bool = True) -> np.ndarray:
        return await asyncio.to_thread(self.synthesize, text, cache=cache)


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

    def synthesize(self, text: str, *, cache: bool = True) -> np.ndarray:
        active = self._active
        try:
            return active.synthesize(text, cache=cache)
        except TtsError as error:
            with self._lock:
                if self._active is active:
                    log.warning("text-to-speech %s failed (%s); going on with the local voice", error.provider, error)
                    self.fallback_reason = str(error)
                    self._active = self._make_fallback()
            return self._active.synthesize(text, cache=cache)

    async def synthesize_async(self, text: str, *, cache: bool = True) -> np.ndarray:
        return await asyncio.to_thread(self.synthesize, text, cache=cache)
