"""Text-to-speech nobody waits for any more stops (app/speech/tts.py): the handoff's lines,
rendered ahead as a hold begins, do not hold up a process that stops. A fake voice renders one
line at a time (as Piper does), sentence by sentence, in real time (sleeps: no CPU needed)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from app.calls.handoff import Handoff, HandoffPolicy
from app.speech.tts import CachedTts, FallbackTts, stop_if_cancelled
from app.speech.types import TtsError

SENTENCE_SECONDS = 0.1
SENTENCES = 10  # a line: 1 s; the handoff's four: 4 s


class SlowVoice(CachedTts):
    provider = "slow"

    def __init__(self) -> None:
        super().__init__()
        self._voice = threading.Lock()  # one render at a time
        self.begun: list[str] = []
        self.finished: list[str] = []

    def render(self, text: str, cancel: threading.Event | None = None) -> np.ndarray:
        with self._voice:
            stop_if_cancelled(cancel)
            self.begun.append(text)
            for _ in range(SENTENCES):
                time.sleep(SENTENCE_SECONDS)
                stop_if_cancelled(cancel)
            self.finished.append(text)
            return np.zeros(800, dtype=np.int16)


class VoiceSpeaker:
    def __init__(self, voice) -> None:
        self.voice = voice

    async def speech(self, text: str) -> np.ndarray:
        return await self.voice.synthesize_async(text)

    async def play(self, pcm: np.ndarray) -> bool:
        return True

    def stop(self) -> None:
        pass


def _stop_while_preparing(voice) -> float:
    """A process whose call ends (its tasks cancelled) while the handoff's lines are rendered:
    seconds from the cancellation to the end of ``asyncio.run``, which waits for its worker
    threads."""
    cancelled_at = 0.0

    async def main() -> None:
        nonlocal cancelled_at
        handoff = Handoff(HandoffPolicy(), VoiceSpeaker(voice), hearing=None, now=lambda: 0.0, emit=lambda *a, **k: None)
        preparing = asyncio.ensure_future(handoff.prepare())  # as the hold step does
        await asyncio.sleep(2.5 * SENTENCE_SECONDS)  # the first line is under way, three wait
        preparing.cancel()
        cancelled_at = time.monotonic()
        await asyncio.gather(preparing, return_exceptions=True)

    asyncio.run(main())
    return time.monotonic() - cancelled_at


def test_a_stop_during_the_handoffs_pre_render_does_not_wait_for_its_lines():
    voice = SlowVoice()
    took = _stop_while_preparing(voice)
    # The line under way stops at its next sentence; the three behind it never begin. Before,
    # all four were rendered first: 4 s.
    assert took < 5 * SENTENCE_SECONDS, took
    assert len(voice.begun) == 1 and voice.finished == []


def test_a_line_given_up_is_rendered_whole_when_it_is_asked_for_again():
    voice = SlowVoice()
    _stop_while_preparing(voice)
    line = voice.begun[0]
    pcm = asyncio.run(voice.synthesize_async(line))
    assert len(pcm) == 800 and voice.finished == [line]


def test_a_cancelled_render_is_not_a_failure_of_the_voice():
    fallbacks = []

    def make_fallback():
        fallbacks.append(SlowVoice())
        return fallbacks[-1]

    voice = FallbackTts(SlowVoice(), make_fallback)
    _stop_while_preparing(voice)
    assert fallbacks == [] and voice.fallback_reason is None and voice.provider == "slow"
    assert not issubclass(type(_cancelled_error()), TtsError)


def _cancelled_error() -> Exception:
    cancel = threading.Event()
    cancel.set()
    try:
        stop_if_cancelled(cancel)
    except Exception as error:  # noqa: BLE001 - what it raises is the point
        return error
    raise AssertionError("a set cancel did not stop the render")
