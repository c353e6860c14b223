"""``python -m bench.handoff``: see ``bench/handoff/calls.py``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

from app.clock import utc_now
from app.config import Settings
from bench.handoff.calls import HandoffBench, population, save

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
REPO = Path(__file__).resolve().parents[2]


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: true or false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.handoff", description=__doc__)
    parser.add_argument("--calls", type=int, default=100, help="calls, one per generated company")
    parser.add_argument("--seed", type=int, default=1, help="population seed")
    parser.add_argument("--jobs", type=int, default=10, help="calls at the same time (holds are real time)")
    parser.add_argument("--probe", type=_flag, default=None, help="human_probe (default: HOLDSLAYER_HUMAN_PROBE)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--stem", default=None, help="result file name (default: handoff, handoff-probe)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    probe = args.probe if args.probe is not None else Settings().human_probe
    started = time.monotonic()
    companies = population(args.calls, args.seed)

    skipped: list[float] = []

    async def run():
        bench = HandoffBench(companies, jobs=args.jobs, probe=probe)
        async with bench:
            calls = await bench.run()
        skipped.append(bench.media_skipped_seconds)
        return calls

    calls = asyncio.run(run())
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    meta = {
        "human_probe": probe,
        "calls": len(calls),
        "seed": args.seed,
        "jobs": args.jobs,
        "commit": commit or "unknown",
        "at": utc_now().isoformat(timespec="seconds"),
        "wall_seconds": time.monotonic() - started,
        "media_skipped_seconds": skipped[0] if skipped else None,
    }
    stem = args.stem or ("handoff-probe" if probe else "handoff")
    sys.stdout.write(save(calls, args.out, meta, stem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
