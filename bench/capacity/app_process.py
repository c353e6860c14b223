"""The app of a capacity run: ``holdslayer serve`` plus one read-only route for the benchmark.

    HOLDSLAYER_...=... python -m bench.capacity.app_process

Exactly what ``holdslayer serve`` runs (``create_api`` under uvicorn, one worker, the same
logging), with ``GET /bench/media`` added: per live call its status, the far-end audio it has
heard and its RTP endpoints' jitter counters (received, lost = concealed, late, ...), and how many
received frames wait to be heard (``unread``: the analysis running behind real time); and the
event loop's worst lag since the last read. With worker processes (HOLDSLAYER_WORKERS > 1) the
calls are not in this process: the route gives each worker's media totals, backlog and loop lag
from its heartbeat (``workers``), and the calls' statuses from the store. With ``HOLDSLAYER_BENCH_PROFILE=FILE``,
``POST /bench/profile/start`` and ``/stop`` run cProfile over the event loop's thread and write
the statistics to FILE (``python -m pstats FILE``).
"""

from __future__ import annotations

import asyncio
import cProfile
import logging
import os
import time
from dataclasses import asdict
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request

from app.api.app import create_api
from app.config import Settings, load_settings

PROFILE_ENV = "HOLDSLAYER_BENCH_PROFILE"
_LAG_PROBE_SECONDS = 0.05


class LoopLag:
    """How late a 50 ms sleep wakes up: the event loop's queueing delay (worst since last read)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._probe(), name="bench-loop-lag")

    async def _probe(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(_LAG_PROBE_SECONDS)
            self.worst = max(self.worst, time.monotonic() - started - _LAG_PROBE_SECONDS)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


async def workers_snapshot(runtime, front_lag: float) -> dict[str, Any]:
    """``serve --workers N``: the calls are in the workers, which tell their media counters
    (totals since their start), backlog and loop lag in their heartbeats; the calls' statuses
    come from the store."""
    beats = runtime.workers.heartbeats()
    live = await asyncio.to_thread(runtime.store.live_calls)
    return {
        "loop_lag_seconds": round(max([front_lag, *(b.loop_lag_seconds for b in beats)]), 4),
        "calls": [{"call_id": c.id, "status": c.status.value, "endpoints": {}} for c in live],
        "workers": [asdict(b) for b in beats],
    }


def media_snapshot(runtime) -> list[dict[str, Any]]:
    calls = []
    for call_id in runtime.manager.active_calls:
        session = runtime.manager.session(call_id)
        if session is None:
            continue
        endpoints = {}
        for source, endpoint in session.media.endpoints.items():
            stats = asdict(endpoint.stats)
            stats["unread"] = endpoint.unread  # frames received, not yet heard
            endpoints[source] = stats
        calls.append(
            {
                "call_id": call_id,
                "status": session.status.value,
                "heard_seconds": round(session.hearing.media_time, 3),
                "endpoints": endpoints,
            }
        )
    return calls


def build_app(settings: Settings) -> FastAPI:
    app = create_api(settings=settings)
    lag = LoopLag()
    profile_path = os.environ.get(PROFILE_ENV)
    profiler = cProfile.Profile() if profile_path else None
    bench = APIRouter()

    @bench.get("/bench/media")
    async def bench_media(request: Request) -> dict[str, Any]:
        lag.ensure_running()
        runtime = request.app.state.holdslayer
        if runtime.workers is not None:
            return await workers_snapshot(runtime, lag.take())
        return {"loop_lag_seconds": round(lag.take(), 4), "calls": media_snapshot(runtime)}

    if profiler is not None:

        @bench.post("/bench/profile/start")
        async def profile_start() -> dict[str, Any]:
            profiler.enable()
            return {"profiling": True}

        @bench.post("/bench/profile/stop")
        async def profile_stop() -> dict[str, Any]:
            profiler.disable()
            profiler.dump_stats(profile_path)
            return {"profiling": False, "path": profile_path}

    # Ahead of the dashboard's static files, which are mounted at "/" and would answer first.
    routes = app.router.routes
    count = len(routes)
    app.include_router(bench)
    added = routes[count:]
    del routes[count:]
    routes[:0] = added
    return app


def main() -> int:
    # As ``holdslayer serve``: the same logging set-up and levels.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(logging.INFO)
    settings = load_settings()
    uvicorn.run(build_app(settings), host=settings.api_host, port=settings.api_port, workers=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
