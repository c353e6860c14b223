"""The in-process event bus: ordered per subscriber, filtered, isolated from slow subscribers."""

import asyncio

from app.calls import events as ev
from app.calls.events import CallEvent, EventBus, EventType
from app.progress import CallProgress


async def test_each_subscriber_gets_every_event_in_order():
    bus = EventBus()
    a, b = bus.subscribe(), bus.subscribe()
    for i in range(50):
        bus.emit("c1", ev.HoldProgress(hold_seconds=i))
    for sub in (a, b):
        got = [sub.get_nowait().data.hold_seconds for _ in range(50)]
        assert got == list(range(50))


async def test_sequence_numbers_increase_and_filters_apply():
    bus = EventBus()
    only_c2 = bus.subscribe(lambda e: e.call_id == "c2")
    first = bus.emit("c1", ev.CallCreated(number="8005550100"))
    second = bus.emit("c2", ev.CallCreated(number="8005550100"))
    assert second.seq == first.seq + 1
    event = only_c2.get_nowait()
    assert event.call_id == "c2" and event.seq == second.seq
    assert only_c2._queue.empty()


async def test_full_subscriber_drops_and_counts_without_blocking_others():
    bus = EventBus()
    slow = bus.subscribe(maxsize=2)
    fast = bus.subscribe()
    for i in range(5):
        bus.emit("c", ev.HoldProgress(hold_seconds=i))
    assert slow.dropped == 3
    assert fast._queue.qsize() == 5


async def test_close_ends_async_iteration():
    bus = EventBus()
    sub = bus.subscribe()
    bus.emit("c", ev.CallCreated(number="8005550100"))

    async def collect():
        return [e.type async for e in sub]

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(task, 1) == [EventType.CALL_CREATED]
    bus.emit("c", ev.CallCreated(number="8005550100"))  # after close: not delivered, no error


def test_progress_folds_a_successful_call():
    p = CallProgress("c")
    events = [
        CallEvent("c", ev.CallStatusChanged(status="on_hold", previous="navigating")),
        CallEvent("c", ev.IvrStep(step_id="menu", step_type="LISTEN", description="")),
        CallEvent("c", ev.IvrDtmfSent(step_id="menu", digits="2")),
        CallEvent("c", ev.AudioClassified(t_start=0.0, t_end=3.0, audio_class="MUSIC", confidence=0.9)),
        CallEvent("c", ev.HoldProgress(hold_seconds=75.0)),
        CallEvent("c", ev.HumanDetected(t=80.0, confidence=0.8, evidence={"rule": "reply"}, hold_seconds=80.0)),
        CallEvent("c", ev.CallEnded(status="completed", reason="bridged", detail="the user hung up")),
        CallEvent("other", ev.CallEnded(status="failed", reason="busy")),
    ]
    lines = [p.apply(e) for e in events]
    assert "pressed 2" in lines
    assert p.steps == ["menu"] and p.hearing == "MUSIC"
    assert p.bridged and p.ended
    assert "01:20" in p.status_line()
    assert p.outcome_line().startswith("OUTCOME: SUCCESS")


def test_progress_reports_failure_reason():
    p = CallProgress("c")
    p.apply(CallEvent("c", ev.CallEnded(status="failed", reason="busy", detail="dial status BUSY")))
    assert not p.bridged
    assert p.outcome_line() == "OUTCOME: FAILED - busy: dial status BUSY"


def test_progress_tells_what_the_menu_said_and_why_a_key_was_pressed():
    p = CallProgress("c")
    heard = p.apply(CallEvent("c", ev.IvrMenuDetected(step_id="m", transcript="For billing, press 2.", t_start=0.0,
                                                      t_end=3.0, heard_seconds=2.5, listened_seconds=3.0)))  # fmt: skip
    pressed = p.apply(CallEvent("c", ev.IvrDtmfSent(step_id="m", digits="2", navigator="offline", reason="billing")))
    replayed = p.apply(CallEvent("c", ev.IvrDtmfSent(step_id="m", digits="1", navigator="flow", reason="the learned flow")))
    assert heard == "menu heard (2.5 s): 'For billing, press 2.'"
    assert pressed == "pressed 2 (offline: billing)" and replayed == "pressed 1"
