"""The front's feed of the workers' events (``app.store.live.EventFeed``) without a database:
which events count as new (``CallPositions``), and what a reconnection's replay asks the store
and publishes. The real thing, over PostgreSQL: tests/component/test_live_channels.py."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from app.calls.events import AudioClassified, CallCreated, CallEnded, CallEvent, EventBus, HoldProgress, Subscription
from app.store.live import ENDED_MEMORY, REPLAY_MARGIN, REPLAY_PAGE, CallPositions, EventFeed, pack_events

ENDED = CallEnded(status="cancelled", reason="cancelled")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def _event(call_id: str, seq: int, data=None) -> CallEvent:
    return CallEvent(call_id, data or HoldProgress(hold_seconds=float(seq)), seq=seq)


def _window(call_id: str, seq: int) -> CallEvent:
    return _event(call_id, seq, AudioClassified(t_start=0.0, t_end=0.5, audio_class="music", confidence=1.0))


def _payload(*events: CallEvent) -> str:
    [payload] = pack_events([(event.to_dict(), None) for event in events])
    return payload


class FakeStore:
    """What a replay reads, asked like ``Store.missed_events``: every stored event (no window)
    of a call not seen to end, numbered after the one followed (``since`` aside)."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self.asked: list[tuple[dict[str, int], datetime, set[str], int]] = []

    def missed(self, following: Mapping[str, int], since: datetime, ended: Collection[str], limit: int) -> list[dict[str, Any]]:
        self.asked.append((dict(following), since, set(ended), limit))
        stored = [e for e in self.events if not isinstance(e.data, AudioClassified)]
        return [e.to_dict() for e in stored if e.call_id not in ended and e.seq > following.get(e.call_id, 0)][:limit]


class Front:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.time = T0
        bus = EventBus()
        self._seen: Subscription = bus.subscribe()
        self.feed = EventFeed(bus, lambda row: None, self.store.missed, now=lambda: self.time)

    def received(self) -> list[CallEvent]:
        out = []
        while True:
            try:
                event = self._seen.get_nowait()
            except asyncio.QueueEmpty:
                return out
            assert event is not None
            out.append(event)


def test_an_event_is_new_when_numbered_after_the_last_one_of_its_call_and_the_call_has_not_ended():
    positions = CallPositions()
    assert positions.is_new("a", 1) and positions.last("a") == 0
    positions.note("a", 5)
    assert not positions.is_new("a", 5) and not positions.is_new("a", 4)
    assert positions.is_new("a", 6) and positions.is_new("b", 1)  # each call its own
    positions.note("a", 3)  # an older one passed over: the position does not go back
    assert positions.last("a") == 5
    positions.note("a", 7, ended_at=T0)
    assert positions.last("a") == 7 and not positions.is_new("a", 8)  # nothing after the end
    assert positions.following() == {} and positions.ended() == {"a"}
    positions.note("a", 9)  # too late for an ended call: it stays ended
    assert positions.following() == {} and positions.last("a") == 7


def test_calls_seen_to_end_are_forgotten_oldest_first():
    positions = CallPositions()
    positions.note("a", 1, ended_at=T0)
    positions.note("b", 2, ended_at=T0 + timedelta(seconds=10))
    positions.note("c", 3)
    positions.forget_ended_before(T0 + timedelta(seconds=5))
    assert positions.ended() == {"b"} and positions.is_new("a", 1)
    positions.forget_ended_before(T0 + timedelta(seconds=15))
    assert positions.ended() == set() and positions.following() == {"c": 3}


