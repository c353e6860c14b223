"""Scores of a detector on labelled sessions: pure functions of what it said and of the truth.

Windows
    A window's truth is the label covering most of ``[t_start, t_end)``; per class, precision,
    recall and F1 compare it with the detector's class for that window. The detector's
    SPEECH (source not known yet) is no class of the truth: it only costs recall.
Pickups
    The first human decision of a pickup session settles it: before the onset it is a false
    transfer (the user would be bridged to hold music), within ``max_latency`` after the onset
    a hit, later ``late``, and no decision at all ``none``. The miss rate counts every pickup
    that is not a hit. Latency (decision - onset) is summarised over the sessions decided
    after the onset (hits and late ones).
False transfers
    Every human decision before the onset of a pickup and every one in a pure hold (the runner
    resumes the wait 30 s after each), per hour of hold audio scanned: pickups up to the
    onset, pure holds whole. Each is attributed to the segment under the decision and
    to the announcement heard within ``ANNOUNCEMENT_LOOKBACK`` seconds before it, if any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from app.audio.types import AudioClass
from bench.detection.dataset import LABELS, Segment

MAX_PICKUP_LATENCY = 5.0
ANNOUNCEMENT_LOOKBACK = 5.0
Outcome = Literal["hit", "late", "none", "false_transfer"]


@dataclass(frozen=True)
class Window:
    t_start: float
    t_end: float
    predicted: AudioClass
    confidence: float


@dataclass(frozen=True)
class Decision:
    t: float
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionResult:
    """What a detector said about one session, next to the session's truth."""

    session_id: str
    kind: str  # "pickup" | "pure_hold" | "tones"
    duration: float
    segments: tuple[Segment, ...]
    human_onset: float | None
    windows: tuple[Window, ...]
    decisions: tuple[Decision, ...]  # every HumanDetected, in order
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassScore:
    support: int  # windows whose truth is the class
    predicted: int  # windows the detector gave the class
    true_positives: int

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.support if self.support else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "f1": self.f1}


@dataclass(frozen=True)
class PickupOutcome:
    session_id: str
    outcome: Outcome
    human_onset: float
    decision_t: float | None
    latency: float | None  # decision - onset, when decided after the onset
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FalseTransfer:
    session_id: str
    t: float
    label: str  # truth under the decision
    source: str
    announcement: str | None  # heard within ANNOUNCEMENT_LOOKBACK s before the decision
    rule: str | None


@dataclass(frozen=True)
class Summary:
    sessions: dict[str, int]
    audio_hours: float
    hold_hours: float
    class_scores: dict[str, ClassScore]
    confusion: dict[str, dict[str, int]]
    pickups: list[PickupOutcome]
    latency_median: float | None
    latency_p90: float | None
    miss_rate: float | None
    false_transfers: list[FalseTransfer]
    false_transfers_per_hour: float | None
    announcements: dict[str, dict[str, int]]  # name -> plays in hold audio, false transfers on it

    @property
    def false_transfers_on_announcements(self) -> int:
        return sum(1 for f in self.false_transfers if f.announcement is not None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "audio_hours": self.audio_hours,
            "hold_hours": self.hold_hours,
            "class_scores": {name: score.as_dict() for name, score in self.class_scores.items()},
            "confusion": self.confusion,
            "latency_median": self.latency_median,
            "latency_p90": self.latency_p90,
            "miss_rate": self.miss_rate,
            "outcomes": dict(Counter(p.outcome for p in self.pickups)),
            "false_transfers_per_hour": self.false_transfers_per_hour,
            "false_transfers_on_announcements": self.false_transfers_on_announcements,
            "false_transfers": [asdict(f) for f in self.false_transfers],
            "announcements": self.announcements,
            "pickups": [asdict(p) for p in self.pickups],
        }


# -- windows ------------------------------------------------------------------------------------


def window_truth(segments: Sequence[Segment], t_start: float, t_end: float) -> AudioClass | None:
    """The label covering most of the window (None when no segment overlaps it)."""
    cover: dict[AudioClass, float] = {}
    for segment in segments:
        overlap = min(segment.t_end, t_end) - max(segment.t_start, t_start)
        if overlap > 0:
            cover[segment.label] = cover.get(segment.label, 0.0) + overlap
    if not cover:
        return None
    return max(cover, key=lambda label: (cover[label], -LABELS.index(label)))


def labelled_windows(result: SessionResult) -> list[tuple[AudioClass, AudioClass]]:
    """(truth, predicted) for every window that overlaps the session."""
    pairs = []
    for window in result.windows:
        truth = window_truth(result.segments, window.t_start, window.t_end)
        if truth is not None:
            pairs.append((truth, window.predicted))
    return pairs


def class_scores(pairs: Iterable[tuple[AudioClass, AudioClass]]) -> dict[str, ClassScore]:
    counts = Counter(pairs)
    scores = {}
    for label in LABELS:
        support = sum(n for (truth, _), n in counts.items() if truth == label)
        predicted = sum(n for (_, guess), n in counts.items() if guess == label)
        scores[label.value] = ClassScore(support, predicted, counts[(label, label)])
    return scores


