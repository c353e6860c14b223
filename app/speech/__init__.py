"""Speech: speech-to-text and text-to-speech behind small protocols, one module per provider.

``stt_from_settings`` / ``tts_from_settings`` pick a provider from configuration and fall back
to the offline ones (faster-whisper, Piper) without keys. Importing this package imports no
vendor SDK: each provider imports its own when it is first used.
"""

from app.speech.segmenter import Segmenter, SegmenterSettings, Utterance
from app.speech.factory import stt_from_settings, tts_from_settings
from app.speech.stt import FallbackStt, SpeechToText, SttProvider, stream
from app.speech.tts import FallbackTts, TextToSpeech, TtsProvider
from app.speech.types import (
    MULAW_8K,
    PCM_8K,
    AudioChunk,
    AudioEncoding,
    AudioFormat,
    SpeechError,
    SttConnectionError,
    SttError,
    SttUnavailable,
    Transcript,
    TtsError,
    Word,
    resample,
)

__all__ = [
    "MULAW_8K",
    "PCM_8K",
    "AudioChunk",
    "AudioEncoding",
    "AudioFormat",
    "FallbackStt",
    "FallbackTts",
    "Segmenter",
    "SegmenterSettings",
    "SpeechError",
    "SpeechToText",
    "SttConnectionError",
    "SttError",
    "SttProvider",
    "SttUnavailable",
    "TextToSpeech",
    "Transcript",
    "TtsError",
    "TtsProvider",
    "Utterance",
    "Word",
    "resample",
    "stream",
    "stt_from_settings",
    "tts_from_settings",
]
