"""The processes of ``serve --workers N`` talk through PostgreSQL (LISTEN/NOTIFY), on a real
server: a worker's store sends its events as it journals them and the front's bus gets them in
order, the half-second windows the store keeps no row of included; commands and replies go
round; and the store answers which worker runs which call. Needs HOLDSLAYER_TEST_DATABASE."""

from __future__ import annotations

import asyncio

import pytest

from app.calls.events import AudioClassified, CallCreated, CallEnded, CallEvent, EventBus, HoldProgress
from app.calls.models import CallRequest
from app.store import Store
from app.store.live import EVENTS_CHANNEL, EventFeed, PgChannels, commands_channel

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pg_url(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL: set HOLDSLAYER_TEST_DATABASE (scripts/test-postgres)")
    return database_url


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_workers_events_reach_the_fronts_bus_in_order(pg_url):
    worker_store = Store(pg_url, live_events=True)
    front_store = Store(pg_url)
    bus = EventBus()
    seen = bus.subscribe()
    feed = EventFeed(bus, front_store.event_by_row)
    channels = PgChannels(pg_url, {EVENTS_CHANNEL: feed.on_payload})
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
        received = []
        while True:
            try:
                received.append(seen.get_nowait())
            except asyncio.QueueEmpty:
                break
        assert [(e.call_id, e.type, e.data) for e in received] == [(e.call_id, e.type, e.data) for e in sent[:-1]]
        assert all(e.journaled for e in received)  # the front's writer leaves them alone
        assert [e.seq for e in received] == [e.seq for e in sent[:-1]]  # the worker's numbers, as stored
        assert feed.last_seq("call-b") == 2 and feed.last_seq("call-a") == 0  # call-a ended
        # The row followed the events; the call no longer counts as live on its worker.
        assert front_store.get_call("call-a").status.value == "cancelled"
        assert front_store.live_calls_by_worker() == {1: 1}
        assert front_store.worker_of("call-a") is None
        assert [c.id for c in front_store.live_calls()] == ["call-b"]
    finally:
        await channels.stop()
        worker_store.close()
        front_store.close()


async def test_a_notification_reaches_the_listener_of_its_channel_only(pg_url):
    Store(pg_url).close()  # the schema
    got: dict[str, list[str]] = {"w1": [], "w2": []}

    async def to(name):
        async def handler(payload: str) -> None:
            got[name].append(payload)

        return handler

    worker1 = PgChannels(pg_url, {commands_channel(1): await to("w1")})
    worker2 = PgChannels(pg_url, {commands_channel(2): await to("w2")})
    front = PgChannels(pg_url, {})
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
