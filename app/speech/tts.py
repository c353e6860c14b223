"""Text-to-speech behind one small protocol, and the factory that picks a provider.

Usage::

    tts = tts_from_settings("piper")
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
import importlib.util
import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from app.speech.types import TtsError

if TYPE_CHECKING:
    from app.speech.piper_tts import PiperSettings

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


def tts_from_settings(
    provider: TtsProvider = "piper",
    *,
    openai_api_key: str | None = None,
    openai_base_url: str | None = None,
    openai_model: str = "gpt-4o-mini-tts",
    openai_voice: str = "alloy",
    piper: PiperSettings | None = None,
) -> TextToSpeech:
    """A voice. Without the OpenAI key or package: Piper (see the module docstring)."""
    from app.speech.piper_tts import PiperSettings, PiperTts

    piper_settings = piper if piper is not None else PiperSettings()

    def local() -> TextToSpeech:
        return PiperTts.shared(piper_settings)

    if provider == "piper":
        return local()
    if provider == "openai":
        if not openai_api_key:
            log.warning("TTS provider openai has no API key; using the local Piper voice")
            return local()
        if importlib.util.find_spec("openai") is None:
            log.warning("TTS provider openai needs the openai package; using the local Piper voice")
            return local()
        from app.speech.openai_tts import OpenAiTts

        voice = OpenAiTts(openai_api_key, model=openai_model, voice=openai_voice, base_url=openai_base_url)
        return FallbackTts(voice, local)
    raise ValueError(f"unknown TTS provider {provider!r} (piper or openai)")
