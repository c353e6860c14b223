"""Command line: ``holdslayer serve | worker | demo | sim | analyze | prune``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from app.config import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="holdslayer", description="Hold Slayer: we wait on hold so you don't.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and the ARI worker against the configured Asterisk")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run the calls in N worker processes (about N cores' worth of calls; needs PostgreSQL); "
        "default HOLDSLAYER_WORKERS, 1: one process",
    )

    worker = sub.add_parser("worker", help="one worker process of `serve --workers N` (the front starts them)")
    worker.add_argument("--index", type=int, required=True, help="which worker, 1..N")

    demo = sub.add_parser("demo", help="call a demo company on a simulated PBX, end to end")
    demo.add_argument("--number", default="8005550100", help="company number in the simulator (default: Acme Bank)")
    demo.add_argument("--intent", default="talk to a customer advocate about my bill")
    demo.add_argument("--api", action="store_true", help="also serve the REST API and dashboard during the demo")
    demo.add_argument("--follow-flow", action="store_true", help="follow the stored call flow instead of finding the way by speech")
    demo.add_argument("--list", action="store_true", help="list the simulated companies and exit")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory of a run without a stored flow (its database and recordings) "
        "and print where it is; by default it is deleted at exit",
    )

    sim = sub.add_parser("sim", help="run the simulated PBX on its own")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8088)

    from app.analyze import DETECTORS

    analyze = sub.add_parser("analyze", help="classify a recording window by window and find the live person")
    analyze.add_argument("file", type=Path, help="a WAV file (any rate, channels, PCM / float / G.711)")
    analyze.add_argument("--json", action="store_true", help="one JSON object per line")
    analyze.add_argument(
        "--detector", choices=DETECTORS, default=None, help="default: pipeline once it imports, else simple"
    )

    prune = sub.add_parser(
        "prune",
        help="delete the recordings and call records older than the retention settings now "
        "(HOLDSLAYER_RETAIN_RECORDINGS_DAYS, HOLDSLAYER_RETAIN_CALLS_DAYS)",
    )
    prune.add_argument("--dry-run", action="store_true", help="only say what would be deleted")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "analyze":  # needs no settings
        from app.analyze import run_analyze

        return run_analyze(args.file, as_json=args.json, detector=args.detector)
    overrides = {"workers": args.workers} if args.command == "serve" and args.workers is not None else {}
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"holdslayer: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        return _serve(settings)
    if args.command == "worker":
        return _worker(settings, args.index)
    if args.command == "demo":
        from app.demo import list_companies, run_demo

        if args.list:
            return list_companies()
        demo_run = run_demo(
            settings, number=args.number, intent=args.intent,
            with_api=args.api, follow_flow=args.follow_flow, keep=args.keep,
        )  # fmt: skip
        try:
            return asyncio.run(_until_sigterm(demo_run))
        except KeyboardInterrupt:  # Ctrl-C: the call was cancelled and cleaned up on the way out
            print("\ninterrupted: the call was hung up", file=sys.stderr)
            return 128 + signal.SIGINT
        except _Terminated:  # the same for SIGTERM
            print("\nterminated: the call was hung up", file=sys.stderr)
            return 128 + signal.SIGTERM
    if args.command == "prune":
        return _prune(settings, dry_run=args.dry_run)
    if args.command == "sim":
        from app.sim import run_sim

        asyncio.run(run_sim(args.host, args.port))
        return 0
    return 2


def _prune(settings, *, dry_run: bool) -> int:
    """One retention sweep by hand; 1 when something could not be deleted (it stays for the next)."""
    from app.retention import RetentionPolicy, Sweeper
    from app.store import Store

    policy = RetentionPolicy.from_settings(settings)
    store = Store(settings.database_url)
    try:
        report = Sweeper(store, settings.recordings_dir, policy).sweep(dry_run=dry_run)
    finally:
        store.close()
    print(f"retention: {policy.describe()}")
    print(report.summary())
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if report.failures else 0


def _serve(settings) -> int:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from app.api.app import create_api

    logging.getLogger("app").setLevel(logging.INFO)
    # uvicorn catches SIGTERM and SIGINT, shuts down (every live call ends, "shutdown"), then raises
    # the signal again for the handler it found: make that a plain exit 0, not a kill or a traceback.
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    signal.signal(signal.SIGINT, _exit_after_shutdown)
    api = create_api(settings=settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            # uvicorn looks at its exit flag only once the app has started, and the start waits
            # for Asterisk: without this, a stop asked for while Asterisk is down is never heard.
            cancel_start = getattr(api.state, "cancel_start", None)
            if cancel_start is not None:
                cancel_start()

    server = Server(uvicorn.Config(api, host=settings.api_host, port=settings.api_port, workers=1))
    try:
        server.run()
    except KeyboardInterrupt:  # a Ctrl-C that came before uvicorn took the signals over
        return 0
    return 0 if server.started else STARTUP_FAILURE


def _worker(settings, index: int) -> int:
    """Run worker ``index`` until SIGTERM (its calls end, ``shutdown``) or until the front that
    started it is gone."""
    import os

    from app.runtime import HoldSlayer

    if not 1 <= index <= settings.workers:
        print(f"holdslayer worker: --index must be within 1..HOLDSLAYER_WORKERS ({settings.workers})", file=sys.stderr)
        return 2
    logging.getLogger("app").setLevel(logging.INFO)
    log = logging.getLogger("app.worker")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        # Ctrl-C reaches the whole process group: the front stops the workers (SIGTERM) itself,
        # and would take a worker that exited on its own for one that died.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        front = os.getppid()
        holdslayer = HoldSlayer(settings, worker=index)
        try:
            await holdslayer.start()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    if os.getppid() != front:  # the front was killed: nobody sees these calls
                        log.error("worker %d: the front process is gone; stopping", index)
                        break
        finally:
            await holdslayer.stop()

    asyncio.run(run())
    return 0


def _exit_after_shutdown(signum: int, frame: object) -> None:
    raise SystemExit(0)


class _Terminated(Exception):
    """The demo was stopped by SIGTERM (after its clean-up)."""


async def _until_sigterm(main):
    """Run ``main`` as asyncio.run runs it on Ctrl-C: SIGTERM cancels it, so its clean-up runs
    (the demo's call is hung up and stored as ended), then ``_Terminated`` is raised. A SIGTERM
    that comes during the clean-up, or after a Ctrl-C, does not cut it short."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        if not terminated and not task.cancelling():
            terminated = True
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await main
    except asyncio.CancelledError:
        if not terminated:
            raise
        task.uncancel()
        raise _Terminated from None
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
