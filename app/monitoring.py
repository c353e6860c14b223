"""What the process counts about itself for ``/metrics`` and ``/api/health``, besides what the
live objects already know (calls by state, media counters, ARI reconnects: read at scrape time).

- ``CallTally`` follows the event bus: the detector's decisions by kind, and the duration of
  every hold that ended (a person found, or the call ended on hold) in histogram buckets.
  ``observe`` is pure (an event in, counts out); ``run`` feeds it from a subscription.
- ``LoopLagProbe`` measures how late the event loop wakes a task that asked to sleep: a loop
  busy with calls delays every RTP packet, ARI event and HTTP request by that much.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

from app.calls.events import CallEvent, EventBus, EventType

log = logging.getLogger(__name__)

DECISIONS = frozenset(
    {
        EventType.HOLD_DETECTED,
        EventType.HUMAN_SUSPECTED,
        EventType.HUMAN_RETRACTED,
        EventType.HUMAN_DETECTED,
        EventType.HUMAN_PROBE,
    }
)
# Hold durations in seconds: from a short queue to the two-hour limit (HOLDSLAYER_MAX_HOLD_TIME).
HOLD_BUCKETS: tuple[float, ...] = (10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200)


@dataclass
class Histogram:
    """Cumulative-bucket histogram in Prometheus' shape: ``counts[i]`` holds the observations
    ``<= bounds[i]``; the last count is +Inf (every observation)."""

    bounds: tuple[float, ...] = HOLD_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        for i in range(bisect.bisect_left(self.bounds, value), len(self.counts)):
            self.counts[i] += 1
        self.total += value

    @property
    def count(self) -> int:
        return self.counts[-1]

    def buckets(self) -> list[tuple[str, int]]:
        """(upper bound as Prometheus writes it, cumulative count), +Inf last."""
        return [(f"{bound:g}", n) for bound, n in zip(self.bounds, self.counts)] + [("+Inf", self.counts[-1])]


@dataclass
class _OpenHold:
    started_at: datetime


class CallTally:
    """Decisions and hold durations from a call's events (see the module docstring)."""

    def __init__(self) -> None:
        self.decisions: Counter[str] = Counter()  # EventType value -> count
        self.holds: dict[str, Histogram] = {}  # outcome (person | ended) -> durations
        self._open: dict[str, _OpenHold] = {}  # call id -> the hold it is in
        self._subscription = None
        self._task: asyncio.Task[None] | None = None

    def observe(self, event: CallEvent) -> None:
        data = event.data
        if event.type in DECISIONS:
            self.decisions[event.type.value] += 1
        if event.type is EventType.CALL_STATUS and data.status == "on_hold":  # type: ignore[attr-defined]
            self._open.setdefault(event.call_id, _OpenHold(_parse(event.at)))
        elif event.type is EventType.HUMAN_DETECTED:
            # The session's own measure of this hold, on its clock.
            if self._open.pop(event.call_id, None) is not None:
                self._hold("person").observe(float(data.hold_seconds))  # type: ignore[attr-defined]
        elif event.type is EventType.CALL_ENDED:
            hold = self._open.pop(event.call_id, None)
            if hold is not None:
                self._hold("ended").observe(max(0.0, (_parse(event.at) - hold.started_at).total_seconds()))

    def _hold(self, outcome: str) -> Histogram:
        return self.holds.setdefault(outcome, Histogram())

    def start(self, bus: EventBus) -> None:
        wanted = DECISIONS | {EventType.CALL_STATUS, EventType.CALL_ENDED}
        self._subscription = bus.subscribe(lambda event: event.type in wanted)
        self._task = asyncio.create_task(self._run(), name="call-tally")

    async def _run(self) -> None:
        async for event in self._subscription:
            try:
                self.observe(event)
            except Exception:  # a tally must never stop counting the next calls
                log.exception("could not tally %s", event.type)

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


class LagWindow:
    """The latest lag and the worst of the last ``window`` seconds (pure: times are passed in)."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.latest = 0.0
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, lag: float) -> None:
        self.latest = lag
        self._samples.append((now, lag))
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()

    @property
    def worst(self) -> float:
        return max((lag for _, lag in self._samples), default=0.0)


class LoopLagProbe:
    """Sleeps ``interval`` seconds again and again and records how late it woke."""

    def __init__(self, interval: float = 0.5, window: float = 60.0) -> None:
        self.interval = interval
        self.lag = LagWindow(window)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag-probe")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.lag.add(now, max(0.0, now - asked))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