def confusion(pairs: Iterable[tuple[AudioClass, AudioClass]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for truth, predicted in pairs:
        row = table.setdefault(truth.value, {})
        row[predicted.value] = row.get(predicted.value, 0) + 1
    return table


# -- pickups and false transfers ----------------------------------------------------------------


def pickup_outcome(result: SessionResult, max_latency: float = MAX_PICKUP_LATENCY) -> PickupOutcome:
    if result.human_onset is None:
        raise ValueError(f"{result.session_id} has no human onset")
    onset = result.human_onset
    first = result.decisions[0] if result.decisions else None
    outcome: Outcome
    latency = None
    if first is None:
        outcome = "none"
    elif first.t < onset:
        outcome = "false_transfer"
    else:
        latency = first.t - onset
        outcome = "hit" if latency <= max_latency else "late"
    return PickupOutcome(
        result.session_id, outcome, onset, None if first is None else first.t, latency, result.meta
    )


def false_transfers(result: SessionResult, lookback: float = ANNOUNCEMENT_LOOKBACK) -> list[FalseTransfer]:
    if result.kind == "pickup":
        assert result.human_onset is not None
        false = [d for d in result.decisions if d.t < result.human_onset]
    elif result.kind == "pure_hold":
        false = list(result.decisions)
    else:
        return []
    return [_attribute(result, decision, lookback) for decision in false]


def _attribute(result: SessionResult, decision: Decision, lookback: float) -> FalseTransfer:
    under = _segment_at(result.segments, decision.t)
    announcements = [
        s
        for s in result.segments
        if s.label == AudioClass.IVR_PROMPT and s.t_start <= decision.t and s.t_end >= decision.t - lookback
    ]
    return FalseTransfer(
        session_id=result.session_id,
        t=decision.t,
        label=under.label.value if under else "",
        source=under.source if under else "",
        announcement=announcements[-1].source if announcements else None,
        rule=decision.evidence.get("rule"),
    )


def _segment_at(segments: Sequence[Segment], t: float) -> Segment | None:
    for segment in segments:
        if segment.t_start <= t < segment.t_end:
            return segment
    return segments[-1] if segments and t >= segments[-1].t_end else None


def hold_seconds(result: SessionResult) -> float:
    """Seconds of hold audio (no person yet) the detector listened to."""
    if result.kind == "pickup":
        assert result.human_onset is not None
        return result.human_onset
    return result.duration if result.kind == "pure_hold" else 0.0


def announcement_plays(result: SessionResult) -> Counter[str]:
    """Announcements heard in the hold part of a session."""
    if result.kind == "tones":
        return Counter()
    end = hold_seconds(result)
    return Counter(s.source for s in result.segments if s.label == AudioClass.IVR_PROMPT and s.t_start < end)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default); None for no values."""
    return float(np.percentile(values, q)) if len(values) else None


# -- everything ---------------------------------------------------------------------------------


def summarize(results: Iterable[SessionResult], max_latency: float = MAX_PICKUP_LATENCY) -> Summary:
    results = list(results)
    pairs = [pair for result in results for pair in labelled_windows(result)]
    pickups = [pickup_outcome(r, max_latency) for r in results if r.kind == "pickup"]
    latencies = [p.latency for p in pickups if p.latency is not None]
    false = [f for r in results for f in false_transfers(r)]
    hold_hours = sum(hold_seconds(r) for r in results) / 3600.0
    plays: Counter[str] = Counter()
    for result in results:
        plays.update(announcement_plays(result))
    on_announcement = Counter(f.announcement for f in false if f.announcement is not None)
    return Summary(
        sessions=dict(Counter(r.kind for r in results)),
        audio_hours=sum(r.duration for r in results) / 3600.0,
        hold_hours=hold_hours,
        class_scores=class_scores(pairs),
        confusion=confusion(pairs),
        pickups=pickups,
        latency_median=percentile(latencies, 50),
        latency_p90=percentile(latencies, 90),
        miss_rate=sum(p.outcome != "hit" for p in pickups) / len(pickups) if pickups else None,
        false_transfers=false,
        false_transfers_per_hour=len(false) / hold_hours if hold_hours else None,
        announcements={
            name: {"plays": plays[name], "false_transfers": on_announcement[name]}
            for name in sorted(set(plays) | set(on_announcement))
        },
    )


# -- acceptance ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    measured: str
    passed: bool | None  # None: not measured


def acceptance(summary: Summary, *, cpu_percent: float | None, dtmf: dict[str, Any] | None) -> list[Check]:
    """Issue 3's acceptance targets next to the measured values."""

    def check(name: str, target: str, value: float | None, limit: float, unit: str = "", scale: float = 1.0) -> Check:
        if value is None:
            return Check(name, target, "not measured", None)
        return Check(name, target, f"{value * scale:.3g}{unit}", value <= limit)

    on_announcements = summary.false_transfers_on_announcements
    checks = [
        check("pickup latency, median", "<= 1.0 s", summary.latency_median, 1.0, " s"),
        check("pickup latency, p90", "<= 2.0 s", summary.latency_p90, 2.0, " s"),
        check("miss rate", "<= 2%", summary.miss_rate, 0.02, "%", 100.0),
        check("false transfers per hour of hold", "<= 0.1", summary.false_transfers_per_hour, 0.1),
        Check("false transfers on announcements", "0", str(on_announcements), on_announcements == 0),
        _dtmf_check(dtmf),
        check("CPU, always-on path", "<= 1% of a core", cpu_percent, 1.0, "%"),
    ]
    return checks


def _dtmf_check(dtmf: dict[str, Any] | None) -> Check:
    name, target = "DTMF", "16/16 digits, 0 false"
    if not dtmf:
        return Check(name, target, "not measured", None)
    decoded, false = dtmf.get("digits_decoded"), dtmf.get("false_digits")
    measured = f"{decoded}/16 digits, {false} false" if decoded is not None and false is not None else "see DTMF table"
    passed = dtmf.get("passed")
    if not isinstance(passed, bool):
        passed = decoded == 16 and false == 0 if decoded is not None and false is not None else None
    return Check(name, target, measured, passed)
