"""The end-to-end tests' report of how long their event loop was held up."""

from __future__ import annotations

import asyncio
import time

from tests.loop_stalls import LoopStalls


async def test_a_loop_held_up_is_reported_with_how_long():
    stalls = LoopStalls(period=0.01)
    stalls.start()
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # something holds the loop
    await asyncio.sleep(0.05)
    await stalls.stop()
    assert stalls.stalls == 1 and 0.25 < stalls.worst < 1.0
    assert stalls.summary() == f"event loop: worst stall {stalls.worst:.2f} s, 1 over 0.25 s"


async def test_a_free_loop_reports_no_stall():
    stalls = LoopStalls(period=0.01)
    stalls.start()
    await asyncio.sleep(0.2)
    await stalls.stop()
    assert stalls.stalls == 0 and stalls.worst < 0.25
