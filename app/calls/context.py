"""The call context: what every room of a call session shares.

Its clock, its waits (``wait_for``: until something holds, woken by ``notify()`` whenever an ARI
event, audio or a transcript may have changed the answer), the interrupts that end a call from
inside any wait (the company hung up, a special information tone, the user cancelled), its
status, and ``emit`` of its domain events onto the bus (with the call's own journal of them,
which the learner reads when the call is over).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.calls import events as ev
from app.calls.events import EventBus, EventType
from app.calls.models import CallStatus
from app.clock import Clock

# Frequent events the learner does not need (the store keeps them all).
NOT_JOURNALLED_HERE = frozenset({EventType.AUDIO_CLASSIFIED, EventType.HOLD_PROGRESS, EventType.TONE_DETECTED})


class CallContext:
    def __init__(self, call_id: str, bus: EventBus, clock: Clock) -> None:
        self.call_id = call_id
        self.bus = bus
        self.clock = clock
        self.status = CallStatus.PENDING
        self.journal: list[dict[str, Any]] = []  # this call's events as emitted (the learner reads them)
        self._change = asyncio.Event()
        self._interrupts: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ waits

    def notify(self) -> None:
        """Something changed: every wait checks its condition again."""
        self._change.set()
        self._change = asyncio.Event()

    def on_interrupt(self, check: Callable[[], None]) -> None:
        """``check`` runs at every wake-up of every wait and raises to end the call."""
        self._interrupts.append(check)

    def check_interrupts(self) -> None:
        for check in self._interrupts:
            check()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None, *, interruptible: bool = True) -> bool:
        """Wait until ``predicate()`` holds; False on timeout. The interrupts raise through it
        (not when ``interruptible`` is False: the call is ending and tidies up)."""
        deadline = None if timeout is None else self.clock.now() + timeout
        while True:
            change = self._change
            if interruptible:
                self.check_interrupts()
            if predicate():
                return True
            remaining = None if deadline is None else deadline - self.clock.now()
            if remaining is not None and remaining <= 0:
                return False
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                async with asyncio.timeout(remaining):
                    await change.wait()
            except TimeoutError:
                pass

    async def sleep(self, seconds: float) -> None:
        """Let time pass, still ending at once if the call ends meanwhile."""
        await self.wait_for(lambda: False, seconds)

    # ------------------------------------------------------------------ status and events

    def emit(self, data: ev.EventData) -> ev.CallEvent:
        published = self.bus.emit(self.call_id, data)
        if data.TYPE not in NOT_JOURNALLED_HERE:
            self.journal.append(published.to_dict())
        return published

    def set_status(self, status: CallStatus) -> None:
        previous, self.status = self.status, status
        self.emit(ev.CallStatusChanged(status=status.value, previous=previous.value))
