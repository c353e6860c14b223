"""``holdslayer analyze FILE.wav``: what the audio detector hears in a recording.

The file is heard the way a call would carry it: any WAV the app reads (PCM 8/16/24/32-bit,
float, mu-law, A-law; any rate; channels averaged) is resampled to 8 kHz, passed through
G.711 mu-law and streamed into the detector in 20 ms frames, the whole file taken as a wait
on hold. The output is the class of every analysis window and every decision (TONE_DETECTED,
HOLD_DETECTED, HUMAN_SUSPECTED, HUMAN_RETRACTED, HUMAN_DETECTED): a readable timeline, or with
``--json`` one JSON object per line::

    {"t": 3.0, "class": "MUSIC", "confidence": 0.82}
    {"t": 45.5, "event": "HUMAN_DETECTED", "confidence": 0.8, "evidence": {...}}

``t`` is the stream time in seconds at which the detector gave the result (a window's end, the
moment of a decision). A recording cannot reply, so HUMAN_DETECTED rests on the passive
evidence here (the transcript is not read either).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from app.audio.tones import ToneEvent
from app.audio.types import (
    AudioClass,
    Classification,
    Decision,
    DetectorOutput,
    HoldDetected,
    HumanDetected,
    HumanRetracted,
    HumanSuspected,
)
from app.jsonable import jsonable
from app.media.g711 import ulaw_decode, ulaw_encode
from app.media.wavfile import WavError, read_wav, resample

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms: one RTP packet
DETECTORS = ("simple", "pipeline")


class Detector(Protocol):
    def push(self, pcm: np.ndarray, t: float) -> list[DetectorOutput | ToneEvent]: ...

    def reset_for_hold(self) -> None: ...


def default_detector() -> str:
    """The full pipeline once it imports, else the simple detector."""
    try:
        import app.audio.pipeline  # noqa: F401
    except ImportError:
        return "simple"
    return "pipeline"


def make_detector(name: str) -> Detector:
    if name == "pipeline":
        from app.audio.pipeline import AudioPipeline

        return AudioPipeline()
    if name == "simple":
        from app.audio.simple_detector import SimpleHoldDetector

        return SimpleHoldDetector()
    raise ValueError(f"unknown detector {name!r} (choose from {', '.join(DETECTORS)})")


class AnalyzeError(Exception):
    """The file cannot be analysed (missing, not a WAV file, no audio)."""


@dataclass(frozen=True)
class CallAudio:
    pcm: np.ndarray  # int16 at 8 kHz, through mu-law
    source_rate: int

    @property
    def duration(self) -> float:
        return len(self.pcm) / SAMPLE_RATE


@dataclass(frozen=True)
class Analysis:
    windows: list[Classification]
    decisions: list[Decision | ToneEvent]
    outputs: list[DetectorOutput | ToneEvent]  # everything, in the order the detector said it


@dataclass(frozen=True)
class Span:
    """Consecutive windows of one class, on a timeline that tiles the file."""

    t_start: float
    t_end: float
    audio_class: AudioClass
    confidence: float  # mean over the windows
    windows: int


def load_call_audio(path: str | Path) -> CallAudio:
    """Read a WAV file as the far end of a call would sound: 8 kHz, through G.711 mu-law."""
    path = Path(path)
    if not path.is_file():
        raise AnalyzeError(f"{path}: no such file")
    try:
        audio = read_wav(path)
    except WavError as exc:
        raise AnalyzeError(f"{exc} (a WAV file is needed)") from None
    except OSError as exc:
        raise AnalyzeError(f"{path}: {exc.strerror or exc}") from None
    if len(audio.pcm) == 0:
        raise AnalyzeError(f"{path}: the file holds no audio")
    pcm = resample(audio.pcm, audio.sample_rate, SAMPLE_RATE)
    return CallAudio(ulaw_decode(ulaw_encode(pcm)), audio.sample_rate)


def analyze_pcm(pcm: np.ndarray, detector: Detector) -> Analysis:
    """Stream 8 kHz int16 into ``detector`` in 20 ms frames, from stream time 0."""
    detector.reset_for_hold()
    outputs: list[DetectorOutput | ToneEvent] = []
    for start in range(0, len(pcm), FRAME_SAMPLES):
        outputs.extend(detector.push(pcm[start : start + FRAME_SAMPLES], start / SAMPLE_RATE))
    windows = [o for o in outputs if isinstance(o, Classification)]
    decisions = [o for o in outputs if not isinstance(o, Classification)]
    return Analysis(windows, decisions, outputs)


def timeline(windows: list[Classification]) -> list[Span]:
    """Merge consecutive windows of one class. Windows overlap, so each stands for the hop
    around its centre; the first span starts at the first window, the last ends with the last."""
    if not windows:
        return []
    centres = np.array([(w.t_start + w.t_end) / 2 for w in windows])
    hop = float(np.median(np.diff(centres))) if len(windows) > 1 else windows[0].t_end - windows[0].t_start
    spans: list[Span] = []
    run: list[Classification] = []
    for window in windows:
        if run and window.audio_class != run[-1].audio_class:
            spans.append(_span(run, spans, hop))
            run = []
        run.append(window)
    spans.append(_span(run, spans, hop))
    last = spans[-1]
    spans[-1] = Span(last.t_start, max(last.t_end, windows[-1].t_end), last.audio_class, last.confidence, last.windows)
    return spans


def _span(run: list[Classification], previous: list[Span], hop: float) -> Span:
    start = previous[-1].t_end if previous else run[0].t_start
    end = (run[-1].t_start + run[-1].t_end) / 2 + hop / 2
    confidence = float(np.mean([w.confidence for w in run]))
    return Span(start, end, run[0].audio_class, confidence, len(run))


def format_text(path: Path, audio: CallAudio, analysis: Analysis, detector: str) -> str:
    lines = [
        f"{path}: {audio.duration:.1f} s ({audio.source_rate} Hz, heard at {SAMPLE_RATE} Hz through G.711 mu-law), "
        f"detector {detector}, {len(analysis.windows)} windows"
    ]
    for span in timeline(analysis.windows):
        lines.append(
            f"{span.t_start:8.2f} - {span.t_end:8.2f} s  {span.audio_class.value:<11} "
            f"{span.confidence:.2f}  ({span.windows} window{'s' if span.windows != 1 else ''})"
        )
    for decision in analysis.decisions:
        t, evidence = _decision_t(decision), _evidence(decision)
        lines.append(f"{_event_name(decision)} at {t:.2f} s, confidence {decision.confidence:.2f}{_brief(evidence)}")
    if not any(isinstance(d, HumanDetected) for d in analysis.decisions):
        lines.append("HUMAN_DETECTED: none")
    return "\n".join(lines)


def json_lines(analysis: Analysis) -> Iterator[str]:
    for output in analysis.outputs:
        if isinstance(output, Classification):
            record: dict[str, Any] = {
                "t": round(output.t_end, 3),
                "class": output.audio_class.value,
                "confidence": round(float(output.confidence), 3),
            }
        else:
            record = {
                "t": round(_decision_t(output), 3),
                "event": _event_name(output),
                "confidence": round(float(output.confidence), 3),
                "evidence": jsonable(_evidence(output)),
            }
        yield json.dumps(record)


def run_analyze(
    path: str | Path,
    *,
    as_json: bool = False,
    detector: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The command: 0 when the file was analysed, 2 when it could not be read."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    name = detector or default_detector()
    try:
        audio = load_call_audio(path)
    except AnalyzeError as exc:
        print(f"holdslayer analyze: {exc}", file=stderr)
        return 2
    analysis = analyze_pcm(audio.pcm, make_detector(name))
    if as_json:
        for line in json_lines(analysis):
            print(line, file=stdout)
    else:
        print(format_text(Path(path), audio, analysis, name), file=stdout)
    return 0




_EVENT_NAMES: dict[type, str] = {
    ToneEvent: "TONE_DETECTED",
    HoldDetected: "HOLD_DETECTED",
    HumanSuspected: "HUMAN_SUSPECTED",
    HumanRetracted: "HUMAN_RETRACTED",
    HumanDetected: "HUMAN_DETECTED",
}


def _event_name(decision: Decision | ToneEvent) -> str:
    return _EVENT_NAMES[type(decision)]


def _decision_t(decision: Decision | ToneEvent) -> float:
    """When the decision was taken (a tone's own ``t`` is when it began)."""
    return decision.decided_at if isinstance(decision, ToneEvent) else decision.t


def _evidence(decision: Decision | ToneEvent) -> dict[str, Any]:
    if isinstance(decision, ToneEvent):
        return {"kind": decision.kind, "started_t": decision.t, "region": decision.region, **decision.detail}
    if isinstance(decision, HumanRetracted):
        return {"suspected_t": decision.suspected_t, **decision.evidence}
    return decision.evidence


def _brief(evidence: dict[str, Any]) -> str:
    for key in ("rule", "kind", "why"):
        if evidence.get(key):
            return f", {key} {evidence[key]}"
    return ""
