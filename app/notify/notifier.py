"""The notifier: follows the event bus and tells the user through every configured channel.

It has its own subscription (the bus never waits for it) and sends to every channel at once, each
with a time limit: a broken or slow channel is logged and counted, and never holds up a call or
another channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Protocol

from app.calls import events as ev
from app.calls.events import EventBus, Subscription
from app.notify.messages import CallNames, Notification, notification_for

log = logging.getLogger(__name__)


class Channel(Protocol):
    name: str

    async def send(self, notification: Notification) -> None: ...


class Notifier:
    def __init__(self, bus: EventBus, channels: list[Channel], *, timeout: float = 60.0) -> None:
        self.bus = bus
        self.channels = channels
        self.timeout = timeout
        self.sent: Counter[str] = Counter()  # per channel name
        self.failed: Counter[str] = Counter()
        self._names = CallNames()
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def tally(self) -> list[tuple[str, int, int]]:
        """(channel, sent, failed) for every configured channel, zeros included, by name: what
        ``/metrics`` and ``/api/health`` show of the channels' health."""
        names = sorted({channel.name for channel in self.channels} | set(self.sent) | set(self.failed))
        return [(name, self.sent[name], self.failed[name]) for name in names]

    def start(self) -> None:
        if not self.channels:
            return
        self._subscription = self.bus.subscribe(maxsize=1000)
        self._task = asyncio.create_task(self._run(), name="notifier")

    async def stop(self) -> None:
        """Stop following events; sends under way get a moment to finish."""
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._sending:
            await asyncio.wait(self._sending, timeout=5.0)
            for task in self._sending:
                task.cancel()

    async def _run(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            self._names.learn(event)
            notification = notification_for(event, self._names)
            if notification is not None:
                for channel in self.channels:
                    task = asyncio.create_task(self._send(channel, notification), name=f"notify-{channel.name}")
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
            if isinstance(event.data, ev.CallEnded):
                self._names.forget(event.call_id)

    async def _send(self, channel: Channel, notification: Notification) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await channel.send(notification)
        except Exception as exc:  # noqa: BLE001 - a broken channel must not stop the others
            self.failed[channel.name] += 1
            log.warning("notification %s for call %s not sent by %s: %s", notification.kind, notification.call_id, channel.name, exc)
        else:
            self.sent[channel.name] += 1
