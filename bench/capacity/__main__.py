"""``python -m bench.capacity``: see ``bench/capacity/run.py``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from app.clock import utc_now
from bench.capacity.procstat import load_average
from bench.capacity.run import REPO, CapacityRun, RunConfig, save

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--calls", default="10,25,50,100", help="comma-separated numbers of held calls")
    parser.add_argument("--seconds", type=float, default=120.0, help="measured window per N, once all are on hold")
    parser.add_argument("--cores", type=int, choices=(1, 2), default=1, help="1: app on CPU 0, PBX on CPU 1; 2: both on 0,1")
    parser.add_argument("--sample-every", type=float, default=60.0, help="seconds between the long run's samples")
    parser.add_argument("--ramp", type=float, default=10.0, help="calls placed per second")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the app's window into this file")
    parser.add_argument("--keep", type=Path, default=None, help="keep each N's logs, database and recordings here")
    parser.add_argument(
        "--workers", type=int, default=1, help="run the app as serve --workers N (needs --database-server; default 1 process)"
    )
    parser.add_argument(
        "--database-server", default=None,
        help="with --workers: postgresql://user:password@host/db of a role that may create databases (one per N)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--stem", default=None, help="result file name (default: capacity, capacity-2cores)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    counts = [int(n) for n in args.calls.split(",") if n.strip()]
    app_cpus, sim_cpus = ("0", "1") if args.cores == 1 else ("0,1", "0,1")
    # The harness itself (HTTP polls, the WebSocket client) stays off the app's core.
    if args.cores == 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    config = RunConfig(
        app_cpus=app_cpus, sim_cpus=sim_cpus, ramp_per_second=args.ramp, minute_seconds=args.sample_every,
        profile_path=args.profile.resolve() if args.profile else None,
        keep_dir=args.keep.resolve() if args.keep else None, workers=args.workers, database_server=args.database_server,
    )  # fmt: skip
    if args.workers > 1 and not args.database_server:
        parser.error("--workers above 1 needs --database-server (PostgreSQL)")
    load_before = load_average()
    started = time.monotonic()
    rows = []
    for n in counts:
        row = asyncio.run(CapacityRun(n, args.seconds, config).run())
        print(
            f"N={n}: CPU {row.cpu_percent_per_call:.2f} % per call, lost {row.frames_lost}, late {row.frames_late}, "
            f"backlog {row.backlog_max_seconds} s, load {load_average()}",
            file=sys.stderr,
        )
        rows.append(row)
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    meta = {
        "cores": args.cores,
        "workers": args.workers,
        "app_cpus": app_cpus,
        "sim_cpus": sim_cpus,
        "seconds": args.seconds,
        "commit": commit or "unknown",
        "at": utc_now().isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "load_before": load_before,
        "load_after": load_average(),
        "cpu_count": os.cpu_count(),
    }
    stem = args.stem or ("capacity" if args.cores == 1 else "capacity-2cores") + (f"-{args.workers}workers" if args.workers > 1 else "")
    sys.stdout.write(save(rows, args.out, meta, stem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
