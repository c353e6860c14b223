"""Live messages between the processes of ``holdslayer serve --workers N``: PostgreSQL
LISTEN/NOTIFY, so the database every process already shares is also the one message channel
(no broker to run, nothing home-made).

Channels:

- ``EVENTS_CHANNEL``: a worker's call events, sent by its store in the transaction that journals
  them (``Store(live_events=True)``): delivered only if, and when, they are committed, in commit
  order. Payload: a JSON array of events in their JSON form; an event too large for a
  notification goes as ``{"row": <its call_events id>}`` and the front reads it (``EventFeed``).
  Events the store keeps no row of (the half-second AUDIO_CLASSIFIED windows) travel too, so the
  front's WebSocket clients see what a single process would show them.
- ``commands_channel(i, node)``: commands to worker ``i`` of host ``node`` (``app.calls.control.Command``);
- ``REPLIES_CHANNEL``: their replies (``Reply``);
- ``WORKERS_CHANNEL``: each worker's heartbeat (``app.workers``).

A notification is not stored: user data handed to a worker in a command is never in a table.
A listener that loses its connection reconnects; what was sent meanwhile is lost (the rows are
not: the API reads them).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from app.calls.events import CallEvent, EventBus, EventFormatError, EventType
from app.store.db import database_url

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "holdslayer_events"
REPLIES_CHANNEL = "holdslayer_replies"
WORKERS_CHANNEL = "holdslayer_workers"
# PostgreSQL refuses a payload of 8000 bytes or more; keep a margin.
MAX_PAYLOAD_BYTES = 7900
_RECONNECT_MAX_SECONDS = 10.0


def commands_channel(worker: int, node: str = "") -> str:
    """Worker ``worker`` of host ``node`` listens here (any front may command it)."""
    return f"holdslayer_commands_{node}_{worker}" if node else f"holdslayer_commands_{worker}"


def _size(text: str) -> int:
    return len(text.encode())


def pack_events(events: Sequence[tuple[dict[str, Any], int | None]], limit: int = MAX_PAYLOAD_BYTES) -> list[str]:
    """Events (JSON form, row id or None) -> as few payloads of at most ``limit`` bytes as keep
    them in order. One that does not fit alone goes by its row id (dropped, with a warning,
    if it has none: no event kept only in memory is that large)."""
    payloads: list[str] = []
    items: list[str] = []
    size = 2  # the brackets
    for event, row_id in events:
        item = json.dumps(event, separators=(",", ":"))
        if _size(item) + 2 > limit:
            if row_id is None:
                log.warning("event %s of call %s is too large to send live and has no row", event.get("type"), event.get("call_id"))
                continue
            item = json.dumps({"row": row_id})
        grows = _size(item) + (1 if items else 0)  # its comma
        if items and size + grows > limit:
            payloads.append("[" + ",".join(items) + "]")
            items, size, grows = [], 2, _size(item)
        items.append(item)
        size += grows
    if items:
        payloads.append("[" + ",".join(items) + "]")
    return payloads


def unpack_events(payload: str) -> list[dict[str, Any] | int]:
    """A payload of ``pack_events`` -> events (JSON form) and row ids, in order."""
    out: list[dict[str, Any] | int] = []
    for item in json.loads(payload):
        if isinstance(item, dict) and set(item) == {"row"}:
            out.append(int(item["row"]))
        elif isinstance(item, dict):
            out.append(item)
        else:
            raise ValueError(f"not an event: {item!r}")
    return out


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://...``) as libpq takes it."""
    parsed = database_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"LISTEN/NOTIFY needs PostgreSQL, not {parsed.get_backend_name()}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


Handler = Callable[[str], Awaitable[None]]


