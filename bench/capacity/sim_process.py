"""The simulated PBX of a capacity run, as a process of its own (pinned apart from the app).

    python -m bench.capacity.sim_process --port 0 --status /tmp/sim.json

Writes ``--status`` (JSON) once it listens (``ari_url``) and then every second: how far its
20 ms media clock ran late, so that the app is not blamed for audio the PBX sent late.

- ``ticks``: media ticks run; ``expected_ticks``: what real time asked for since the first one;
- ``skipped_seconds``: time the clock gave up on (it skips beyond 250 ms of lag);
- ``late_ticks``: ticks that started more than one frame (20 ms) after they were due;
- ``max_lag_seconds``: the worst of those;
- ``tick_busy_seconds``: time spent inside ticks (the PBX's own media work).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path

from app.sim import SimConfig, SimulatedPBX, UserPhoneConfig
from app.sim.audio import FRAME_SECONDS
from app.sim.scenario import Scenario
from bench.capacity.company import SCENARIO


class TickMeter:
    """Wraps the media engine's tick to time it against the 20 ms schedule it should keep."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self._tick = engine.tick
        self.first: float | None = None
        self.late_ticks = 0
        self.max_lag_seconds = 0.0
        self.busy_seconds = 0.0
        engine.tick = self._timed_tick  # MediaEngine.run calls self.tick() every 20 ms

    def _timed_tick(self) -> None:
        started = time.monotonic()
        if self.first is None:
            self.first = started
        due = self.first + self._engine.ticks * FRAME_SECONDS + self._engine.skipped_seconds
        lag = started - due
        if lag > FRAME_SECONDS:
            self.late_ticks += 1
        self.max_lag_seconds = max(self.max_lag_seconds, lag)
        try:
            self._tick()
        finally:
            self.busy_seconds += time.monotonic() - started

    def status(self) -> dict:
        now = time.monotonic()
        expected = 0 if self.first is None else int((now - self.first) / FRAME_SECONDS)
        return {
            "ticks": self._engine.ticks,
            "expected_ticks": expected,
            "skipped_seconds": round(self._engine.skipped_seconds, 3),
            "late_ticks": self.late_ticks,
            "max_lag_seconds": round(self.max_lag_seconds, 4),
            "tick_busy_seconds": round(self.busy_seconds, 3),
        }


async def serve(host: str, port: int, status_path: Path) -> None:
    scenario = Scenario.model_validate(SCENARIO)
    users = {"PJSIP/userphone": UserPhoneConfig(answer_after=0.5, hangup_after=5.0, speech="prompt:hello")}
    pbx = SimulatedPBX(SimConfig(host=host, port=port, scenarios={scenario.number: scenario}, user_phones=users, seed=1))
    await pbx.start()
    assert pbx.audio is not None and pbx.media is not None
    # Everything the company plays is loaded before the first call, not on its line.
    await pbx.audio.prepare(scenario.tts_refs() | scenario.audio_refs())
    meter = TickMeter(pbx.media)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        while not stop.is_set():
            status = {"ari_url": pbx.ari_url, "pid": os.getpid(), "channels": len(pbx.model.channels), **meter.status()}
            tmp = status_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(status))
            tmp.replace(status_path)  # readers never see half a file
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
    finally:
        await pbx.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity.sim_process")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--status", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.status))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
