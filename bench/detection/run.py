"""Run a detector over the labelled sessions, as a call feeds it, and report the scores.

``python -m bench.detection [--split test|train|all] [--detector simple|pipeline] [--quick]``

Each session is streamed in 20 ms frames (160 samples, stream time from 0) into a fresh
detector; ``reset_for_hold()`` is called first (the call session does so when the hold
begins) and again 30 s after every false human decision (the user was rung and bridged to
hold audio; then the wait goes on), so that a pure hold can show more than one false
transfer. The CPU cost is ``time.process_time()`` spent inside ``push`` per second
of audio. Sessions run in parallel worker processes (``--jobs``, default 2); each worker
renders its own sessions, so memory stays at a few sessions' worth.

Writes ``bench/results/detection[-DETECTOR][-quick][-SPLIT].json`` and ``.md`` (the plain
``detection.*`` is the full pipeline on the held-out test split, the acceptance run) and
prints the markdown.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from app.analyze import DETECTORS, FRAME_SAMPLES, Detector, default_detector, make_detector
from app.clock import utc_now
from app.jsonable import jsonable
from app.audio.types import Classification, HumanDetected
from app.sim.corpus import Corpus, ensure_corpus
from bench.detection.dataset import RATE, Session, SessionSpec, render, session_specs
from bench.detection.metrics import (
    Check,
    Decision,
    PickupOutcome,
    SessionResult,
    Summary,
    Window,
    acceptance,
    percentile,
    summarize,
)

# After a false transfer, the time until the app would be listening to the hold again.
RESUME_AFTER_FALSE_TRANSFER = 30.0
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Measured:
    result: SessionResult
    cpu_seconds: float  # inside push()


def run_session(session: Session, detector: Detector) -> Measured:
    """Stream one session through ``detector`` in 20 ms frames and collect what it said."""
    if session.kind != "tones":
        detector.reset_for_hold()
    windows: list[Window] = []
    decisions: list[Decision] = []
    resume_at: float | None = None
    cpu = 0.0
    pcm = session.pcm
    for start in range(0, len(pcm), FRAME_SAMPLES):
        t = start / RATE
        if resume_at is not None and t >= resume_at:
            detector.reset_for_hold()
            resume_at = None
        started = time.process_time()
        outputs = detector.push(pcm[start : start + FRAME_SAMPLES], t)
        cpu += time.process_time() - started
        for output in outputs:
            if isinstance(output, Classification):
                windows.append(Window(output.t_start, output.t_end, output.audio_class, output.confidence))
            elif isinstance(output, HumanDetected):
                decisions.append(Decision(output.t, output.confidence, jsonable(output.evidence)))
                if session.human_onset is None or output.t < session.human_onset:
                    # A false transfer: the user is rung and bridged to hold audio; then the wait goes on.
                    resume_at = output.t + RESUME_AFTER_FALSE_TRANSFER
    result = SessionResult(
        session_id=session.id,
        kind=session.kind,
        duration=session.duration,
        segments=tuple(session.segments),
        human_onset=session.human_onset,
        windows=tuple(windows),
        decisions=tuple(decisions),
        meta=session.meta,
    )
    return Measured(result, cpu)


def _run_spec(job: tuple[SessionSpec, str, str]) -> Measured:
    spec, detector_name, corpus_root = job
    return run_session(render(spec, Corpus(Path(corpus_root))), make_detector(detector_name))


def run_specs(
    specs: list[SessionSpec],
    corpus: Corpus,
    detector_name: str,
    *,
    jobs: int = 2,
    progress: Callable[[int, int, Measured], None] | None = None,
) -> list[Measured]:
    """Every session through a fresh detector, in ``jobs`` processes (1: in this process)."""
    work = [(spec, detector_name, str(corpus.root)) for spec in specs]
    if jobs <= 1:
        return _collect(map(_run_spec, work), len(work), progress)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        return _collect(pool.map(_run_spec, work), len(work), progress)


def _collect(
    items: Iterable[Measured], total: int, progress: Callable[[int, int, Measured], None] | None
) -> list[Measured]:
    measured: list[Measured] = []
    for item in items:
        measured.append(item)
        if progress:
            progress(len(measured), total, item)
    return measured


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    detector: str
    split: str
    quick: bool
    seed: int
    commit: str
    dirty: bool
    date: str
    wall_seconds: float
    jobs: int
    cpu_percent: float
    summary: Summary
    dtmf: dict[str, Any] | None
    checks: list[Check]

    def as_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "split": self.split,
            "quick": self.quick,
            "seed": self.seed,
            "commit": self.commit,
            "dirty": self.dirty,
            "date": self.date,
            "wall_seconds": round(self.wall_seconds, 1),
            "jobs": self.jobs,
            "cpu_percent_of_one_core": self.cpu_percent,
            "acceptance": [asdict(c) for c in self.checks],
            "dtmf": self.dtmf,
            **self.summary.as_dict(),
        }


def build_report(
    measured: list[Measured],
    *,
    detector: str,
    split: str,
    quick: bool,
    seed: int,
    wall_seconds: float,
    jobs: int,
    dtmf: dict[str, Any] | None,
) -> Report:
    summary = summarize(m.result for m in measured)
    audio = sum(m.result.duration for m in measured)
    cpu_percent = 100.0 * sum(m.cpu_seconds for m in measured) / audio if audio else 0.0
    commit, dirty = _git_state()
    return Report(
        detector=detector,
        split=split,
        quick=quick,
        seed=seed,
        commit=commit,
        dirty=dirty,
        date=utc_now().isoformat(timespec="seconds"),
        wall_seconds=wall_seconds,
        jobs=jobs,
        cpu_percent=cpu_percent,
        summary=summary,
        dtmf=dtmf,
        checks=acceptance(summary, cpu_percent=cpu_percent, dtmf=dtmf),
    )


def markdown(report: Report) -> str:
    s = report.summary
    kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(s.sessions.items()))
    lines = [
        "# Detection benchmark",
        "",
        f"Detector `{report.detector}` on the `{report.split}` split{' (quick subset)' if report.quick else ''}, "
        f"seed {report.seed}, commit `{report.commit[:12]}`{' + uncommitted changes' if report.dirty else ''}, "
        f"{report.date}.",
        f"{sum(s.sessions.values())} sessions ({kinds}): {s.audio_hours:.2f} h of audio, {s.hold_hours:.2f} h of it "
        f"hold; everything through 8 kHz G.711 mu-law. Wall time {report.wall_seconds:.0f} s with {report.jobs} "
        f"process(es).",
        "",
        "## Acceptance",
        "",
        "| target | goal | measured | result |",
        "|---|---|---|---|",
    ]
    for check in report.checks:
        verdict = "n/a" if check.passed is None else ("PASS" if check.passed else "FAIL")
        lines.append(f"| {check.name} | {check.target} | {check.measured} | {verdict} |")

    outcomes = {o: sum(p.outcome == o for p in s.pickups) for o in ("hit", "late", "none", "false_transfer")}
    lines += [
        "",
        "## Live person picking up",
        "",
        "Outcome of the first human decision: hit (<= 5 s after the first word), late, none, or a false "
        "transfer (before the first word).",
        "",
        "| pickups | hits | late | none | false transfer | latency median | latency p90 | miss rate |",
        "|---|---|---|---|---|---|---|---|",
        f"| {len(s.pickups)} | {outcomes['hit']} | {outcomes['late']} | {outcomes['none']} | "
        f"{outcomes['false_transfer']} | {_seconds(s.latency_median)} | {_seconds(s.latency_p90)} | "
        f"{_percent(s.miss_rate)} |",
    ]
    groupings = (("voice", "voice"), ("context", "what played before the pickup"), ("human_line", "the person's line"))
    for key, title in groupings:
        lines += ["", f"By {title}:", "", f"| {key} | pickups | hits | false transfer | latency median |"]
        lines.append("|---|---|---|---|---|")
        for value, group in _group(s.pickups, key).items():
            latencies = [p.latency for p in group if p.latency is not None]
            lines.append(
                f"| {value} | {len(group)} | {sum(p.outcome == 'hit' for p in group)} | "
                f"{sum(p.outcome == 'false_transfer' for p in group)} | {_seconds(percentile(latencies, 50))} |"
            )

    lines += [
        "",
        "## False transfers",
        "",
        f"{len(s.false_transfers)} in {s.hold_hours:.2f} h of hold audio "
        f"({_number(s.false_transfers_per_hour)} per hour); {s.false_transfers_on_announcements} on an announcement.",
    ]
    if s.false_transfers:
        lines += ["", "| session | t (s) | under the decision | announcement before it | rule |"]
        lines.append("|---|---|---|---|---|")
        for f in s.false_transfers:
            under = f"{f.label} {f.source}"
            lines.append(f"| {f.session_id} | {f.t:.1f} | {under} | {f.announcement or '-'} | {f.rule or '-'} |")
    lines += ["", "Announcements heard on hold:", "", "| announcement | plays | false transfers |", "|---|---|---|"]
    for name, counts in s.announcements.items():
        lines.append(f"| {name} | {counts['plays']} | {counts['false_transfers']} |")

    lines += [
        "",
        "## Window classes",
        "",
        "Truth of a window: the label covering most of it.",
        "",
        "| class | windows (truth) | predicted | precision | recall | F1 |",
        "|---|---|---|---|---|---|",
    ]
    for name, score in s.class_scores.items():
        lines.append(
            f"| {name} | {score.support} | {score.predicted} | {_number(score.precision)} | "
            f"{_number(score.recall)} | {_number(score.f1)} |"
        )
    lines += ["", "## DTMF", ""]
    if report.dtmf is None:
        lines.append("Not measured (no `bench.detection.dtmf_sweep`, or `--quick`).")
    else:
        lines += ["| measure | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in report.dtmf.items() if not isinstance(value, (dict, list))]
    lines += [
        "",
        "## CPU",
        "",
        f"{report.cpu_percent:.3f}% of one core per call: process time inside `push()` over "
        f"{s.audio_hours:.2f} h of audio in 20 ms frames.",
        "",
    ]
    return "\n".join(lines)


def results_stem(detector: str, split: str, quick: bool) -> str:
    stem = "detection" if detector == "pipeline" else f"detection-{detector}"
    if quick:
        stem += "-quick"
    if split != "test":
        stem += f"-{split}"
    return stem


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = results_stem(report.detector, report.split, report.quick)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(jsonable(report.as_dict()), indent=1) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def dtmf_sweep(corpus: Corpus) -> dict[str, Any] | None:
    """The DTMF sweep's results, when its module exists."""
    if importlib.util.find_spec("bench.detection.dtmf_sweep") is None:
        return None
    from bench.detection.dtmf_sweep import run_dtmf_sweep

    return jsonable(run_dtmf_sweep(corpus))