async def test_the_first_listen_replays_nothing_and_a_reconnection_publishes_what_was_missed_once():
    front = Front()
    await front.feed.on_listening()
    assert front.store.asked == []  # nothing was followed before the first LISTEN

    await front.feed.on_payload(_payload(_event("a", 1), _event("a", 2)))
    heard_at = front.time
    # The listener is down; the worker stores 3, 4 and 6 meanwhile (the window 5 has no row).
    front.store.events = [_event("a", 1), _event("a", 2), _event("a", 3), _event("b", 4, CallCreated(number="1"))]
    front.store.events += [_window("a", 5), _event("a", 6)]
    front.time += timedelta(seconds=30)
    await front.feed.on_listening()
    assert front.store.asked == [({"a": 2}, heard_at - REPLAY_MARGIN, set(), REPLAY_PAGE)]
    # Live copies of what the replay published, and a window older than the last published: skipped.
    await front.feed.on_payload(_payload(_event("a", 3), _event("b", 4, CallCreated(number="1")), _window("a", 5)))
    await front.feed.on_payload(_payload(_event("a", 6), _window("a", 7), _event("b", 8)))
    received = front.received()
    assert [(e.call_id, e.seq) for e in received] == [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("a", 6), ("a", 7), ("b", 8)]
    assert all(e.journaled for e in received)
    assert (front.feed.published, front.feed.replayed, front.feed.repeats) == (7, 3, 4)


async def test_a_replay_reads_page_after_page_from_where_the_last_one_ended():
    count = 2 * REPLAY_PAGE + 5
    front = Front()
    await front.feed.on_listening()
    await front.feed.on_payload(_payload(_event("a", 1)))
    front.store.events = [_event("a", seq) for seq in range(1, count + 1)]
    await front.feed.on_listening()
    assert [asked[0] for asked in front.store.asked] == [{"a": 1}, {"a": REPLAY_PAGE + 1}, {"a": 2 * REPLAY_PAGE + 1}]
    assert [e.seq for e in front.received()] == list(range(1, count + 1))
    assert front.feed.replayed == count - 1


async def test_a_stored_event_this_version_cannot_read_is_passed_over(monkeypatch):
    monkeypatch.setattr("app.store.live.REPLAY_PAGE", 1)  # the next page starts after it
    unreadable = {"type": "FROM_THE_FUTURE", "call_id": "a", "data": {}, "at": T0.isoformat(), "seq": 2}
    stored = [_event("a", 1).to_dict(), unreadable, _event("a", 3).to_dict()]
    asked: list[dict[str, int]] = []

    def missed(following: Mapping[str, int], since: datetime, ended: Collection[str], limit: int) -> list[dict[str, Any]]:
        asked.append(dict(following))
        return [row for row in stored if row["seq"] > following.get("a", 0)][:limit]

    bus = EventBus()
    seen = bus.subscribe()
    feed = EventFeed(bus, lambda row: None, missed)
    await feed.on_listening()
    await feed.on_payload(_payload(_event("a", 1)))
    await feed.on_listening()
    assert asked == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert [seen.get_nowait().seq for _ in range(2)] == [1, 3] and feed.last_seq("a") == 3


async def test_calls_seen_to_end_are_not_replayed_and_the_fronts_own_end_counts_as_published():
    front = Front()
    await front.feed.on_listening()
    await front.feed.on_payload(_payload(_event("done", 1), _event("done", 2, ENDED), _event("lost", 3)))
    # The front ends a call whose worker died, numbered after its last event; its writer stores it.
    assert front.feed.publish_own(CallEvent("lost", ENDED, seq=4))
    assert not front.feed.publish_own(CallEvent("lost", ENDED, seq=5))  # ended already
    front.store.events = [_event("done", 1), _event("done", 2, ENDED), _event("lost", 3), CallEvent("lost", ENDED, seq=4)]
    await front.feed.on_listening()
    [(following, _, ended, _)] = front.store.asked
    assert following == {} and ended == {"done", "lost"}
    assert [(e.call_id, e.seq, e.journaled) for e in front.received()] == [
        ("done", 1, True), ("done", 2, True), ("lost", 3, True), ("lost", 4, False)
    ]  # fmt: skip
    assert front.feed.last_seq("lost") == 4 and front.feed.replayed == 0


async def test_the_feed_forgets_calls_that_ended_long_before_its_listener_was_last_up():
    front = Front()
    await front.feed.on_payload(_payload(_event("done", 1, ENDED)))
    front.time += ENDED_MEMORY - timedelta(seconds=1)
    await front.feed.on_payload(_payload(_event("other", 2)))
    assert front.feed.last_seq("done") == 1
    front.time += timedelta(seconds=2)
    await front.feed.on_payload(_payload(_event("other", 3)))
    assert front.feed.last_seq("done") == 0 and front.feed.last_seq("other") == 3
