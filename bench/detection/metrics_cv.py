"""Scores of the two-stage live-person decision, per fold: pure functions of what the detector said.

A session's decisions are ``Event``s in stream order: ``suspected`` (HumanSuspected: the app
greets the possible person), ``detected`` (HumanDetected: the user's phone rings) and
``retracted`` (HumanRetracted: a suspicion withdrawn). ``onset`` is the first sample of the
person's first word (None in a pure hold).

- **greet latency**: first ``suspected`` at or after the onset, minus the onset;
- **ring latency**: first ``detected`` at or after the onset, minus the onset; median and p90
  over the persons rung;
- **never rung**: persons with no ``detected`` within ``RING_WITHIN`` (8 s) of their first word;
- **false rings**: every ``detected`` before the onset of a pickup or in a pure hold (the runner
  resumes the wait 30 s after each), per hour of hold (pickups up to the onset, pure holds whole);
- **suspicions**: every ``suspected`` before the onset or in a pure hold: greeting a recording
  costs little, but it is counted, per hour of hold;
- **retractions**: every ``retracted``; ``retractions_after_onset`` are those made while a person
  was talking (a real person's suspicion withdrawn: bad);
- **CPU**: process seconds inside ``push()`` per second of audio (in % of one core);
- **window classes**: as ``metrics.py`` (truth: the label covering most of a window); F1 of
  LIVE_HUMAN and the macro F1 over the classes present.

``fold_score`` scores one fold; ``aggregate`` gives the mean over folds and the worst fold
value of every score (the highest where higher is worse, the lowest for F1); ``compare`` gives
per-fold deltas against an earlier run and whether the worst fold got worse.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

RING_WITHIN = 8.0
EventKind = Literal["suspected", "detected", "retracted", "said", "said_end", "stopped", "hangup"]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    t: float
    suspected_t: float | None = None  # for retractions
    rule: str | None = None


@dataclass(frozen=True)
class CvResult:
    """What a detector said about one session, next to its truth."""

    session_id: str
    fold: str
    kind: str  # "pickup" | "pure_hold"
    duration: float
    human_onset: float | None
    events: tuple[Event, ...]
    cpu_seconds: float = 0.0
    windows: dict[str, int] = field(default_factory=dict)  # "TRUTH>PREDICTED" -> count
    meta: dict[str, Any] = field(default_factory=dict)


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def _first(result: CvResult, kind: EventKind) -> Event | None:
    onset = result.human_onset
    if onset is None:
        return None
    return next((e for e in result.events if e.kind == kind and e.t >= onset), None)


def greet_latency(result: CvResult) -> float | None:
    first = _first(result, "suspected")
    return None if first is None else first.t - result.human_onset  # type: ignore[operator]


def ring_latency(result: CvResult) -> float | None:
    first = _first(result, "detected")
    return None if first is None else first.t - result.human_onset  # type: ignore[operator]


def never_rung(result: CvResult, within: float = RING_WITHIN) -> bool:
    latency = ring_latency(result)
    return latency is None or latency > within


def lost(result: CvResult) -> bool:
    """The person hung up before the user was rung (closed loop only)."""
    hangup = next((e.t for e in result.events if e.kind == "hangup"), None)
    if hangup is None or result.human_onset is None:
        return False
    ring = _first(result, "detected")
    return ring is None or ring.t > hangup


def opener_latency(result: CvResult) -> float | None:
    """From the first word to the first opener (greeting) we said after it (closed loop only)."""
    if result.human_onset is None:
        return None
    said = next((e for e in result.events if e.kind == "said" and e.rule == "greeting" and e.t >= result.human_onset), None)
    return None if said is None else said.t - result.human_onset


def lines_said_in_hold(result: CvResult) -> int:
    """Lines we said to the hold (before the first word, or in a pure hold): greeting recordings."""
    return len(_before_person(result, "said"))


def _before_person(result: CvResult, kind: EventKind) -> list[Event]:
    onset = result.human_onset
    return [e for e in result.events if e.kind == kind and (onset is None or e.t < onset)]


def false_rings(result: CvResult) -> list[Event]:
    return _before_person(result, "detected")


def false_suspicions(result: CvResult) -> list[Event]:
    return _before_person(result, "suspected")


def retractions(result: CvResult) -> tuple[int, int]:
    """(all retractions, those made after the onset)."""
    all_ = [e for e in result.events if e.kind == "retracted"]
    onset = result.human_onset
    after = [e for e in all_ if onset is not None and e.t >= onset]
    return len(all_), len(after)


def hold_seconds(result: CvResult) -> float:
    return result.human_onset if result.human_onset is not None else result.duration


def class_f1(windows: Counter[str]) -> dict[str, float | None]:
    """F1 per truth class from "TRUTH>PREDICTED" counts."""
    truths = {key.split(">")[0] for key in windows}
    scores: dict[str, float | None] = {}
    for label in sorted(truths):
        tp = windows.get(f"{label}>{label}", 0)
        support = sum(n for k, n in windows.items() if k.split(">")[0] == label)
        predicted = sum(n for k, n in windows.items() if k.split(">")[1] == label)
        if not support or not predicted:
            scores[label] = 0.0 if support else None
            continue
        p, r = tp / predicted, tp / support
        scores[label] = 2 * p * r / (p + r) if p + r else 0.0
    return scores


# -- a fold -------------------------------------------------------------------------------------

# Every score of a fold, and which way is worse.
HIGHER_IS_WORSE = {
    "greet_latency_median": True,
    "greet_latency_p90": True,
    "ring_latency_median": True,
    "ring_latency_p90": True,
    "never_rung_percent": True,
    "false_rings_per_hour": True,
    "suspicions_per_hour": True,
    "rung_within_percent": False,
    "lost_percent": True,
    "opener_latency_median": True,
    "opener_latency_p90": True,
    "lines_per_hour": True,
    "retractions": True,
    "retractions_after_onset": True,
    "cpu_percent": True,
    "live_human_f1": False,
    "macro_f1": False,
}
# A change stays only if the worst fold does not get worse on these (beyond the tolerance).
RULE_TOLERANCE = {
    "never_rung_percent": 0.0,
    "false_rings_per_hour": 0.0,
    "ring_latency_p90": 0.05,
    "greet_latency_p90": 0.05,
    "retractions_after_onset": 0.0,
}


def fold_score(results: Iterable[CvResult]) -> dict[str, Any]:
    results = list(results)
    pickups = [r for r in results if r.human_onset is not None]
    holds = [r for r in results if r.human_onset is None]
    greet = [x for x in (greet_latency(r) for r in pickups) if x is not None]
    ring = [x for x in (ring_latency(r) for r in pickups) if x is not None]
    hold_hours = sum(hold_seconds(r) for r in results) / 3600.0
    audio = sum(r.duration for r in results)
    rings = sum(len(false_rings(r)) for r in results)
    suspicions = sum(len(false_suspicions(r)) for r in results)
    retracted = [retractions(r) for r in results]
    opener = [x for x in (opener_latency(r) for r in pickups) if x is not None]
    interactive = any(r.meta.get("mode") == "interactive" for r in results)
    lines = sum(lines_said_in_hold(r) for r in results)
    windows: Counter[str] = Counter()
    for r in results:
        windows.update(r.windows)
    f1 = class_f1(windows)
    present = [v for v in f1.values() if v is not None]
    return {
        "sessions": len(results),
        "pickups": len(pickups),
        "pure_holds": len(holds),
        "audio_hours": round(audio / 3600.0, 4),
        "hold_hours": round(hold_hours, 4),
        "greeted": len(greet),
        "greet_latency_median": percentile(greet, 50),
        "greet_latency_p90": percentile(greet, 90),
        "rung": len(ring),
        "ring_latency_median": percentile(ring, 50),
        "ring_latency_p90": percentile(ring, 90),
        "never_rung": sum(never_rung(r) for r in pickups),
        "never_rung_percent": 100.0 * sum(never_rung(r) for r in pickups) / len(pickups) if pickups else None,
        "rung_within_percent": 100.0 - 100.0 * sum(never_rung(r) for r in pickups) / len(pickups) if pickups else None,
        "lost": sum(lost(r) for r in pickups) if interactive else None,
        "lost_percent": 100.0 * sum(lost(r) for r in pickups) / len(pickups) if pickups and interactive else None,
        "opener_latency_median": percentile(opener, 50),
        "opener_latency_p90": percentile(opener, 90),
        "lines_said_in_hold": lines if interactive else None,
        "lines_per_hour": lines / hold_hours if hold_hours and interactive else None,
        "false_rings": rings,
        "false_rings_per_hour": rings / hold_hours if hold_hours else None,
        "pickups_rung_before_onset": sum(bool(false_rings(r)) for r in pickups),
        "suspicions": suspicions,
        "suspicions_per_hour": suspicions / hold_hours if hold_hours else None,
        "retractions": sum(a for a, _ in retracted),
        "retractions_after_onset": sum(b for _, b in retracted),
        "cpu_percent": 100.0 * sum(r.cpu_seconds for r in results) / audio if audio else None,
        "live_human_f1": f1.get("LIVE_HUMAN"),
        "macro_f1": float(np.mean(present)) if present else None,
        "class_f1": f1,
    }


def aggregate(folds: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean over folds and worst fold of every score in ``HIGHER_IS_WORSE`` (None: unmeasured)."""
    mean: dict[str, Any] = {}
    worst: dict[str, Any] = {}
    worst_fold: dict[str, str | None] = {}
    for key, higher_is_worse in HIGHER_IS_WORSE.items():
        values = {name: score[key] for name, score in folds.items() if score.get(key) is not None}
        if not values:
            mean[key] = worst[key] = worst_fold[key] = None
            continue
        mean[key] = float(np.mean(list(values.values())))
        pick = max if higher_is_worse else min
        worst_fold[key] = pick(values, key=lambda name: values[name])
        worst[key] = values[worst_fold[key]]
    return {"mean": mean, "worst": worst, "worst_fold": worst_fold}


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Per-fold deltas (new - old) and, for the rule's scores, whether the worst fold got worse."""
    deltas: dict[str, dict[str, float | None]] = {}
    for fold, score in new.get("folds", {}).items():
        before = old.get("folds", {}).get(fold)
        if before is None:
            continue
        deltas[fold] = {k: _delta(before.get(k), score.get(k)) for k in HIGHER_IS_WORSE}
    worst_old, worst_new = old.get("worst", {}), new.get("worst", {})
    verdicts = {}
    for key, tolerance in RULE_TOLERANCE.items():
        a, b = worst_old.get(key), worst_new.get(key)
        if a is None and b is None:
            verdict = "n/a"
        elif a is None:
            verdict = "new"
        elif b is None:
            verdict = "worse" if HIGHER_IS_WORSE[key] is False or key.endswith("latency_p90") else "n/a"
        else:
            change = (b - a) if HIGHER_IS_WORSE[key] else (a - b)
            verdict = "worse" if change > tolerance + 1e-9 else ("better" if change < -1e-9 else "same")
        verdicts[key] = {"old": a, "new": b, "verdict": verdict}
    same_folds = set(old.get("folds", {})) == set(new.get("folds", {}))
    return {
        "deltas": deltas,
        "worst": verdicts,
        "worst_got_worse": any(v["verdict"] == "worse" for v in verdicts.values()),
        "same_folds": same_folds and old.get("plan", {}).get("fingerprint") == new.get("plan", {}).get("fingerprint"),
    }


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a
