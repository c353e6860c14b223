"""Grouped cross-validation of the live-person detector: every fold on sources the others never heard.

``python -m bench.detection.cv [--folds K] [--quick] [--frozen [--again]] [--jobs 2]
[--detector pipeline|simple] [--manifest auto|base|wide|PATH] [--compare OLD.json]``

The manifest's groups (announcement voices, music packages, speakers, noise sources) are dealt
to K folds (``folds.py``) after a frozen slice is set aside; every fold's sessions
(``sessions_cv.py``) draw only from that fold's groups. Each session is streamed in 20 ms
frames into a fresh detector (``reset_for_hold()`` first, and again 30 s after every false
ring, as in ``run.py``); CPU is ``time.process_time()`` inside ``push()`` in the worker
(rendering excluded). The report (``metrics_cv.py``) has every fold's row, the mean and the
worst fold; ``--compare`` prints per-fold deltas against an earlier JSON and flags a worst
fold that got worse (the rule: a change stays only if the worst fold does not get worse).

``--frozen`` scores the frozen groups instead of the folds, once: the date, commit, detector
and frozen groups are recorded in ``bench/results/detection-cv.frozen-ledger.json``, and a
second scoring of the same frozen groups is refused unless ``--again`` (and the report says it
is a repeated look). Writes ``bench/results/detection-cv[-frozen][-DETECTOR][-quick].json`` and
``.md`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from app.analyze import DETECTORS, FRAME_SAMPLES, Detector, default_detector, make_detector
from app.audio.types import Classification, HumanDetected, HumanRetracted, HumanSuspected
from app.clock import utc_now
from bench.detection.dataset import RATE, Session
from bench.detection.folds import FROZEN, FoldPlan, plan_folds
from bench.detection.metrics import window_truth
from bench.detection.metrics_cv import CvResult, Event, aggregate, compare, fold_score
from bench.detection.run import RESULTS_DIR, RESUME_AFTER_FALSE_TRANSFER, _git_state, dtmf_sweep
from bench.detection.sessions_cv import CvSpec, fold_specs, render_cv
from bench.detection.sources import Manifest, load_sources

LEDGER = "detection-cv.frozen-ledger.json"


class FrozenRefused(RuntimeError):
    pass


# -- running sessions ---------------------------------------------------------------------------


def run_cv_session(session: Session, detector: Detector) -> CvResult:
    """Stream one session through ``detector`` in 20 ms frames; collect its decisions and windows."""
    detector.reset_for_hold()
    events: list[Event] = []
    windows: Counter[str] = Counter()
    resume_at: float | None = None
    cpu = 0.0
    pcm = session.pcm
    onset = session.human_onset
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
                truth = window_truth(session.segments, output.t_start, output.t_end)
                if truth is not None:
                    windows[f"{truth.value}>{output.audio_class.value}"] += 1
            elif isinstance(output, HumanDetected):
                events.append(Event("detected", output.t, rule=_rule(output.evidence)))
                if onset is None or output.t < onset:
                    resume_at = output.t + RESUME_AFTER_FALSE_TRANSFER
            elif isinstance(output, HumanSuspected):
                events.append(Event("suspected", output.t, rule=_rule(output.evidence)))
            elif isinstance(output, HumanRetracted):
                events.append(Event("retracted", output.t, suspected_t=output.suspected_t, rule=_rule(output.evidence)))
    return CvResult(
        session_id=session.id,
        fold=str(session.split),
        kind=session.kind,
        duration=session.duration,
        human_onset=onset,
        events=tuple(events),
        cpu_seconds=cpu,
        windows=dict(windows),
        meta=_light_meta(session.meta),
    )


def _rule(evidence: dict[str, Any]) -> str | None:
    rule = evidence.get("rule") if isinstance(evidence, dict) else None
    return None if rule is None else str(rule)


def _light_meta(meta: dict[str, Any]) -> dict[str, Any]:
    keys = ("conditions", "context", "transition", "speaker", "music", "voices", "spontaneous", "condition_params")
    return {k: meta[k] for k in keys if k in meta}


def _run_spec(job: tuple[CvSpec, str]) -> CvResult:
    spec, detector_name = job
    result = run_cv_session(render_cv(spec), make_detector(detector_name))
    return CvResult(**{**result.__dict__, "meta": {**result.meta, "mode": "passive"}})


def _run_interactive_spec(job: tuple[CvSpec, str], lines: dict[str, Any]) -> CvResult:
    """The closed loop (``closed_loop.py``): the far end hears our words and reacts."""
    from bench.detection.closed_loop import render_interactive, run_interactive_session

    spec, detector_name = job
    return run_interactive_session(render_interactive(spec), make_detector(detector_name), lines.__getitem__)


def run_specs(
    specs: list[CvSpec],
    detector_name: str,
    *,
    jobs: int = 2,
    progress: Callable[[int, int, CvResult], None] | None = None,
    runner: Callable[[tuple[CvSpec, str]], CvResult] = _run_spec,
) -> list[CvResult]:
    work = [(spec, detector_name) for spec in specs]
    results: list[CvResult] = []

    def collect(items) -> list[CvResult]:
        for item in items:
            results.append(item)
            if progress:
                progress(len(results), len(work), item)
        return results

    if jobs <= 1:
        return collect(map(runner, work))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        return collect(pool.map(runner, work, chunksize=1))


# -- the report ---------------------------------------------------------------------------------


def build_report(
    results: list[CvResult],
    plan: FoldPlan,
    *,
    detector: str,
    frozen: bool,
    quick: bool,
    seed: int | Sequence[int],
    wall_seconds: float,
    jobs: int,
    dtmf: dict[str, Any] | None = None,
    repeated_frozen: int = 0,
    mode: str = "passive",
) -> dict[str, Any]:
    names = [FROZEN] if frozen else [f.name for f in plan.folds]
    folds = {name: fold_score(r for r in results if r.fold == name) for name in names}
    summary = aggregate(folds)
    by_person: dict[str, Any] = {}
    for kind in ("reactive", "passive"):
        chosen = [r for r in results if r.meta.get("person_kind") == kind]
        if not chosen:
            continue
        kind_folds = {name: fold_score(r for r in chosen if r.fold == name) for name in names}
        kind_folds = {name: score for name, score in kind_folds.items() if score["pickups"]}
        kind_summary = aggregate(kind_folds)
        by_person[kind] = {"folds": kind_folds, "mean": kind_summary["mean"], "worst": kind_summary["worst"],
                           "overall": fold_score(chosen)}
    commit, dirty = _git_state()
    by_condition: dict[str, list[CvResult]] = {}
    for r in results:
        for name in r.meta.get("conditions", []):
            by_condition.setdefault(name, []).append(r)
    audio = sum(r.duration for r in results)
    return {
        "benchmark": "detection-cv",
        "mode": mode,
        "detector": detector,
        "scored": "frozen" if frozen else "folds",
        "repeated_frozen_scoring": repeated_frozen,
        "quick": quick,
        "seed": seed if isinstance(seed, int) else list(seed),
        "commit": commit,
        "dirty": dirty,
        "date": utc_now().isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 1),
        "jobs": jobs,
        "audio_hours": round(audio / 3600.0, 3),
        "plan": plan.as_dict(),
        "folds": folds,
        "mean": summary["mean"],
        "worst": summary["worst"],
        "worst_fold": summary["worst_fold"],
        "overall": fold_score(results),
        "by_condition": {name: fold_score(rs) for name, rs in sorted(by_condition.items())},
        "by_person_kind": by_person,
        "dtmf": dtmf,
        "sessions": [_session_row(r) for r in results],
    }


def _session_row(r: CvResult) -> dict[str, Any]:
    return {
        "id": r.session_id,
        "fold": r.fold,
        "kind": r.kind,
        "duration": round(r.duration, 2),
        "onset": None if r.human_onset is None else round(r.human_onset, 3),
        "events": [{"kind": e.kind, "t": round(e.t, 3), **({"rule": e.rule} if e.rule else {})} for e in r.events],
        "meta": {k: v for k, v in r.meta.items() if k != "condition_params"},
    }


INTERACTIVE_COLUMNS = (
    ("pickups", "pickups", "{}"),
    ("hold_hours", "hold h", "{:.2f}"),
    ("greet_latency_median", "greet med", "{:.2f} s"),
    ("greet_latency_p90", "greet p90", "{:.2f} s"),
    ("opener_latency_median", "opener med", "{:.2f} s"),
    ("ring_latency_median", "ring med", "{:.2f} s"),
    ("ring_latency_p90", "ring p90", "{:.2f} s"),
    ("rung_within_percent", "rung within 8 s", "{:.1f}%"),
    ("lost_percent", "lost", "{:.1f}%"),
    ("false_rings_per_hour", "false rings/h", "{:.2f}"),
    ("suspicions_per_hour", "suspicions/h", "{:.2f}"),
    ("lines_per_hour", "lines said/h of hold", "{:.1f}"),
    ("retractions_after_onset", "retracted a person", "{}"),
    ("cpu_percent", "CPU % core", "{:.3f}"),
)


COLUMNS = (
    ("pickups", "pickups", "{}"),
    ("hold_hours", "hold h", "{:.2f}"),
    ("greet_latency_median", "greet med", "{:.2f} s"),
    ("greet_latency_p90", "greet p90", "{:.2f} s"),
    ("ring_latency_median", "ring med", "{:.2f} s"),
    ("ring_latency_p90", "ring p90", "{:.2f} s"),
    ("never_rung_percent", "never rung (8 s)", "{:.1f}%"),
    ("false_rings_per_hour", "false rings/h", "{:.2f}"),
    ("suspicions_per_hour", "suspicions/h", "{:.2f}"),
    ("retractions", "retractions", "{}"),
    ("retractions_after_onset", "retracted a person", "{}"),
    ("cpu_percent", "CPU % core", "{:.3f}"),
    ("live_human_f1", "LIVE_HUMAN F1", "{:.3f}"),
    ("macro_f1", "macro F1", "{:.3f}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    if fmt == "{}" and isinstance(value, float):
        return f"{value:.2f}"
    return fmt.format(value)


def _table(rows: list[tuple[str, dict[str, Any]]], first: str = "fold", columns=COLUMNS) -> list[str]:
    lines = [f"| {first} | " + " | ".join(title for _, title, _ in columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    for name, score in rows:
        lines.append(f"| {name} | " + " | ".join(_cell(score.get(key), fmt) for key, _, fmt in columns) + " |")
    return lines


TARGETS = (
    ("greet_latency_median", "mean", "<=", 0.8),
    ("greet_latency_p90", "mean", "<=", 1.5),
    ("rung_within_percent", "mean", ">=", 98.0),
    ("rung_within_percent", "worst", ">=", 95.0),
    ("false_rings_per_hour", "mean", "<=", 0.1),
    ("false_rings_per_hour", "worst", "<=", 0.3),
)


def targets(report: dict[str, Any]) -> list[tuple[str, str, str, float, float | None, bool]]:
    """The acceptance targets: (score, mean|worst, op, target, value, passed)."""
    rows = []
    for key, where, op, target in TARGETS:
        value = report.get(where, {}).get(key)
        ok = value is not None and (value <= target if op == "<=" else value >= target)
        rows.append((key, where, op, target, value, ok))
    return rows


def markdown(report: dict[str, Any]) -> str:
    plan = report["plan"]
    frozen = report["scored"] == "frozen"
    title = "frozen test groups" if frozen else f"{plan['k']}-fold grouped cross-validation"
    lines = [
        f"# Detection benchmark: {title}",
        "",
        f"Detector `{report['detector']}`{' (quick subset)' if report['quick'] else ''}, seed {report['seed']}, "
        f"commit `{report['commit'][:12]}`{' + uncommitted changes' if report['dirty'] else ''}, {report['date']}. "
        f"Manifest `{plan['manifest']}` (fingerprint `{plan['fingerprint']}`). "
        f"{report['audio_hours']:.2f} h of audio, wall time {report['wall_seconds']:.0f} s with {report['jobs']} "
        "process(es). Everything through 8 kHz G.711 mu-law.",
        "",
    ]
    if frozen and report.get("repeated_frozen_scoring"):
        lines += [
            f"**Repeated look at the frozen groups** (scoring number {report['repeated_frozen_scoring'] + 1}): "
            "these numbers are no longer an unbiased estimate.",
            "",
        ]
    mode = report.get("mode", "passive")
    lines += [
        f"Mode **{mode}**: " + (
            "the closed loop (`closed_loop.py`): the handoff policy speaks to the far end (Piper TTS), the person "
            "hears it and reacts (reactive persons) or not (passive), the line may echo our words."
            if mode == "interactive" else
            "pre-rendered sessions: the person never hears the app (`--interactive` is the product's loop)."
        ),
        "",
    ]
    rows = list(report["folds"].items())
    if not frozen:
        rows += [("**mean**", report["mean"]), ("**worst**", report["worst"])]
    rows.append(("all sessions pooled", report["overall"]))
    columns = INTERACTIVE_COLUMNS if mode == "interactive" else COLUMNS
    lines += _table(rows, columns=columns)
    if not frozen:
        lines += ["", "Acceptance targets:", "", "| score | over folds | target | value | |", "|---|---|---|---|---|"]
        for key, where, op, target, value, ok in targets(report):
            shown = "n/a" if value is None else f"{value:.2f}"
            lines.append(f"| {key} | {where} | {op} {target} | {shown} | {'PASS' if ok else 'FAIL'} |")
    for kind, block in report.get("by_person_kind", {}).items():
        kind_rows = list(block["folds"].items())
        if not frozen:
            kind_rows += [("**mean**", block["mean"]), ("**worst**", block["worst"])]
        kind_rows.append(("pooled", block["overall"]))
        lines += ["", f"### {kind.capitalize()} persons (pickups only)", ""]
        lines += _table(kind_rows, columns=[c for c in columns if c[0] not in
                                             ("hold_hours", "false_rings_per_hour", "suspicions_per_hour", "lines_per_hour")])
    if not frozen:
        worst = ", ".join(f"{k}: {v}" for k, v in report["worst_fold"].items() if v)
        lines += ["", f"Worst fold per score: {worst}."]
    lines += [
        "",
        "Latencies from the person's first word; greet = first HumanSuspected, ring = first HumanDetected "
        "(n/a: the detector never said it). Never rung: no HumanDetected within 8 s of the first word. False "
        "rings: HumanDetected before the first word or in a pure hold, per hour of hold audio (the wait resumes "
        "30 s after each). Suspicions: HumanSuspected before the first word or in a pure hold. CPU: process time "
        "inside `push()` per second of audio.",
        "",
        "## Sources of each fold",
        "",
        "| fold | announcement voices | music | speakers | noise |",
        "|---|---|---|---|---|",
    ]
    groups = {FROZEN: plan["frozen"]} if frozen else plan["folds"]
    for name, kinds in groups.items():
        cells = [", ".join(g.split(":", 1)[1] for g in kinds.get(k, [])) or "-" for k in ("announcement", "music", "speech", "noise")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if not frozen:
        frozen_groups = ", ".join(g for gs in plan["frozen"].values() for g in gs)
        lines += ["", f"Frozen (never in a fold; `--frozen` scores them): {frozen_groups}."]
    lines += ["", "## By condition (all folds pooled; a session counts under each condition it had)", ""]
    lines += _table(list(report["by_condition"].items()), "condition", columns=columns)
    false = [(s["id"], e) for s in report["sessions"] for e in s["events"]
             if e["kind"] == "detected" and (s["onset"] is None or e["t"] < s["onset"])]
    lines += ["", f"## False rings ({len(false)})", ""]
    if false:
        lines += ["| session | t (s) | rule |", "|---|---|---|"]
        lines += [f"| {sid} | {e['t']:.1f} | {e.get('rule', '-')} |" for sid, e in false[:60]]
    dtmf = report.get("dtmf")
    lines += ["", "## DTMF (not fold-dependent)", ""]
    if dtmf:
        lines += ["| measure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in dtmf.items() if not isinstance(v, (dict, list))]
    else:
        lines.append("Not measured (`--quick`, `--frozen`, or no `bench.detection.dtmf_sweep`).")
    return "\n".join(lines) + "\n"


def compare_markdown(result: dict[str, Any]) -> str:
    lines = ["# Compared with the earlier run", ""]
    if not result["same_folds"]:
        lines += ["**The fold plans differ** (another manifest or K): per-fold deltas compare unlike folds.", ""]
    keys = [key for key, _, _ in COLUMNS if key in next(iter(result["deltas"].values()), {})]
    lines.append("| fold | " + " | ".join(keys) + " |")
    lines.append("|---" * (len(keys) + 1) + "|")
    for fold, deltas in result["deltas"].items():
        lines.append(f"| {fold} | " + " | ".join("n/a" if deltas[k] is None else f"{deltas[k]:+.3g}" for k in keys) + " |")
    lines += ["", "Worst fold, the rule's scores:", "", "| score | old | new | verdict |", "|---|---|---|---|"]
    for key, v in result["worst"].items():
        lines.append(f"| {key} | {v['old']} | {v['new']} | {v['verdict'].upper() if v['verdict'] == 'worse' else v['verdict']} |")
    lines.append("")
    if result["worst_got_worse"]:
        lines.append("**WORST FOLD GOT WORSE: by the rule, this change does not stay.**")
    else:
        lines.append("The worst fold did not get worse.")
    return "\n".join(lines) + "\n"


# -- frozen ledger ------------------------------------------------------------------------------


def frozen_key(plan: FoldPlan) -> str:
    groups = sorted(g for gs in plan.frozen.groups.values() for g in gs)
    return hashlib.sha256("\n".join(groups).encode()).hexdigest()[:16]


def check_frozen(ledger_path: Path, plan: FoldPlan, *, again: bool) -> int:
    """How many times these frozen groups were scored before; raises unless ``again`` when > 0."""
    ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {"scorings": []}
    key = frozen_key(plan)
    before = [s for s in ledger["scorings"] if s.get("frozen_key") == key]
    if before and not again:
        last = before[-1]
        raise FrozenRefused(
            f"the frozen groups were already scored {len(before)} time(s) (last {last['date']}, commit "
            f"{last['commit'][:12]}, detector {last['detector']}); scoring them again makes them a tuning set. "
            "Use --frozen --again to do it anyway (the report will say it is a repeated look)."
        )
    return len(before)


def record_frozen(ledger_path: Path, plan: FoldPlan, report: dict[str, Any], previous: int) -> None:
    ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {"scorings": []}
    ledger["scorings"].append(
        {
            "date": report["date"],
            "commit": report["commit"],
            "dirty": report["dirty"],
            "detector": report["detector"],
            "manifest": plan.manifest,
            "fingerprint": plan.fingerprint,
            "frozen_key": frozen_key(plan),
            "frozen_groups": {k: list(v) for k, v in plan.frozen.groups.items()},
            "again": previous > 0,
            "worst_never_rung_percent": report["overall"]["never_rung_percent"],
            "false_rings_per_hour": report["overall"]["false_rings_per_hour"],
        }
    )
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    ledger_path.write_text(json.dumps(ledger, indent=1) + "\n")


# -- the whole run ------------------------------------------------------------------------------


def results_stem(detector: str, *, frozen: bool, quick: bool, mode: str = "interactive") -> str:
    stem = "detection-cv" + ("-frozen" if frozen else "") + ("-passive" if mode == "passive" else "")
    if detector != "pipeline":
        stem += f"-{detector}"
    return stem + ("-quick" if quick else "")


def cv_specs(plan: FoldPlan, *, source: str, frozen: bool, seed: int | Sequence[int], quick: bool) -> list[CvSpec]:
    """The sessions of every fold scored, drawn with each seed in turn. Several seeds pool their
    sessions per fold (ids end ``-s<seed>``): one seed's 40 pickups per fold leave the worst fold
    a few sessions' luck, as the closed loop shifts a greeting by a frame and the far end's turn
    with it."""
    seeds = [seed] if isinstance(seed, int) else list(seed)
    names = [FROZEN] if frozen else [f.name for f in plan.folds]
    specs = []
    for one in seeds:
        drawn = [s for name in names for s in fold_specs(plan, name, source=source, seed=one, quick=quick)]
        specs += drawn if len(seeds) == 1 else [dataclasses.replace(s, id=f"{s.id}-s{one}") for s in drawn]
    return specs


def run_cv(
    *,
    manifest: Manifest,
    source: str,
    folds: int | None = None,
    detector: str | None = None,
    quick: bool = False,
    frozen: bool = False,
    again: bool = False,
    seed: int | Sequence[int] = 0,
    jobs: int = 2,
    out_dir: Path = RESULTS_DIR,
    progress: Callable[[int, int, CvResult], None] | None = None,
    runner: Callable[[tuple[CvSpec, str]], CvResult] | None = None,
    with_dtmf: bool = True,
    mode: str = "passive",
    lines: dict[str, Any] | None = None,
) -> dict[str, Any]:
    detector = detector or default_detector()
    if runner is None:
        if mode == "interactive":
            if detector != "pipeline":
                raise ValueError("the closed loop needs the pipeline (our_speech_started / far_end_speaking)")
            if lines is None:
                from bench.detection.closed_loop import render_lines

                lines = render_lines()
            runner = functools.partial(_run_interactive_spec, lines=lines)
        else:
            runner = _run_spec
    plan = plan_folds(manifest, folds)
    previous = 0
    ledger = out_dir / LEDGER
    if frozen:
        previous = check_frozen(ledger, plan, again=again)
    started = time.perf_counter()
    specs = cv_specs(plan, source=source, frozen=frozen, seed=seed, quick=quick)
    results = run_specs(specs, detector, jobs=jobs, progress=progress, runner=runner)
    dtmf = dtmf_sweep(_base_corpus()) if with_dtmf and not quick and not frozen else None
    report = build_report(
        results,
        plan,
        detector=detector,
        frozen=frozen,
        quick=quick,
        seed=seed,
        wall_seconds=time.perf_counter() - started,
        jobs=jobs,
        dtmf=dtmf,
        repeated_frozen=previous,
        mode=mode,
    )
    if frozen:
        record_frozen(ledger, plan, report, previous)
    return report


def _base_corpus():
    from app.sim.corpus import ensure_corpus

    return ensure_corpus()


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = results_stem(report["detector"], frozen=report["scored"] == "frozen", quick=report["quick"],
                        mode=report.get("mode", "passive"))
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def _seeds(text: str) -> int | tuple[int, ...]:
    seeds = tuple(int(part) for part in text.split(","))
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: a seed given twice would count its sessions twice")
    return seeds[0] if len(seeds) == 1 else seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detection.cv", description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=None, help="K (default: the most the manifest allows, <= 5)")
    parser.add_argument("--quick", action="store_true", help="2 short pickups and a 60 s hold per fold: a smoke test")
    parser.add_argument("--frozen", action="store_true", help="score the frozen groups (once; see --again)")
    parser.add_argument("--again", action="store_true", help="with --frozen: score them although they were scored before")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--detector", choices=DETECTORS, default=None, help="default: pipeline once it imports")
    parser.add_argument("--manifest", default="auto", help="auto (wide if fetched, else base) | base | wide | PATH")
    parser.add_argument("--seed", type=_seeds, default=0, help="a seed, or several (0,1) whose sessions pool per fold")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--compare", type=Path, default=None, metavar="OLD.json", help="per-fold deltas against a run")
    loop = parser.add_mutually_exclusive_group()
    loop.add_argument("--interactive", dest="mode", action="store_const", const="interactive",
                      help="the closed loop: the app speaks, the far end reacts (the default; the acceptance run)")
    loop.add_argument("--passive", dest="mode", action="store_const", const="passive",
                      help="pre-rendered sessions: the person never hears the app")
    parser.set_defaults(mode="interactive")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.again and not args.frozen:
        parser.error("--again only goes with --frozen")
    if args.frozen and args.quick:
        parser.error("--frozen --quick would spend the frozen look on a smoke test: run --frozen alone")

    manifest = load_sources(args.manifest)

    def progress(done: int, total: int, r: CvResult) -> None:
        kinds = Counter(e.kind for e in r.events)
        note = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no decision"
        if r.human_onset is not None:
            ring = next((e.t for e in r.events if e.kind == "detected" and e.t >= r.human_onset), None)
            if ring is not None:
                note += f", rung at {ring - r.human_onset:+.2f} s"
        print(f"[{done}/{total}] {r.session_id} ({r.duration:.0f} s): {note}", file=sys.stderr)

    try:
        report = run_cv(
            manifest=manifest,
            source=args.manifest,
            folds=args.folds,
            detector=args.detector,
            quick=args.quick,
            frozen=args.frozen,
            again=args.again,
            seed=args.seed,
            jobs=args.jobs,
            out_dir=args.out,
            progress=None if args.quiet else progress,
            mode=args.mode if (args.detector or default_detector()) == "pipeline" else "passive",
        )
    except FrozenRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    json_path, md_path = write_report(report, args.out)
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    if args.compare:
        result = compare(json.loads(args.compare.read_text()), report)
        print(compare_markdown(result))
        return 1 if result["worst_got_worse"] else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
