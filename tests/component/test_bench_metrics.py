"""Benchmark metrics on hand-made detector outputs, and the runner on a scripted detector and the quick set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.audio.types import AudioClass, Classification, DetectorOutput, HumanDetected
from bench.detection.dataset import Segment, Session
from bench.detection.metrics import (
    Decision,
    SessionResult,
    acceptance,
    class_scores,
    false_transfers,
    pickup_outcome,
    summarize,
    window_truth,
)
from bench.detection.run import main, run_session

M, P, H, S = AudioClass.MUSIC, AudioClass.IVR_PROMPT, AudioClass.LIVE_HUMAN, AudioClass.SILENCE


def _pickup(session_id: str, onset: float, decisions: list[float], hold: float = 3600.0) -> SessionResult:
    """A pickup: music until ``onset - 20``, an announcement, music, then the person at ``onset``."""
    segments = (
        Segment(0.0, onset - 20.0, M, "moh:a"),
        Segment(onset - 20.0, onset - 12.0, P, "queue-thankyou"),
        Segment(onset - 12.0, onset, M, "moh:a"),
        Segment(onset, onset + 10.0, H, "speech:x"),
    )
    said = tuple(Decision(t, 0.9, {"rule": "r"}) for t in decisions)
    return SessionResult(session_id, "pickup", onset + 10.0, segments, onset, (), said)


def _pure_hold(session_id: str, duration: float, decisions: list[float]) -> SessionResult:
    segments = (
        Segment(0.0, 100.0, M, "moh:a"),
        Segment(100.0, 108.0, P, "tt-allbusy"),
        Segment(108.0, duration, M, "moh:a"),
    )
    said = tuple(Decision(t, 0.9) for t in decisions)
    return SessionResult(session_id, "pure_hold", duration, segments, None, (), said)


def test_a_window_is_labelled_by_what_covers_most_of_it():
    segments = [Segment(0.0, 10.0, M, "m"), Segment(10.0, 11.0, S, "gap"), Segment(11.0, 20.0, P, "p")]
    assert window_truth(segments, 8.0, 11.0) == M  # 2 s music, 1 s silence
    assert window_truth(segments, 9.5, 12.5) == P  # 0.5 music, 1 silence, 1.5 prompt
    assert window_truth(segments, 25.0, 28.0) is None


def test_precision_recall_and_f1_per_class():
    pairs = [(M, M)] * 6 + [(M, P)] * 2 + [(P, P)] * 3 + [(P, M)] + [(H, AudioClass.SPEECH)] * 2
    scores = class_scores(pairs)
    music = scores["MUSIC"]
    assert (music.support, music.predicted, music.true_positives) == (8, 7, 6)
    assert music.precision == pytest.approx(6 / 7)
    assert music.recall == pytest.approx(6 / 8)
    assert music.f1 == pytest.approx(2 * (6 / 7) * (6 / 8) / (6 / 7 + 6 / 8))
    prompt = scores["IVR_PROMPT"]
    assert (prompt.precision, prompt.recall) == (pytest.approx(3 / 5), pytest.approx(3 / 4))
    human = scores["LIVE_HUMAN"]  # only ever called SPEECH: no precision, recall 0
    assert (human.support, human.predicted, human.precision, human.recall, human.f1) == (2, 0, None, 0.0, None)
    assert scores["SIT"].support == 0 and scores["SIT"].recall is None


def test_the_first_decision_settles_a_pickup():
    assert pickup_outcome(_pickup("a", 60.0, [60.75])).outcome == "hit"
    assert pickup_outcome(_pickup("a", 60.0, [60.75])).latency == pytest.approx(0.75)
    assert pickup_outcome(_pickup("b", 60.0, [65.0])).outcome == "hit"  # 5 s is still in time
    late = pickup_outcome(_pickup("c", 60.0, [65.5]))
    assert (late.outcome, late.latency) == ("late", pytest.approx(5.5))
    assert pickup_outcome(_pickup("d", 60.0, [])).outcome == "none"
    early = pickup_outcome(_pickup("e", 60.0, [59.9, 61.0]))
    assert (early.outcome, early.latency, early.decision_t) == ("false_transfer", None, 59.9)


def test_false_transfers_are_attributed_to_the_announcement_before_them():
    found = false_transfers(_pickup("p", 60.0, [44.0, 50.0, 54.0, 61.0]))
    assert [(f.t, f.label, f.announcement) for f in found] == [
        (44.0, "IVR_PROMPT", "queue-thankyou"),
        (50.0, "MUSIC", "queue-thankyou"),  # 2 s after it ended
        (54.0, "MUSIC", None),  # 6 s after
    ]
    hold = false_transfers(_pure_hold("h", 300.0, [10.0, 111.0]))
    assert [(f.t, f.source, f.announcement) for f in hold] == [(10.0, "moh:a", None), (111.0, "moh:a", "tt-allbusy")]


def test_summary_counts_latency_misses_and_false_transfers_per_hour():
    results = [
        _pickup("hit1", 100.0, [100.5]),
        _pickup("hit2", 100.0, [101.0]),
        _pickup("hit3", 100.0, [102.0]),
        _pickup("late", 100.0, [107.0]),
        _pickup("none", 100.0, []),
        _pickup("early", 100.0, [85.0, 101.0]),
        _pure_hold("hold1", 3000.0, [110.0]),
        _pure_hold("hold2", 3000.0, []),
    ]
    summary = summarize(results)
    assert summary.latency_median == pytest.approx(1.5)  # of 0.5, 1, 2, 7
    assert summary.latency_p90 == pytest.approx(np.percentile([0.5, 1.0, 2.0, 7.0], 90))
    assert summary.miss_rate == pytest.approx(3 / 6)  # late, none, early
    assert summary.hold_hours == pytest.approx((6 * 100.0 + 6000.0) / 3600)
    assert len(summary.false_transfers) == 2
    assert summary.false_transfers_per_hour == pytest.approx(2 / ((6 * 100.0 + 6000.0) / 3600))
    assert summary.false_transfers_on_announcements == 2  # both within 5 s after a prompt
    assert summary.announcements["tt-allbusy"] == {"plays": 2, "false_transfers": 1}
    assert summary.announcements["queue-thankyou"] == {"plays": 6, "false_transfers": 1}
    assert summary.sessions == {"pickup": 6, "pure_hold": 2}


def test_acceptance_marks_each_target():
    good = summarize([_pickup(f"p{i}", 100.0, [100.4 + 0.1 * i]) for i in range(10)] + [_pure_hold("h", 36000.0, [])])
    checks = {c.name: c for c in acceptance(good, cpu_percent=0.4, dtmf={"digits_decoded": 16, "false_digits": 0})}
    assert all(c.passed for c in checks.values()), checks
    bad = summarize([_pickup("p", 100.0, [103.0]), _pickup("q", 100.0, [90.0])])
    checks = {c.name: c for c in acceptance(bad, cpu_percent=1.5, dtmf=None)}
    assert checks["pickup latency, median"].passed is False
    assert checks["miss rate"].passed is False and checks["miss rate"].measured == "50%"
    assert checks["false transfers per hour of hold"].passed is False
    assert checks["CPU, always-on path"].passed is False
    assert checks["DTMF"].passed is None


class _ScriptedDetector:
    """MUSIC every second; HumanDetected at the scripted times when armed (a reset arms it, a
    decision disarms it, as the real detectors decide once per hold)."""

    def __init__(self, human_at: list[float]) -> None:
        self.human_at = list(human_at)
        self.armed = False
        self.resets: list[float] = []
        self.now = 0.0

    def push(self, pcm: np.ndarray, t: float) -> list[DetectorOutput]:
        self.now = t + len(pcm) / 8000
        out: list[DetectorOutput] = []
        if abs(self.now - round(self.now)) < 1e-9:
            out.append(Classification(self.now - 1.0, self.now, AudioClass.MUSIC, 0.8))
        if self.human_at and self.now >= self.human_at[0]:
            due = self.human_at.pop(0)
            if self.armed:
                self.armed = False
                out.append(HumanDetected(due, 0.9, {"rule": "scripted"}))
        return out

    def reset_for_hold(self) -> None:
        self.armed = True
        self.resets.append(round(self.now, 6))


def test_the_runner_streams_20ms_frames_and_resumes_the_wait_30s_after_a_false_transfer():
    session = Session(
        "s", "test", "pickup", np.zeros(8000 * 60, dtype=np.int16),
        [Segment(0.0, 50.0, M, "moh:a"), Segment(50.0, 60.0, H, "speech:x")], 50.0,
    )
    detector = _ScriptedDetector([5.0, 12.0, 40.0, 51.0])
    measured = run_session(session, detector)
    # 5 s: false; 12 s: the user is still being connected; 35 s: back on hold; 40 s: false again.
    assert [d.t for d in measured.result.decisions] == [5.0, 40.0]
    assert detector.resets == [0.0, 35.0]
    assert len(measured.result.windows) == 60
    assert pickup_outcome(measured.result).outcome == "false_transfer"
    assert len(false_transfers(measured.result)) == 2
    assert measured.cpu_seconds >= 0.0


@pytest.mark.corpus
def test_the_quick_benchmark_writes_json_and_markdown(tmp_path, capsys):
    code = main(["--quick", "--detector", "simple", "--jobs", "1", "--out", str(tmp_path), "-q"])
    assert code == 0
    report = json.loads((tmp_path / "detection-simple-quick.json").read_text())
    assert report["detector"] == "simple" and report["quick"] is True and report["split"] == "test"
    assert len(report["commit"]) == 40 and report["date"]
    assert report["sessions"] == {"pickup": 3, "pure_hold": 1, "tones": 4}
    assert len(report["pickups"]) == 3
    assert 0.0 < report["cpu_percent_of_one_core"] < 100.0
    assert {c["name"] for c in report["acceptance"]} >= {"miss rate", "false transfers per hour of hold", "DTMF"}
    table = (tmp_path / "detection-simple-quick.md").read_text()
    assert "| target | goal | measured | result |" in table
    assert "| MUSIC |" in table
    assert table in capsys.readouterr().out
