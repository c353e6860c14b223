"""How long the event loop of a test that waits in real time was held up.

The end-to-end tests run the simulated PBX, the app and the test in one event loop. On a loaded
machine that loop stalls, the PBX's audio comes in bursts and a call can hear what no real line
would do. A failing call's report says how bad it was, so a stalled machine is told apart from a
wrong decision.
"""

from __future__ import annotations

import asyncio

STALL_SECONDS = 0.25  # as long as the simulated PBX once skipped its audio for


class LoopStalls:
    """Wakes every ``period`` and keeps how much later than asked it woke."""

    def __init__(self, period: float = 0.02) -> None:
        self.period = period
        self.worst = 0.0
        self.stalls = 0  # wake-ups later than STALL_SECONDS
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="loop-stalls")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self.period
            await asyncio.sleep(self.period)
            late = loop.time() - asked
            self.worst = max(self.worst, late)
            self.stalls += late > STALL_SECONDS

    def summary(self) -> str:
        return f"event loop: worst stall {self.worst:.2f} s, {self.stalls} over {STALL_SECONDS} s"
