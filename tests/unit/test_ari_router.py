"""EventRouter: per-call ordered queues, keyed by the resource ids each call owns."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.ari import EventRouter, parse_event
from app.ari.events import AriEvent, StasisStart
from tests.ari_fake import bridge, capture_lines, captures_dir, channel, event


def varset(channel_id: str, value: str) -> AriEvent:
    return parse_event(event("ChannelVarset", variable="V", value=value, channel=channel(channel_id)))


def drain(queue: asyncio.Queue[AriEvent]) -> list[AriEvent]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def test_events_reach_the_owner_in_dispatch_order() -> None:
    router = EventRouter()
    queue = router.register("call-1", ["hs-1", "hs-1-em"])
    for i in range(50):
        router.dispatch(varset("hs-1" if i % 2 else "hs-1-em", str(i)))
    assert [ev.value for ev in drain(queue)] == [str(i) for i in range(50)]
    assert router.unclaimed == 0


async def test_ids_registered_before_creation_catch_the_first_event() -> None:
    router = EventRouter()
    queue = router.register("call-1", ["hs-1-snoop"])  # chosen before POST /snoop
    router.dispatch(parse_event(event("StasisStart", args=["snoop"], channel=channel("hs-1-snoop"))))
    [ev] = drain(queue)
    assert isinstance(ev, StasisStart) and ev.channel.id == "hs-1-snoop"


async def test_an_event_goes_once_to_each_owner_concerned() -> None:
    router = EventRouter()
    call_1 = router.register("call-1", ["hs-1", "hs-1-bridge"])
    call_2 = router.register("call-2", ["hs-2"])
    entered_own = parse_event(
        event("ChannelEnteredBridge", bridge=bridge("hs-1-bridge", ["hs-1"]), channel=channel("hs-1"))
    )
    entered_other = parse_event(
        event("ChannelEnteredBridge", bridge=bridge("hs-1-bridge", ["hs-1", "hs-2"]), channel=channel("hs-2"))
    )
    router.dispatch(entered_own)
    router.dispatch(entered_other)
    assert drain(call_1) == [entered_own, entered_other]  # two ids of call-1, yet queued once
    assert drain(call_2) == [entered_other]


async def test_unclaimed_events_go_to_the_callback_and_are_counted() -> None:
    unclaimed: list[AriEvent] = []
    router = EventRouter(on_unclaimed=unclaimed.append)
    queue = router.register("call-1", ["hs-1"])
    inbound = parse_event(event("StasisStart", args=["dial", "18005550100"], channel=channel("1795260917.339", "Ring")))
    replaced = parse_event(event("ApplicationReplaced"))
    router.dispatch(inbound)
    router.dispatch(replaced)
    assert unclaimed == [inbound, replaced]
    assert router.unclaimed == 2
    assert drain(queue) == []


async def test_a_failing_unclaimed_callback_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def explode(ev: AriEvent) -> None:
        raise RuntimeError("bug")

    router = EventRouter(on_unclaimed=explode)
    with caplog.at_level(logging.ERROR, logger="app.ari.router"):
        router.dispatch(varset("nobody", "1"))
    assert router.unclaimed == 1
    assert any("on_unclaimed handler failed" in r.getMessage() for r in caplog.records)


async def test_ids_can_be_added_and_removed_during_the_call() -> None:
    router = EventRouter()
    queue = router.register("call-1", ["hs-1"])
    router.add_ids("call-1", ["hs-1-user"])
    assert router.owner_of("hs-1-user") == "call-1"
    assert router.ids_of("call-1") == {"hs-1", "hs-1-user"}
    router.dispatch(varset("hs-1-user", "a"))

    router.remove_ids("call-1", ["hs-1-user", "not-mine"])
    router.dispatch(varset("hs-1-user", "b"))
    assert [ev.value for ev in drain(queue)] == ["a"]
    assert router.owner_of("hs-1-user") is None
    assert router.unclaimed == 1


async def test_unregister_forgets_the_owner_and_its_ids() -> None:
    router = EventRouter()
    router.register("call-1", ["hs-1", "hs-1-em"])
    router.unregister("call-1")
    router.unregister("call-1")  # idempotent
    assert router.owner_of("hs-1") is None and router.owner_of("hs-1-em") is None
    router.dispatch(varset("hs-1", "late"))
    assert router.unclaimed == 1
    router.register("call-1", ["hs-1"])  # the name and ids are free again


async def test_an_id_has_at_most_one_owner() -> None:
    router = EventRouter()
    router.register("call-1", ["hs-1"])
    with pytest.raises(ValueError, match="already registered"):
        router.register("call-1")
    with pytest.raises(ValueError, match="hs-1"):
        router.register("call-2", ["hs-2", "hs-1"])
    assert router.owner_of("hs-2") is None  # the failed registration left nothing behind
    router.register("call-2", ["hs-2"])
    with pytest.raises(ValueError):
        router.add_ids("call-2", ["hs-1"])
    with pytest.raises(KeyError):
        router.add_ids("call-3", ["hs-3"])
    router.add_ids("call-1", ["hs-1"])  # re-adding one's own id is fine
    assert router.owner_of("hs-1") == "call-1"


async def test_four_concurrent_captured_calls_are_separated_in_order() -> None:
    """Capture c: four create+dial calls (busy, no answer, not in service, all circuits busy)."""
    events = [
        parse_event(line["event"])
        for name, line in capture_lines(captures_dir())
        if name == "c-unanswered-and-failed.jsonl" and line["dir"] == "event"
    ]
    router = EventRouter()
    queues = {
        case: router.register(case, [f"hs-c-{case}", f"hs-c-{case}-2", f"hs-c-{case}-em", f"hs-c-{case}-bridge"])
        for case in ("busy", "noanswer", "notinservice", "allcircuitsbusy")
    }
    for ev in events:
        router.dispatch(ev)

    assert router.unclaimed == 0
    position = {id(ev): i for i, ev in enumerate(events)}
    routed = {case: drain(queue) for case, queue in queues.items()}
    assert sum(len(evs) for evs in routed.values()) == len(events)
    causes = {}
    for case, evs in routed.items():
        assert all(any(rid.startswith(f"hs-c-{case}") for rid in ev.resource_ids()) for ev in evs)
        indices = [position[id(ev)] for ev in evs]
        assert indices == sorted(indices)  # capture order kept
        [destroyed] = [ev for ev in evs if ev.type == "ChannelDestroyed" and ev.channel.id == f"hs-c-{case}"]
        causes[case] = destroyed.cause
    assert causes == {"busy": 17, "noanswer": 19, "notinservice": 1, "allcircuitsbusy": 16}
