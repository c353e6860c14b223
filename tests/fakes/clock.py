"""The one manual clock of the test suite (it satisfies ``app.clock.Clock``).

Time moves only when the test says so. Two ways to let it move:
- ``advance(seconds)``: the test moves time; every ``sleep`` whose deadline is reached wakes;
- ``jumping=True``: a ``sleep`` moves time itself to its end at once (logic that only waits can
  then run a minute of call time in a millisecond).
"""

from __future__ import annotations

import asyncio


class ManualClock:
    def __init__(self, start: float = 0.0, *, jumping: bool = False) -> None:
        self._now = start
        self.jumping = jumping
        self._advanced = asyncio.Event()

    def now(self) -> float:
        return self._now

    @property
    def t(self) -> float:
        return self._now

    @t.setter
    def t(self, value: float) -> None:
        self.advance(value - self._now)

    async def sleep(self, seconds: float) -> None:
        if self.jumping:
            self.advance(max(0.0, seconds))
            await asyncio.sleep(0)
            return
        deadline = self._now + seconds
        await asyncio.sleep(0)
        while self._now < deadline:
            await self._advanced.wait()

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._advanced.set()
        self._advanced = asyncio.Event()
