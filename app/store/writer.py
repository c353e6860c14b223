"""Journals every event on the bus into the store, in publish order.

The store is the only writer of a call's row after its creation, and it writes it from the
events: a CALL_STATUS sets the status (and the time it was reached), HUMAN_DETECTED the hold
time, RECORDING_SAVED the recording, CALL_ENDED the final status, reason and end time
(``call_row_changes``). AUDIO_CLASSIFIED events also become ``classifications`` rows (see
``Store.add_events``).

Contract with publishers: ``Store.create_call`` has returned before the first event of that call
is published. An event whose call has no row is not journaled (counted in ``skipped`` and logged
once per call).

Readers of the store who learn of an event from the bus (a WebSocket client that re-reads the call
on CALL_ENDED) can wait for it to be written first: ``wait_stored(seq)``.
"""

from __future__ import annotations

import asyncio
import logging

from app.calls.events import CallEvent, EventBus, EventType, Subscription
from app.store.repository import Store, UnknownCallError

log = logging.getLogger(__name__)

_EMPTY = object()
# What a held call publishes all the time: a window classified every 0.5 s, the hold's progress
# every 2 s. A batch of only these waits ``linger`` seconds for more before it is written, so that
# many held calls share a transaction (one each, 20 calls made 50 small transactions a second:
# the writer thread's SQLite work was an eighth of the app's CPU). Any other event is written
# at once, with whatever waits with it.
PERIODIC = frozenset({EventType.AUDIO_CLASSIFIED, EventType.HOLD_PROGRESS})
LINGER_SECONDS = 0.25


class StoreWriter:
    def __init__(self, store: Store, bus: EventBus, *, batch_size: int = 200, linger: float = LINGER_SECONDS):
        self._store = store
        self._bus = bus
        self._batch_size = batch_size
        self._linger = linger
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._warned_calls: set[str] = set()
        self.journaled = 0
        self.skipped = 0  # events of calls with no row
        self.failed = 0  # events the database refused
        self.stored_seq = 0  # every event up to this bus seq has been written (or given up on)
        self._stored = asyncio.Event()  # set, and replaced, whenever stored_seq moves

    @property
    def dropped(self) -> int:
        """Events lost because the writer fell more than its queue size behind."""
        return 0 if self._subscription is None else self._subscription.dropped

    async def wait_stored(self, seq: int, timeout: float) -> bool:
        """Wait until the event of bus sequence number ``seq`` is in the store; False after
        ``timeout`` seconds (a writer that is stopped or stuck never holds a reader for long)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.stored_seq < seq:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._stored.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def start(self) -> None:
        """Subscribe now (every event published from here on is journaled) and start writing."""
        if self._task is not None:
            raise RuntimeError("StoreWriter already started")
        self._stopping = False
        self._subscription = self._bus.subscribe(lambda event: not event.journaled)
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def stop(self) -> None:
        """Stop after journaling everything published before this call."""
        if self._task is None or self._subscription is None:
            return
        self._stopping = True
        self._subscription.close()  # queues an end marker behind the pending events
        try:
            await self._task
        finally:
            self._task = None

    async def _run(self) -> None:
        assert self._subscription is not None
        loop = asyncio.get_running_loop()
        batch: list[CallEvent] = []
        batch_started, only_periodic = 0.0, True
        while True:
            event = self._take_nowait()
            if event is _EMPTY:
                lingering = batch_started + self._linger - loop.time()
                if batch and lingering > 0 and only_periodic and not self._stopping:
                    event = await self._next_within(lingering)
                    if event is _EMPTY:
                        continue  # the linger is over: written on the next turn
                elif batch:
                    await self._write(batch)
                    batch = []
                    continue
                elif self._stopping:
                    return  # the end marker did not fit in a full queue; everything is written
                else:
                    event = await self._subscription.get()
            if event is None:
                if batch:
                    await self._write(batch)
                return
            if not batch:
                batch_started, only_periodic = loop.time(), True
            only_periodic = only_periodic and event.type in PERIODIC
            batch.append(event)
            if len(batch) >= self._batch_size:
                await self._write(batch)
                batch = []

    async def _next_within(self, seconds: float) -> CallEvent | None | object:
        """The next event, or ``_EMPTY`` if none comes within ``seconds`` (nothing is lost: a
        cancelled ``Queue.get`` takes no item)."""
        assert self._subscription is not None
        try:
            return await asyncio.wait_for(self._subscription.get(), seconds)
        except TimeoutError:
            return _EMPTY

    def _take_nowait(self) -> CallEvent | None | object:
        assert self._subscription is not None
        try:
            return self._subscription.get_nowait()
        except asyncio.QueueEmpty:
            return _EMPTY

    async def _write(self, batch: list[CallEvent]) -> None:
        failed = 0
        try:
            skipped = await asyncio.to_thread(self._store.add_events, batch)
        except Exception:
            log.exception("journaling %d events failed; retrying one by one", len(batch))
            skipped, failed = await asyncio.to_thread(self._write_each, batch)
        self.journaled += len(batch) - len(skipped) - failed
        self.failed += failed
        self._note_skipped(skipped)
        self.stored_seq = max(self.stored_seq, batch[-1].seq)
        self._stored.set()
        self._stored = asyncio.Event()

    def _write_each(self, batch: list[CallEvent]) -> tuple[list[CallEvent], int]:
        """Isolate the event(s) the database refuses so that the rest of the batch is kept."""
        skipped, failed = [], 0
        for event in batch:
            try:
                self._store.add_event(event)
            except UnknownCallError:
                skipped.append(event)
            except Exception:
                log.exception("event %s #%d of call %s could not be journaled", event.type.value, event.seq, event.call_id)
                failed += 1
        return skipped, failed

    def _note_skipped(self, skipped: list[CallEvent]) -> None:
        self.skipped += len(skipped)
        for event in skipped:
            if event.call_id not in self._warned_calls:
                self._warned_calls.add(event.call_id)
                log.warning("events of unknown call %r are not journaled (first: %s)", event.call_id, event.type.value)
