"""The processes of ``serve --workers N`` talk through PostgreSQL (LISTEN/NOTIFY), on a real
server: a worker's store sends its events as it journals them and the front's bus gets them in
order, the half-second windows the store keeps no row of included; a front whose listener lost
its connection publishes the stored events it missed, once each; commands and replies go
round; and the store answers which worker runs which call. Needs PostgreSQL (marked ``postgresql``: scripts/test provides it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from app.calls.events import (
    AudioClassified,
    CallCreated,
    CallEnded,
    CallEvent,
    EventBus,
    HoldProgress,
    IvrStep,
    Subscription,
)
from app.calls.models import CallRequest
from app.clock import utc_now
from app.store import Store
from app.store.live import (
    EVENTS_CHANNEL,
    LISTENER_NAME,
    MAX_PAYLOAD_BYTES,
    EventFeed,
    PgChannels,
    commands_channel,
    libpq_url,
)

pytestmark = [pytest.mark.timeout(60), pytest.mark.postgresql]  # LISTEN/NOTIFY


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_workers_events_reach_the_fronts_bus_in_order(database_url):
    worker_store = Store(database_url, live_events=True)
    front_store = Store(database_url)
    bus = EventBus()
    seen = bus.subscribe()
    feed = EventFeed(bus, front_store.event_by_row, front_store.missed_events)
    channels = PgChannels(database_url, {EVENTS_CHANNEL: feed.on_payload})
    await channels.start()
    try:
        worker_store.create_call("call-a", CallRequest(number="5550001"), "sip_phone", worker=2)
        worker_store.create_call("call-b", CallRequest(number="5550006"), "sip_phone", worker=1)
        assert front_store.live_calls_by_worker() == {1: 1, 2: 1}
        assert front_store.worker_of("call-a") == ("", 2)
        sent = [
            CallEvent("call-a", CallCreated(number="5550001"), seq=1),
            CallEvent("call-b", CallCreated(number="5550006"), seq=2),
            *(CallEvent("call-a", HoldProgress(hold_seconds=float(i)), seq=3 + i) for i in range(300)),
            CallEvent("call-a", AudioClassified(t_start=0.0, t_end=0.5, audio_class="music", confidence=0.9), seq=400),
            CallEvent("call-a", CallEnded(status="cancelled", reason="cancelled"), seq=401),
            CallEvent("unknown-call", HoldProgress(hold_seconds=1.0), seq=402),  # no row: not journaled, not sent
        ]
        await asyncio.to_thread(worker_store.add_events, sent[:150])
        await asyncio.to_thread(worker_store.add_events, sent[150:])
        await _until(lambda: feed.published >= len(sent) - 1)
        received = _drain(seen)
        assert [(e.call_id, e.type, e.data) for e in received] == [(e.call_id, e.type, e.data) for e in sent[:-1]]
        assert all(e.journaled for e in received)  # the front's writer leaves them alone
        assert [e.seq for e in received] == [e.seq for e in sent[:-1]]  # the worker's numbers, as stored
        assert feed.last_seq("call-b") == 2 and feed.last_seq("call-a") == 401  # ended: nothing after it is published
        # The row followed the events; the call no longer counts as live on its worker.
        assert front_store.get_call("call-a").status.value == "cancelled"
        assert front_store.live_calls_by_worker() == {1: 1}
        assert front_store.worker_of("call-a") is None
        assert [c.id for c in front_store.live_calls()] == ["call-b"]
    finally:
        await channels.stop()
        worker_store.close()
        front_store.close()


def _drain(subscription: Subscription) -> list[CallEvent]:
    received = []
    while True:
        try:
            event = subscription.get_nowait()
        except asyncio.QueueEmpty:
            return received
        assert event is not None
        received.append(event)


@asynccontextmanager
async def _database_refusing_connections(url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """The test's database takes no new connection (those open stay) until the block ends: a
    listener that lost its connection stays down for as long, whatever its reconnection delay."""
    admin = await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True)
    name = sql.Identifier(admin.info.dbname)
    try:
        await admin.execute(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT 0").format(name))
        yield admin
    finally:
        await admin.execute(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT -1").format(name))
        await admin.close()


async def _cut_listener(admin: psycopg.AsyncConnection, channels: PgChannels) -> None:
    """End the listener's server process (found by its pid, and its name to be sure) and wait
    until it has noticed."""
    cursor = await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s AND application_name = %s",
        (channels.listener_pid, LISTENER_NAME),
    )
    assert await cursor.fetchall() == [(True,)]
    await _until(lambda: not channels.connected.is_set())


class Front:
    """A front's side of the live events: a feed onto a bus, and its listener. ``on_listening``
    writes ``self.meanwhile`` (once) right after the LISTENs of a reconnection, before the replay
    reads the store: events committed then come both live and in the replay."""

    def __init__(self, url: str, worker_store: Store) -> None:
        self.store = Store(url)
        self.bus = EventBus()
        self.seen = self.bus.subscribe()
        self.feed = EventFeed(self.bus, self.store.event_by_row, self.store.missed_events)
        self.meanwhile: list[CallEvent] = []
        self._worker_store = worker_store
        self.channels = PgChannels(url, {EVENTS_CHANNEL: self.feed.on_payload}, on_listening=self._on_listening)

    async def _on_listening(self) -> None:
        if self.meanwhile:
            await asyncio.to_thread(self._worker_store.add_events, self.meanwhile)
            self.meanwhile = []
        await self.feed.on_listening()

    async def close(self) -> None:
        await self.channels.stop()
        self.store.close()


async def _write(store: Store, events: list[CallEvent]) -> None:
    assert await asyncio.to_thread(store.add_events, events) == []


def _window(t: float) -> AudioClassified:
    return AudioClassified(t_start=t, t_end=t + 0.5, audio_class="music", confidence=0.9)


def _seqs(events: list[CallEvent]) -> dict[str, list[int]]:
    by_call: dict[str, list[int]] = {}
    for event in events:
        by_call.setdefault(event.call_id, []).append(event.seq)
    return by_call


async def test_a_front_publishes_the_stored_events_it_missed_while_its_listener_was_down_once_each(database_url):
    worker = Store(database_url, live_events=True)
    front = Front(database_url, worker)
    await front.channels.start()
    try:
        for call_id in ("call-a", "call-b"):
            worker.create_call(call_id, CallRequest(number="5550001"), "sip_phone", worker=1)
        big = IvrStep(step_id="menu", description="x" * MAX_PAYLOAD_BYTES)  # goes by its row
        # One worker's bus numbers the events of all its calls.
        before = [
            CallEvent("call-a", CallCreated(number="5550001"), seq=1),
            CallEvent("call-b", CallCreated(number="5550001"), seq=2),
            CallEvent("call-a", HoldProgress(hold_seconds=1.0), seq=3),
            CallEvent("call-b", HoldProgress(hold_seconds=1.0), seq=4),
        ]
        during = [
            CallEvent("call-a", HoldProgress(hold_seconds=2.0), seq=5),
            CallEvent("call-a", _window(0.0), seq=6),  # no row: lost with the notification
            CallEvent("call-b", HoldProgress(hold_seconds=2.0), seq=7),
            CallEvent("call-a", CallEnded(status="cancelled", reason="cancelled"), seq=8),
        ]
        front.meanwhile = [
            CallEvent("call-b", _window(1.0), seq=9),  # no row; live only, after 11 was replayed: too late
            CallEvent("call-b", big, seq=10),
            CallEvent("call-b", HoldProgress(hold_seconds=3.0), seq=11),
        ]
        after = [
            CallEvent("call-b", _window(2.0), seq=12),  # a window newer than all: published
            CallEvent("call-b", CallEnded(status="cancelled", reason="cancelled"), seq=13),
        ]
        await _write(worker, before)
        await _until(lambda: front.feed.published == 4)

        async with _database_refusing_connections(database_url) as admin:
            await _cut_listener(admin, front.channels)
            await _write(worker, during)
            await asyncio.sleep(0.8)  # past the first reconnection attempt (0.5 s), refused
            assert not front.channels.connected.is_set() and front.feed.published == 4
        await _until(lambda: front.channels.connected.is_set(), timeout=15.0)
        assert front.channels.reconnects == 1 and front.meanwhile == []
        await _write(worker, after)
        await _until(lambda: front.feed.last_seq("call-b") == 13)

        received = _drain(front.seen)
        assert [e.seq for e in received] == [1, 2, 3, 4, 5, 7, 8, 10, 11, 12, 13]
        assert all(e.journaled for e in received)
        assert front.feed.replayed == 5  # 5, 7, 8, 10, 11: read from the store once listening again
        assert front.feed.repeats == 3  # 9, 10, 11 also came live: skipped
        # Every stored event of each call exactly once, in its order.
        stored = {call_id: [e["seq"] for e in front.store.get_call(call_id).events] for call_id in ("call-a", "call-b")}
        assert stored == {"call-a": [1, 3, 5, 8], "call-b": [2, 4, 7, 10, 11, 13]}
        assert _seqs([e for e in received if e.seq != 12]) == stored
        assert [e.data for e in received if e.seq == 10] == [big]
    finally:
        await front.close()
        worker.close()


async def test_a_call_that_began_while_the_front_was_not_listening_is_published_from_its_first_event(database_url):
    worker = Store(database_url, live_events=True)
    front = Front(database_url, worker)
    await front.channels.start()
    try:
        ended = CallEnded(status="completed", reason="bridged")
        for call_id in ("done", "old"):
            worker.create_call(call_id, CallRequest(number="5550002"), "sip_phone", worker=1)
        await _write(
            worker,
            [
                CallEvent("done", CallCreated(number="5550002", company="done"), seq=1),
                CallEvent("done", ended, seq=2),  # ended just before: not published again
                CallEvent("old", CallCreated(number="5550002", company="old"), seq=3),
            ],
        )
        await _until(lambda: front.feed.published == 3)

        async with _database_refusing_connections(database_url) as admin:
            await _cut_listener(admin, front.channels)
            for call_id in ("new", "brief"):
                worker.create_call(call_id, CallRequest(number="5550002"), "sip_phone", worker=2)
            await _write(
                worker,
                [
                    CallEvent("new", CallCreated(number="5550002", company="new"), seq=4),
                    CallEvent("brief", CallCreated(number="5550002", company="brief"), seq=5),
                    CallEvent("new", HoldProgress(hold_seconds=1.0), seq=6),
                    CallEvent("brief", ended, seq=7),  # began and ended meanwhile
                    CallEvent("old", HoldProgress(hold_seconds=1.0), seq=8),
                ],
            )
        await _until(lambda: front.channels.connected.is_set(), timeout=15.0)
        await _write(worker, [CallEvent("new", HoldProgress(hold_seconds=2.0), seq=9)])
        await _until(lambda: front.feed.last_seq("new") == 9)

        received = _drain(front.seen)
        assert _seqs(received) == {"done": [1, 2], "old": [3, 8], "new": [4, 6, 9], "brief": [5, 7]}
        assert [e.type.value for e in received if e.call_id == "brief"] == ["CALL_CREATED", "CALL_ENDED"]
        assert front.feed.replayed == 5 and front.feed.repeats == 0
        assert front.feed.last_seq("brief") == 7  # remembered as ended: its live copies would be skipped
    finally:
        await front.close()
        worker.close()


async def test_a_failing_catch_up_is_logged_and_the_notifications_still_come(database_url, caplog):
    Store(database_url).close()  # the schema
    got: list[str] = []

    async def handler(payload: str) -> None:
        got.append(payload)

    async def failing() -> None:
        raise RuntimeError("no catching up today")

    listener = PgChannels(database_url, {commands_channel(1): handler}, on_listening=failing)
    sender = PgChannels(database_url, {})
    await listener.start()
    try:
        await sender.notify(commands_channel(1), "still heard")
        await _until(lambda: got == ["still heard"])
        assert "the on_listening hook failed" in caplog.text and "no catching up today" in caplog.text
    finally:
        await asyncio.gather(listener.stop(), sender.stop())


def test_the_store_gives_a_follower_the_events_it_missed_and_only_those(database_url):
    store = Store(database_url)
    try:
        outage = utc_now() - timedelta(seconds=30)
        long_ago = outage - timedelta(hours=1)
        for call_id, worker in (("followed", 1), ("seen-ended", 1), ("new", 2), ("old-done", 1), ("front-only", None)):
            store.create_call(call_id, CallRequest(number="5550003"), "sip_phone", worker=worker)
        store.add_events(
            [
                CallEvent("old-done", CallCreated(number="5550003"), at=long_ago.isoformat(), seq=1),
                CallEvent("old-done", CallEnded(status="failed", reason="error"), at=long_ago.isoformat(), seq=2),
                CallEvent("followed", CallCreated(number="5550003"), at=long_ago.isoformat(), seq=3),
                CallEvent("followed", HoldProgress(hold_seconds=1.0), at=long_ago.isoformat(), seq=4),
                CallEvent("seen-ended", CallEnded(status="failed", reason="error"), at=outage.isoformat(), seq=5),
                CallEvent("new", CallCreated(number="5550003"), at=outage.isoformat(), seq=6),
                CallEvent("followed", HoldProgress(hold_seconds=2.0), at=outage.isoformat(), seq=7),
                CallEvent("front-only", CallCreated(number="5550003"), at=outage.isoformat(), seq=8),
                CallEvent("new", HoldProgress(hold_seconds=1.0), at=outage.isoformat(), seq=9),
                CallEvent("followed", HoldProgress(hold_seconds=3.0), at=outage.isoformat(), seq=10),
            ]
        )
        since = outage - timedelta(seconds=1)
        missed = store.missed_events({"followed": 4}, since, ended={"seen-ended"})
        assert [(e["call_id"], e["seq"]) for e in missed] == [("new", 6), ("followed", 7), ("new", 9), ("followed", 10)]
        first_missed = CallEvent.from_dict(missed[0])
        assert first_missed == CallEvent("new", CallCreated(number="5550003"), at=missed[0]["at"], seq=6)
        # A page at a time: the next asks from where the last ended.
        first = store.missed_events({"followed": 4}, since, ended={"seen-ended"}, limit=2)
        assert [(e["call_id"], e["seq"]) for e in first] == [("followed", 7), ("followed", 10)]
        rest = store.missed_events({"followed": 10}, since, ended={"seen-ended"}, limit=2)
        assert [(e["call_id"], e["seq"]) for e in rest] == [("new", 6), ("new", 9)]
        # A call followed is asked from its number, however old its events; a call the follower
        # saw end is asked too unless it says so; a call no worker runs, or ended before, never.
        assert [e["seq"] for e in store.missed_events({"followed": 3}, since)] == [4, 5, 6, 7, 9, 10]
    finally:
        store.close()


async def test_a_notification_reaches_the_listener_of_its_channel_only(database_url):
    Store(database_url).close()  # the schema
    got: dict[str, list[str]] = {"w1": [], "w2": []}

    async def to(name):
        async def handler(payload: str) -> None:
            got[name].append(payload)

        return handler

    worker1 = PgChannels(database_url, {commands_channel(1): await to("w1")})
    worker2 = PgChannels(database_url, {commands_channel(2): await to("w2")})
    front = PgChannels(database_url, {})
    await asyncio.gather(worker1.start(), worker2.start())
    try:
        for i in range(5):
            await front.notify(commands_channel(2), f"command {i}")
        await front.notify(commands_channel(1), "for one")
        await _until(lambda: len(got["w2"]) == 5 and got["w1"])
        assert got == {"w1": ["for one"], "w2": [f"command {i}" for i in range(5)]}
        with pytest.raises(ValueError, match="at most"):
            await front.notify(commands_channel(1), "x" * 8000)
    finally:
        await asyncio.gather(worker1.stop(), worker2.stop(), front.stop())


def test_hosts_sharing_a_database_count_and_end_only_their_own_calls(database_url):
    store = Store(database_url)
    try:
        store.create_call("a1", CallRequest(number="5550001"), "sip_phone", worker=1, node="hosta")
        store.create_call("b1", CallRequest(number="5550001"), "sip_phone", worker=1, node="hostb")
        store.create_call("b2", CallRequest(number="5550001"), "sip_phone", worker=2, node="hostb")
        assert store.live_calls_by_worker("hosta") == {1: 1}
        assert store.live_calls_by_worker("hostb") == {1: 1, 2: 1}
        assert store.worker_of("b2") == ("hostb", 2)
        assert [c.id for c in store.live_calls(1, "hostb")] == ["b1"]
        # Host a restarts: its unfinished call is marked, host b's calls run on.
        assert store.mark_unfinished_calls_failed("app_restarted", "restarted", node="hosta") == 1
        assert store.get_call("a1").status.value == "failed" and store.get_call("a1").node == "hosta"
        assert sorted(c.id for c in store.live_calls()) == ["b1", "b2"]
    finally:
        store.close()


def test_live_events_are_refused_on_sqlite(tmp_path):
    with pytest.raises(ValueError, match="PostgreSQL"):
        Store(f"sqlite:///{tmp_path}/x.db", live_events=True)
