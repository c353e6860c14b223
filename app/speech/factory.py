"""Choosing a speech provider from configuration: ``stt_from_settings`` and ``tts_from_settings``.

The factories sit apart from the protocols (``stt.py``, ``tts.py``) because they import every
provider, and every provider imports its protocol's base classes: together they were a cycle.

Speech-to-text degrades to the local path (``stt_from_settings``):
  - a cloud provider asked for without its key, or whose SDK does not import, is replaced by
    the local recogniser at once (a warning is logged);
  - otherwise the cloud recogniser is wrapped in ``FallbackStt``: when it fails during the
    call (key refused, connection refused or dropped, an HTTP error, a timeout) the wrapper
    starts the local recogniser, replays to it the audio pushed since the cloud's last final
    transcript (at most ``retain_seconds``), and goes on with the local one for the rest of
    the call. ``FallbackStt.provider`` says which one is active, ``fallback_reason`` why.

Text-to-speech: without an OpenAI key, or without the ``openai`` package, ``tts_from_settings``
returns Piper; an OpenAI voice that fails during a call (``TtsError``) hands over to Piper for
the rest of the process (``FallbackTts``).

Vendor SDKs are imported inside the provider modules, only when one is used.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

from app.speech.segmenter import Segmenter, SegmenterSettings
from app.speech.stt import FallbackStt, SpeechToText, SttProvider
from app.speech.tts import FallbackTts, TextToSpeech, TtsProvider

if TYPE_CHECKING:
    from app.speech.piper_tts import PiperSettings
    from app.speech.whisper_local import WhisperSettings

log = logging.getLogger(__name__)


def stt_from_settings(
    provider: SttProvider = "local",
    *,
    deepgram_api_key: str | None = None,
    openai_api_key: str | None = None,
    deepgram_url: str | None = None,
    openai_base_url: str | None = None,
    deepgram_model: str = "nova-3",
    openai_model: str = "gpt-4o-mini-transcribe",
    whisper: WhisperSettings | None = None,
    segmenter: SegmenterSettings = SegmenterSettings(),
    timeout: float = 15.0,
) -> SpeechToText:
    """A recogniser for one call. Without the provider's key or SDK: the local one (see module doc).

    ``timeout``: how long a cloud provider may keep the call waiting: OpenAI's request time-out,
    and for Deepgram the seconds of audio with no answer before it is asked to flush, and again
    before its stream counts as stalled."""
    from app.speech.whisper_local import LocalWhisperStt, WhisperSettings

    whisper_settings = whisper if whisper is not None else WhisperSettings()

    def local() -> SpeechToText:
        return LocalWhisperStt(whisper_settings, segmenter=Segmenter(segmenter))

    if provider == "local":
        return local()
    if provider == "deepgram":
        if not deepgram_api_key:
            log.warning("STT provider deepgram has no API key; using the local recogniser")
            return local()
        if not _sdk_installed("deepgram"):
            log.warning("STT provider deepgram needs the deepgram-sdk package; using the local recogniser")
            return local()
        from app.speech.deepgram_stt import DeepgramStt

        return FallbackStt(DeepgramStt(deepgram_api_key, model=deepgram_model, url=deepgram_url, stall_seconds=timeout), local)
    if provider == "openai":
        if not openai_api_key:
            log.warning("STT provider openai has no API key; using the local recogniser")
            return local()
        if not _sdk_installed("openai"):
            log.warning("STT provider openai needs the openai package; using the local recogniser")
            return local()
        from app.speech.openai_stt import OpenAiStt

        recogniser = OpenAiStt(
            openai_api_key, model=openai_model, base_url=openai_base_url, segmenter=Segmenter(segmenter), timeout=timeout
        )
        return FallbackStt(recogniser, local)
    raise ValueError(f"unknown STT provider {provider!r} (local, deepgram or openai)")


def _sdk_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None  # finds it without importing it


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