def run_benchmark(
    *,
    split: str = "test",
    detector: str | None = None,
    quick: bool = False,
    seed: int = 0,
    jobs: int = 2,
    corpus: Corpus | None = None,
    progress: Callable[[int, int, Measured], None] | None = None,
) -> Report:
    corpus = corpus or ensure_corpus()
    detector = detector or default_detector()
    started = time.perf_counter()
    specs = session_specs(seed, split=None if split == "all" else split, quick=quick)  # type: ignore[arg-type]
    measured = run_specs(specs, corpus, detector, jobs=jobs, progress=progress)
    dtmf = None if quick else dtmf_sweep(corpus)
    return build_report(
        measured,
        detector=detector,
        split=split,
        quick=quick,
        seed=seed,
        wall_seconds=time.perf_counter() - started,
        jobs=jobs,
        dtmf=dtmf,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("test", "train", "all"), default="test")
    parser.add_argument(
        "--detector", choices=DETECTORS, default=None, help="default: pipeline once it imports, else simple"
    )
    parser.add_argument("--quick", action="store_true", help="a small, short subset: a smoke test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for the .json and .md")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    def progress(done: int, total: int, item: Measured) -> None:
        result = item.result
        note = f"{len(result.decisions)} human decision(s)"
        if result.human_onset is not None and result.decisions:
            note += f", first at {result.decisions[0].t - result.human_onset:+.2f} s from the onset"
        print(f"[{done}/{total}] {result.session_id} ({result.duration:.0f} s): {note}", file=sys.stderr)

    report = run_benchmark(
        split=args.split,
        detector=args.detector,
        quick=args.quick,
        seed=args.seed,
        jobs=args.jobs,
        progress=None if args.quiet else progress,
    )
    json_path, md_path = write_report(report, args.out)
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def _group(pickups: list[PickupOutcome], key: str) -> dict[str, list[PickupOutcome]]:
    groups: dict[str, list[PickupOutcome]] = {}
    for pickup in pickups:
        groups.setdefault(str(pickup.meta.get(key, "-")), []).append(pickup)
    return dict(sorted(groups.items()))


def _git_state() -> tuple[str, bool]:
    """The checked-out commit and whether the tree has uncommitted changes (read-only git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.strip())


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