class PgChannels:
    """LISTEN on some channels (each payload to its handler, one at a time, in arrival order)
    and NOTIFY on any; two connections of its own, reconnected when they drop."""

    def __init__(self, url: str, handlers: Mapping[str, Handler]) -> None:
        self._url = libpq_url(url)
        self._handlers = dict(handlers)
        self._task: asyncio.Task[None] | None = None
        self._sender: psycopg.AsyncConnection | None = None
        self._send_lock = asyncio.Lock()
        self.connected = asyncio.Event()  # the listener is up
        self.reconnects = 0

    async def start(self, timeout: float = 30.0) -> None:
        """Start listening; returns once the channels are listened to."""
        self._task = asyncio.create_task(self._listen(), name="pg-listen")
        waiter = asyncio.create_task(self.connected.wait())
        done, _ = await asyncio.wait({self._task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self._task in done:
                self._task.result()  # its error
            raise TimeoutError(f"could not LISTEN on the database within {timeout:g} s")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sender is not None:
            await self._sender.close()
            self._sender = None

    async def notify(self, channel: str, payload: str) -> None:
        """Send one notification (at most ``MAX_PAYLOAD_BYTES``); one retry on a new connection."""
        if _size(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"a notification carries at most {MAX_PAYLOAD_BYTES} bytes, not {_size(payload)}")
        async with self._send_lock:
            for attempt in (1, 2):
                try:
                    if self._sender is None or self._sender.closed:
                        self._sender = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                    await self._sender.execute("SELECT pg_notify(%s, %s)", (channel, payload))
                    return
                except psycopg.OperationalError:
                    self._sender = None
                    if attempt == 2:
                        raise

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as connection:
                    for channel in self._handlers:
                        await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    if self.connected.is_set() or delay > 0.5:
                        self.reconnects += 1
                    self.connected.set()
                    delay = 0.5
                    async for notification in connection.notifies():
                        await self._handle(notification.channel, notification.payload)
            except psycopg.OperationalError as error:
                if not self.connected.is_set() and self.reconnects == 0 and delay == 0.5 and _refused(error):
                    raise  # a wrong URL or password at start: say so rather than retry for ever
                self.connected.clear()
                log.warning("database notifications lost (%s); reconnecting in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    async def _handle(self, channel: str, payload: str) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            return
        try:
            await handler(payload)
        except Exception:
            log.exception("handling a notification on %s failed", channel)


def _refused(error: psycopg.OperationalError) -> bool:
    return "authentication" in str(error) or "does not exist" in str(error)


class EventFeed:
    """The front's view of the workers' calls: each event from ``EVENTS_CHANNEL`` published on
    its in-process bus in the order sent, with the worker's sequence number (the one it has in
    the store, so a client that read a call's events so far skips none it gets live) and marked
    journaled (the worker stored it already). The WebSocket, MCP, notifications and metrics
    follow every call as with one process."""

    def __init__(self, bus: EventBus, read_row: Callable[[int], dict[str, Any] | None]) -> None:
        self._bus = bus
        self._read_row = read_row
        self.published = 0
        self._last_seq: dict[str, int] = {}  # live calls: the seq of the last event republished

    def last_seq(self, call_id: str) -> int:
        """The sequence number of the last event of a live call seen here (0: none)."""
        return self._last_seq.get(call_id, 0)

    async def on_payload(self, payload: str) -> None:
        try:
            items = unpack_events(payload)
        except ValueError as error:
            log.warning("ignored a malformed live event payload: %s", error)
            return
        for item in items:
            raw = await asyncio.to_thread(self._read_row, item) if isinstance(item, int) else item
            if raw is None:
                continue  # deleted since (retention)
            try:
                event = CallEvent.from_dict(raw)
            except EventFormatError as error:
                log.warning("ignored a live event: %s", error)
                continue
            self._bus.republish(replace(event, journaled=True))
            self.published += 1
            if event.type is EventType.CALL_ENDED:
                self._last_seq.pop(event.call_id, None)
            else:
                self._last_seq[event.call_id] = max(event.seq, self._last_seq.get(event.call_id, 0))
