"""Cut the far end's audio into utterances with the project's VAD, for batch recognisers.

Local Whisper and OpenAI transcribe one utterance at a time; this decides where utterances
start and end. Pure logic over int16 8 kHz PCM (the VAD's model file is its only I/O).

Per 20 ms frame the VAD (``app.audio.vad.Vad``) gives Silero's latest speech probability.
An utterance opens when the probability reaches ``start_threshold`` for ``start_frames``
frames in a row; a frame then counts as speech while the probability stays at or above
``end_threshold`` (hysteresis: syllable dips do not end it). It closes after ``hangover``
seconds without speech, keeping ``pre_roll`` seconds before its start (Silero reacts a step
or two late and Whisper wants the onset) and ``post_roll`` after its last speech frame.
Speech longer than ``max_segment`` is cut at the quietest frame of its last ``cut_search``
seconds, and the rest carries on as the next utterance. Utterances with less than
``min_speech`` seconds of speech frames (clicks, a breath) are dropped.

Audio is assumed contiguous within an utterance (the jitter buffer conceals lost packets), so an
utterance's times are its first frame's call time plus sample offsets.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from app.audio.vad import FRAME_SAMPLES, SAMPLE_RATE, Vad, VadFrame

FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class SegmenterSettings:
    start_threshold: float = 0.5
    end_threshold: float = 0.35
    start_frames: int = 2
    hangover: float = 0.6
    pre_roll: float = 0.3
    post_roll: float = 0.2
    min_speech: float = 0.25
    max_segment: float = 20.0
    cut_search: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.end_threshold <= self.start_threshold <= 1.0:
            raise ValueError("need 0 < end_threshold <= start_threshold <= 1")
        if self.post_roll > self.hangover:
            raise ValueError("post_roll cannot exceed hangover (that audio is not kept)")
        if self.cut_search >= self.max_segment:
            raise ValueError("cut_search must be shorter than max_segment")


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech: int16 8 kHz ``pcm`` whose first sample is at call time ``t_start``.

    ``forced_cut``: it ended because it reached ``max_segment``, not at a pause.
    """

    pcm: np.ndarray
    t_start: float
    forced_cut: bool = False

    @property
    def t_end(self) -> float:
        return self.t_start + len(self.pcm) / SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.pcm) / SAMPLE_RATE


@dataclass
class _Frame:
    pcm: np.ndarray
    t: float
    speech: bool
    rms: float


class Segmenter:
    """Streaming: ``push`` audio with its call time, get the utterances it completes."""

    def __init__(self, settings: SegmenterSettings = SegmenterSettings(), vad: Vad | None = None) -> None:
        self.settings = settings
        self._vad = vad if vad is not None else Vad()
        self._pending = np.zeros(0, dtype=np.int16)  # samples not yet a whole frame
        self._pending_t = 0.0
        self._pre_roll: deque[_Frame] = deque(maxlen=max(1, round(settings.pre_roll / FRAME_SECONDS)))
        self._opening = 0  # consecutive frames at or above start_threshold while closed
        self._open: list[_Frame] | None = None  # frames of the utterance in progress
        self._silent_frames = 0  # frames since the open utterance's last speech frame

    @property
    def in_speech(self) -> bool:
        return self._open is not None

    def push(self, pcm: np.ndarray, t: float) -> list[Utterance]:
        """Feed int16 8 kHz samples whose first is at call time ``t``; any length."""
        pcm = np.asarray(pcm, dtype=np.int16)
        if len(self._pending) == 0:
            self._pending_t = t
        self._pending = np.concatenate([self._pending, pcm])
        done: list[Utterance] = []
        whole = len(self._pending) // FRAME_SAMPLES * FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            frame = self._pending[start : start + FRAME_SAMPLES]
            frame_t = self._pending_t + start / SAMPLE_RATE
            done.extend(self.push_frame(frame, self._vad.push(frame, frame_t)))
        self._pending_t += whole / SAMPLE_RATE
        self._pending = self._pending[whole:]
        return done

    def push_frame(self, pcm160: np.ndarray, vad: VadFrame) -> list[Utterance]:
        """One 20 ms frame whose VAD verdict the caller already has (a pipeline that runs the VAD)."""
        s = self.settings
        rms = float(np.sqrt(np.mean(np.square(pcm160, dtype=np.float64))))
        if self._open is None:
            self._opening = self._opening + 1 if vad.speech_prob >= s.start_threshold else 0
            frame = _Frame(np.array(pcm160, dtype=np.int16), vad.t, self._opening > 0, rms)
            self._pre_roll.append(frame)
            if self._opening >= s.start_frames:
                self._open = list(self._pre_roll)
                self._pre_roll.clear()
                self._silent_frames = 0
            return []
        speech = vad.speech_prob >= s.end_threshold
        self._open.append(_Frame(np.array(pcm160, dtype=np.int16), vad.t, speech, rms))
        self._silent_frames = 0 if speech else self._silent_frames + 1
        if self._silent_frames * FRAME_SECONDS >= s.hangover:
            return self._close()
        if len(self._open) * FRAME_SECONDS >= s.max_segment:
            return self._cut()
        return []

    def flush(self) -> list[Utterance]:
        """End of audio: the utterance in progress, if any (a partial frame is dropped)."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._opening = 0
        self._pre_roll.clear()
        return self._close() if self._open is not None else []

    def reset(self) -> None:
        """Forget everything, the VAD's state included (a new segment of the call)."""
        self.flush()
        self._vad.reset()

    def _close(self) -> list[Utterance]:
        assert self._open is not None
        keep_silent = round(self.settings.post_roll / FRAME_SECONDS)
        end = len(self._open) - max(0, self._silent_frames - keep_silent)
        frames = self._open[:end]
        self._open = None
        self._opening = 0
        self._silent_frames = 0
        return self._emit(frames, forced_cut=False)

    def _cut(self) -> list[Utterance]:
        assert self._open is not None
        search = round(self.settings.cut_search / FRAME_SECONDS)
        tail = self._open[-search:]
        cut = len(self._open) - search + int(np.argmin([frame.rms for frame in tail]))
        frames, rest = self._open[:cut], self._open[cut:]
        self._open = rest
        silent = 0
        for frame in reversed(rest):
            if frame.speech:
                break
            silent += 1
        self._silent_frames = silent
        return self._emit(frames, forced_cut=True)

    def _emit(self, frames: list[_Frame], *, forced_cut: bool) -> list[Utterance]:
        speech_seconds = sum(frame.speech for frame in frames) * FRAME_SECONDS
        if not frames or speech_seconds < self.settings.min_speech:
            return []
        return [Utterance(np.concatenate([f.pcm for f in frames]), frames[0].t, forced_cut)]
