"""``python -m bench.navigation``: see ``bench/navigation/calls.py``."""

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
from bench.navigation.calls import NavigationSuite, navigation_scenarios, save

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.navigation", description=__doc__)
    parser.add_argument("--navigator", choices=("offline", "openai", "anthropic"), default="offline")
    parser.add_argument("--first-intent-only", action="store_true", help="one intent per company")
    parser.add_argument("--only", default="*", help="companies nav-ONLY.yaml (a glob, e.g. 'three-level')")
    parser.add_argument("--jobs", type=int, default=3, help="companies called at the same time")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.navigator != "offline":
        key = getattr(Settings(), f"{args.navigator}_api_key")
        if key is None:
            # Without a key the app would fall back to the offline navigator: not what was asked.
            parser.error(f"--navigator {args.navigator} needs HOLDSLAYER_{args.navigator.upper()}_API_KEY")
    started = time.monotonic()

    async def run():
        async with NavigationSuite(args.navigator, jobs=args.jobs, only=args.only) as suite:
            await suite.explore_all(first_intent_only=args.first_intent_only)
            await suite.replay_all()
            await suite.changed_menu()
            return suite.result

    result = asyncio.run(run())
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    meta = {
        "navigator": args.navigator,
        "companies": len(navigation_scenarios(args.only)),
        "calls": len(result.calls),
        "commit": commit or "unknown",
        "at": utc_now().isoformat(timespec="seconds"),
        "wall_seconds": time.monotonic() - started,
    }
    sys.stdout.write(save(result, args.out, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
