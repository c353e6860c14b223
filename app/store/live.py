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
A listener that loses its connection reconnects, and what was sent meanwhile never reaches it.
The workers' events are stored, though: once the front listens again, before it takes the next
notification, its ``EventFeed`` publishes from the database every stored event it missed
(``PgChannels``' ``on_listening`` hook; ``Store.missed_events``), each call's in order, ended
calls and calls begun meanwhile included, and skips the live copies of those that come in too.
Not replayed: the half-second AUDIO_CLASSIFIED windows sent meanwhile (the store keeps no row of
them, only the classification segments they make, unless ``store_classification_windows``), and
the commands, replies and heartbeats (a command unanswered times out; heartbeats come every
second).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from app.calls.events import CallEvent, EventBus, EventFormatError, EventType
from app.clock import utc_now
from app.store.db import database_url

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "holdslayer_events"
REPLIES_CHANNEL = "holdslayer_replies"
WORKERS_CHANNEL = "holdslayer_workers"
# PostgreSQL refuses a payload of 8000 bytes or more; keep a margin.
MAX_PAYLOAD_BYTES = 7900
_RECONNECT_MAX_SECONDS = 10.0
# The connections' names in pg_stat_activity.
LISTENER_NAME = "holdslayer-listen"
SENDER_NAME = "holdslayer-notify"


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
    and NOTIFY on any; two connections of its own, reconnected when they drop.

    ``on_listening`` runs each time the listener has issued its LISTENs, the first time and
    after every reconnection, before any notification is handled: what was sent while nobody
    listened can be caught up on first (``EventFeed.on_listening``). Its failure is logged, and
    the notifications are handled all the same."""

    def __init__(
        self, url: str, handlers: Mapping[str, Handler], *, on_listening: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._url = libpq_url(url)
        self._handlers = dict(handlers)
        self._on_listening = on_listening
        self._task: asyncio.Task[None] | None = None
        self._sender: psycopg.AsyncConnection | None = None
        self._send_lock = asyncio.Lock()
        self.connected = asyncio.Event()  # the listener is up (and its on_listening done)
        self.reconnects = 0
        self.listener_pid: int | None = None  # its server process (pg_stat_activity.pid)

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
                        self._sender = await psycopg.AsyncConnection.connect(
                            self._url, autocommit=True, application_name=SENDER_NAME
                        )
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
                connect = psycopg.AsyncConnection.connect(self._url, autocommit=True, application_name=LISTENER_NAME)
                async with await connect as connection:
                    for channel in self._handlers:
                        await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.listener_pid = connection.info.backend_pid
                    if self.connected.is_set() or delay > 0.5:
                        self.reconnects += 1
                    # Notifications arriving meanwhile wait in the connection, behind what it catches up on.
                    await self._listening()
                    self.connected.set()
                    delay = 0.5
                    async for notification in connection.notifies():
                        await self._handle(notification.channel, notification.payload)
            except psycopg.OperationalError as error:
                if not self.connected.is_set() and self.reconnects == 0 and delay == 0.5 and _refused(error):
                    raise  # a wrong URL or password at start: say so rather than retry for ever
                self.connected.clear()
                self.listener_pid = None
                log.warning("database notifications lost (%s); reconnecting in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    async def _listening(self) -> None:
        if self._on_listening is None:
            return
        try:
            await self._on_listening()
        except Exception:
            log.exception("the on_listening hook failed; handling the notifications all the same")

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


# How long before the last moment its listener was known up a front looks for what it missed:
# covers the time between an event's stamp and its commit, and the clocks of other hosts.
REPLAY_MARGIN = timedelta(seconds=60)
# How long a front remembers the calls it saw end (counted back from when its listener was last
# up): well beyond the margin, so that a replay never takes one of them for a call it never saw.
ENDED_MEMORY = timedelta(minutes=10)
REPLAY_PAGE = 1000  # a replay reads the store this many events at a time

# (calls followed -> seq of the last event had, since, calls seen to end, limit) -> events (JSON)
MissedReader = Callable[[Mapping[str, int], datetime, Collection[str], int], list[dict[str, Any]]]


class CallPositions:
    """How far the events of each worker call have been published here (no I/O): the seq of the
    last event of every call followed, and of the calls seen to end lately.

    Every event of a call, the half-second windows the store keeps no row of included, is
    numbered by the bus of the one process that runs it, one after the other: a new event is
    always numbered after the last one published. So an event is new when its number is higher,
    and its call has not ended; what is not new is a live copy of an event a replay of the store
    published already, or a window committed between the LISTEN and the replay's read that
    comes after a later event (dropped, as out of order: what it said is in the segments)."""

    def __init__(self) -> None:
        self._following: dict[str, int] = {}
        self._ended: dict[str, tuple[int, datetime]] = {}  # call -> (seq of its end, when it was seen), oldest first

    def last(self, call_id: str) -> int:
        """The seq of the last event of the call published here (0: none)."""
        if call_id in self._ended:
            return self._ended[call_id][0]
        return self._following.get(call_id, 0)

    def is_new(self, call_id: str, seq: int) -> bool:
        """Not published here yet (nor older than one that was)."""
        return call_id not in self._ended and seq > self._following.get(call_id, 0)

    def note(self, call_id: str, seq: int, *, ended_at: datetime | None = None) -> None:
        """An event of the call was published (or passed over for good) here; ``ended_at``: it
        ended the call, seen then."""
        if call_id in self._ended:
            return
        if ended_at is not None:
            self._following.pop(call_id, None)
            self._ended[call_id] = (seq, ended_at)
        else:
            self._following[call_id] = max(seq, self._following.get(call_id, 0))

    def forget_ended_before(self, moment: datetime) -> None:
        """Forget the calls seen to end before ``moment``, oldest first."""
        while self._ended:
            call_id, (_, seen_at) = next(iter(self._ended.items()))
            if seen_at >= moment:
                return
            del self._ended[call_id]

    def following(self) -> dict[str, int]:
        """The calls followed and the seq of the last event of each (a copy)."""
        return dict(self._following)

    def ended(self) -> set[str]:
        """The calls seen to end and still remembered (a copy)."""
        return set(self._ended)


class EventFeed:
    """The front's view of the workers' calls: each event from ``EVENTS_CHANNEL`` published on
    its in-process bus in the order sent, with the worker's sequence number (the one it has in
    the store, so a client that read a call's events so far skips none it gets live) and marked
    journaled (the worker stored it already). The WebSocket, MCP, notifications and metrics
    follow every call as with one process.

    When its listener reconnects, ``on_listening`` publishes first what was stored while it was
    away (``read_missed``: ``Store.missed_events``), and live copies of events published already
    are skipped (``CallPositions``): each event of a call once, in order."""

    def __init__(
        self,
        bus: EventBus,
        read_row: Callable[[int], dict[str, Any] | None],
        read_missed: MissedReader,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._bus = bus
        self._read_row = read_row
        self._read_missed = read_missed
        self._now = now
        self._positions = CallPositions()
        self._heard_at: datetime | None = None  # the last moment the listener was known up
        self.published = 0
        self.replayed = 0  # of them, read from the store after a reconnection
        self.repeats = 0  # live events skipped: published already by a replay (or older than one it published)

    def last_seq(self, call_id: str) -> int:
        """The sequence number of the last event of a worker call published here (0: none)."""
        return self._positions.last(call_id)

    async def on_payload(self, payload: str) -> None:
        self._heard_at = self._now()
        self._positions.forget_ended_before(self._heard_at - ENDED_MEMORY)
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
            if not self._publish(event, journaled=True):
                self.repeats += 1

    def publish_own(self, event: CallEvent) -> bool:
        """Publish an event the front makes itself for a worker's call (the end of a call whose
        worker died): not journaled, so that the front's writer stores it, and counted as
        published, so that a replay does not publish it again. False if the call had ended."""
        return self._publish(event, journaled=False)

    async def on_listening(self) -> None:
        """The listener has issued its LISTENs (``PgChannels(on_listening=...)``): after a
        reconnection, publish the stored events missed meanwhile, before the next notification.
        The first time there is nothing to catch up on: no call was followed before."""
        heard_at, self._heard_at = self._heard_at, self._now()
        if heard_at is None:
            return
        since = heard_at - REPLAY_MARGIN
        replayed = self.replayed
        while True:
            following, ended = self._positions.following(), self._positions.ended()
            rows = await asyncio.to_thread(self._read_missed, following, since, ended, REPLAY_PAGE)
            moved = sum(self._replay(raw) for raw in rows)
            if len(rows) < REPLAY_PAGE or not moved:
                break
        if self.replayed > replayed:
            log.info("published %d stored events missed while not listening", self.replayed - replayed)

    def _replay(self, raw: dict[str, Any]) -> bool:
        """Publish one stored event; whether a call's position moved (the next page starts after it)."""
        try:
            event = CallEvent.from_dict(raw)
        except EventFormatError as error:
            log.warning("ignored a stored event: %s", error)
            # Passed over for good, so that the next page starts after it.
            call_id, seq = str(raw["call_id"]), int(raw["seq"])
            moved = self._positions.is_new(call_id, seq)
            self._positions.note(call_id, seq)
            return moved
        if not self._publish(event, journaled=True):
            return False
        self.replayed += 1
        return True

    def _publish(self, event: CallEvent, *, journaled: bool) -> bool:
        if not self._positions.is_new(event.call_id, event.seq):
            return False
        self._bus.republish(replace(event, journaled=journaled))
        ends = event.type is EventType.CALL_ENDED
        self._positions.note(event.call_id, event.seq, ended_at=self._now() if ends else None)
        self.published += 1
        return True
