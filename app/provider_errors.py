"""Failures of outside providers (speech-to-text, text-to-speech, the LLM navigator), counted
over the whole process by provider and service, for ``/metrics`` and ``/api/health``.

A provider's failure is counted once, where its error is made (``SttError``, ``TtsError``,
``NavigatorUnavailable``): whoever catches it (a fallback, a call going on deaf) need not
remember to. Counts only grow; they are the process's, shared by every app in it.
"""

from __future__ import annotations

from collections import Counter

_counts: Counter[tuple[str, str]] = Counter()


def count(provider: str, service: str) -> None:
    """One failure of ``provider`` (deepgram, openai, anthropic, ...) doing ``service`` (stt, tts, llm)."""
    _counts[(provider, service)] += 1


def snapshot() -> dict[tuple[str, str], int]:
    """(provider, service) -> failures since the process started."""
    return dict(_counts)
