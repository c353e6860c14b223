"""Injectable time, so that logic which waits or measures can be tested exactly."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def utc_now() -> datetime:
    """The wall-clock time, timezone-aware UTC: the one source of record and flow times."""
    return datetime.now(timezone.utc)


def utc_now_iso() -> str:
    """Wall-clock UTC timestamp for records and events (ISO 8601, millisecond precision)."""
    return utc_now().isoformat(timespec="milliseconds")
