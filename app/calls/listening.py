"""What the company said, as text: the speech-to-text stream of one call.

The session feeds ``CallListener.push`` the same far-end frames its detector gets (call time
``t`` of the first sample); a reader task collects the final transcripts, in order, with their
call times, and tells the session (``on_transcript``) so that waits on them wake up. Only calls
whose flow lets the navigator choose have one (see ``flow_needs_listener``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np

from app.config import Settings
from app.ivr.flow import CallFlow, StepType
from app.speech import SpeechToText, SttError, Transcript, stt_from_settings

log = logging.getLogger(__name__)


def flow_needs_listener(flow: CallFlow | None) -> bool:
    """A LISTEN step without digits is answered by the navigator, from what was heard; a learned
    step is checked against what was heard before it is replayed."""
    return flow is not None and any(
        step.type is StepType.LISTEN and (not step.dtmf or "expected_transcript" in step.metadata)
        for step in flow.steps
    )


def stt_for_call(settings: Settings) -> SpeechToText:
    """The configured recogniser; the local Whisper model is shared by every call of the process."""
    return stt_from_settings(
        settings.stt_provider,
        deepgram_api_key=_secret(settings.deepgram_api_key),
        openai_api_key=_secret(settings.openai_api_key),
        openai_base_url=settings.openai_base_url,
        whisper=whisper_settings(settings),
        timeout=settings.stt_timeout,
    )


def whisper_settings(settings: Settings):
    from app.speech.whisper_local import WhisperSettings

    return WhisperSettings(model_size=settings.whisper_model_size, model_path=settings.whisper_model_path)


async def preload_local_model(settings: Settings) -> None:
    """Load Whisper now (a few seconds, in a thread) so the first menu is not answered late."""
    from app.speech.whisper_local import WhisperRecognizer

    await asyncio.to_thread(WhisperRecognizer.shared(whisper_settings(settings)).load)


class CallListener:
    """Owns one call's STT stream: frames in, final transcripts (with call times) out."""

    def __init__(
        self, stt: SpeechToText, on_transcript: Callable[[Transcript], None], settings: Settings | None = None
    ) -> None:
        self._stt = stt
        self._on_transcript = on_transcript
        self.finals: list[Transcript] = []
        self.error: SttError | None = None
        self._reader = asyncio.create_task(self._read(), name=f"stt-{stt.provider}-reader")
        self._warm_up = (
            asyncio.create_task(preload_local_model(settings or Settings()), name="stt-preload")
            if stt.provider == "local"
            else None
        )

    @classmethod
    async def open(cls, settings: Settings, on_transcript: Callable[[Transcript], None]) -> CallListener:
        # Building the local recogniser creates the VAD session: keep that off the event loop.
        stt = await asyncio.to_thread(stt_for_call, settings)
        return cls(stt, on_transcript, settings)

    @property
    def provider(self) -> str:
        return self._stt.provider

    def push(self, pcm: np.ndarray, t: float) -> None:
        self._stt.push(pcm, t)

    def transcripts_since(self, t: float) -> list[Transcript]:
        """Final transcripts of speech that was still going on at call time ``t`` or began after it."""
        return [transcript for transcript in self.finals if transcript.t_end > t]

    def text_since(self, t: float) -> str:
        return " ".join(transcript.text for transcript in self.transcripts_since(t)).strip()

    async def close(self) -> None:
        for task in (self._reader, self._warm_up):
            if task is not None:
                task.cancel()
        await self._stt.close()
        await asyncio.gather(*(t for t in (self._reader, self._warm_up) if t is not None), return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for transcript in self._stt.results():
                if transcript.is_final:
                    self.finals.append(transcript)
                    self._on_transcript(transcript)
        except SttError as error:
            # The call goes on without transcripts: a navigated LISTEN then ends at its timeout.
            log.warning("speech-to-text failed: %s", error)
            self.error = error


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None
