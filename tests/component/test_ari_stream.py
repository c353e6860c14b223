"""AriEventStream against a fake ARI websocket on 127.0.0.1, and event parsing on real captures."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from app.ari import AriClient, AriEventStream, AriUnauthorized, UnknownEvent, parse_event
from app.ari.events import (
    ApplicationReplaced,
    AriEvent,
    ChannelDestroyed,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelUserevent,
    ChannelVarset,
    Dial,
    PlaybackFinished,
    RecordingStarted,
    StasisStart,
)
from app.ari.models import Bridge, Channel
from app.ari.stream import backoff_delay
from tests.ari_fake import FakeAri, bridge, capture_lines, captures_dir, channel, event, wait_until


@pytest.fixture
async def fake():
    server = await FakeAri().start()
    yield server
    await server.close()


@pytest.fixture
async def client(fake: FakeAri):
    async with AriClient(fake.base_url, fake.user, fake.password, fake.app, timeout=2.0) as ari:
        yield ari


def varset(value: str) -> dict:
    return event("ChannelVarset", variable="STEP", value=value, channel=channel("hs-call-1"))


class Recorder:
    """An on_event/on_reconnect pair that logs what arrives, in order, and checks it is never re-entered."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.events: list[AriEvent] = []
        self.snapshots: list[tuple[list[Channel], list[Bridge]]] = []
        self._busy = False

    async def on_event(self, ev: AriEvent) -> None:
        assert not self._busy, "on_event re-entered: events are not delivered one at a time"
        self._busy = True
        try:
            await asyncio.sleep(0)  # yield, so that a concurrent delivery would show
            self.events.append(ev)
            self.log.append(ev.value if isinstance(ev, ChannelVarset) else ev.type)
        finally:
            self._busy = False

    async def on_reconnect(self, channels: list[Channel], bridges: list[Bridge]) -> None:
        self.snapshots.append((channels, bridges))
        self.log.append("reconcile")


def make_stream(client: AriClient, recorder: Recorder, **kwargs) -> AriEventStream:
    options = dict(heartbeat=5.0, backoff_initial=0.01, backoff_max=0.05, rng=random.Random(7))
    return AriEventStream(client, recorder.on_event, on_reconnect=recorder.on_reconnect, **(options | kwargs))


async def test_events_are_delivered_in_arrival_order_one_at_a_time(fake: FakeAri, client: AriClient) -> None:
    recorder = Recorder()
    stream = make_stream(client, recorder)
    await stream.start()
    try:
        assert stream.connected.is_set()
        for i in range(200):
            await fake.push(varset(str(i)))
        await wait_until(lambda: len(recorder.log) == 200)
    finally:
        await stream.stop()
    assert recorder.log == [str(i) for i in range(200)]
    assert all(isinstance(ev, ChannelVarset) and ev.channel.id == "hs-call-1" for ev in recorder.events)
    assert stream.reconnects == 0 and recorder.snapshots == []


async def test_a_sync_handler_is_accepted(fake: FakeAri, client: AriClient) -> None:
    seen: list[AriEvent] = []
    stream = AriEventStream(client, seen.append, heartbeat=5.0)
    await stream.start()
    try:
        await fake.push(varset("1"))
        await wait_until(lambda: len(seen) == 1)
    finally:
        await stream.stop()
    assert isinstance(seen[0], ChannelVarset)


async def test_start_raises_unauthorized_without_retrying(fake: FakeAri) -> None:
    async with AriClient(fake.base_url, fake.user, "wrong", fake.app) as ari:
        stream = AriEventStream(ari, lambda ev: None, backoff_initial=0.01)
        with pytest.raises(AriUnauthorized):
            await stream.start()
        await asyncio.sleep(0.05)
    assert fake.ws_attempts == 1
    assert not stream.connected.is_set()


async def test_first_connection_is_retried_until_accepted(fake: FakeAri, client: AriClient) -> None:
    fake.refuse_websockets = 2
    recorder = Recorder()
    stream = make_stream(client, recorder)
    await stream.start()
    await stream.stop()
    assert fake.ws_attempts == 3
    assert stream.connect_failures == 2
    assert stream.reconnects == 0
    assert recorder.snapshots == []  # the first connection is not a reconnect
    assert fake.requests == []


async def test_a_start_given_up_by_the_caller_stops_retrying(fake: FakeAri, client: AriClient) -> None:
    fake.refuse_websockets = 10_000
    stream = make_stream(client, Recorder())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await stream.start()
    await asyncio.sleep(0.05)  # a handshake sent just before the cancel may still reach the fake
    attempts = fake.ws_attempts
    await asyncio.sleep(0.3)  # a live supervisor would retry every 10-50 ms
    assert attempts >= 2
    assert fake.ws_attempts == attempts  # the supervisor is gone
    assert not stream.connected.is_set()


async def test_reconnects_after_tcp_reset_and_reconciles_before_new_events(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/channels", 200, [channel("hs-call-1"), channel("hs-call-1-em")])
    fake.reply("GET", "/bridges", 200, [bridge("hs-call-1-hold", ["hs-call-1", "hs-call-1-em"])])
    recorder = Recorder()
    stream = make_stream(client, recorder)
    await stream.start()
    try:
        await fake.push(varset("before"))
        await wait_until(lambda: recorder.log == ["before"])

        fake.refuse_websockets = 2  # Asterisk is briefly unreachable: backoff, then retry
        fake.rest_delay = 0.05  # so that "after" arrives while the client is still reconciling
        fake.reset_websocket()
        await wait_until(lambda: fake.ws_accepted == 2)
        await fake.push(varset("after"))
        await wait_until(lambda: "after" in recorder.log)
    finally:
        await stream.stop()

    assert recorder.log == ["before", "reconcile", "after"]
    assert stream.reconnects == 1
    assert stream.connect_failures == 2
    assert fake.ws_attempts == 4
    [(channels, bridges)] = recorder.snapshots
    assert [c.id for c in channels] == ["hs-call-1", "hs-call-1-em"]
    assert [(b.id, b.channels) for b in bridges] == [("hs-call-1-hold", ["hs-call-1", "hs-call-1-em"])]
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/channels"), ("GET", "/bridges")]


async def test_failed_reconcile_drops_the_connection_and_retries(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/channels", 500, {"message": "busy"})
    fake.reply("GET", "/bridges", 200, [])
    recorder = Recorder()
    stream = make_stream(client, recorder)
    await stream.start()
    try:
        fake.reset_websocket()
        await wait_until(lambda: len(fake.requests_to("GET", "/channels")) >= 2)
        assert stream.reconnects == 0 and recorder.snapshots == []

        fake.reply("GET", "/channels", 200, [])
        await wait_until(lambda: stream.reconnects == 1)
    finally:
        await stream.stop()
    assert recorder.snapshots == [([], [])]


async def test_heartbeat_notices_a_peer_that_stops_answering(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/channels", 200, [])
    fake.reply("GET", "/bridges", 200, [])
    recorder = Recorder()
    stream = make_stream(client, recorder, heartbeat=0.5)  # ping every 0.5 s, pong due within 0.25 s
    await stream.start()
    try:
        fake.stop_reading()
        await wait_until(lambda: stream.reconnects == 1, timeout=5.0)
        await fake.push(varset("on the new connection"))
        await wait_until(lambda: "on the new connection" in recorder.log)
    finally:
        await stream.stop()
    assert fake.ws_accepted == 2
    assert recorder.log == ["reconcile", "on the new connection"]


async def test_malformed_frames_are_counted_and_skipped(fake: FakeAri, client: AriClient) -> None:
    recorder = Recorder()
    stream = make_stream(client, recorder)
    await stream.start()
    try:
        await fake.push_text("{not json")
        await fake.push_text("[1, 2]")
        await fake.push_bytes(b"\x00\x01")
        await fake.push(varset("fine"))
        await wait_until(lambda: recorder.log == ["fine"])
        assert stream.connected.is_set()
    finally:
        await stream.stop()
    assert stream.malformed_frames == 3
    assert stream.reconnects == 0


async def test_a_failing_handler_does_not_stop_the_stream(fake: FakeAri, client: AriClient) -> None:
    seen: list[str] = []

    def on_event(ev: AriEvent) -> None:
        seen.append(ev.value)
        if ev.value == "1":
            raise RuntimeError("handler bug")

    stream = AriEventStream(client, on_event, heartbeat=5.0)
    await stream.start()
    try:
        await fake.push(varset("1"))
        await fake.push(varset("2"))
        await wait_until(lambda: seen == ["1", "2"])
    finally:
        await stream.stop()
    assert stream.handler_errors == 1


async def test_application_replaced_is_delivered_and_logged_loudly(
    fake: FakeAri, client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    stream = make_stream(client, recorder)
    await stream.start()
    try:
        with caplog.at_level(logging.ERROR, logger="app.ari.stream"):
            await fake.push(event("ApplicationReplaced"))
            await wait_until(lambda: recorder.log == ["ApplicationReplaced"])
    finally:
        await stream.stop()
    assert isinstance(recorder.events[0], ApplicationReplaced)
    assert any("taken over" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


async def test_stop_closes_the_websocket(fake: FakeAri, client: AriClient) -> None:
    stream = make_stream(client, Recorder())
    await stream.start()
    await stream.stop()
    assert not stream.connected.is_set()
    await wait_until(lambda: fake._sockets[-1][0].closed)
    assert fake.ws_accepted == 1


def test_backoff_is_exponential_with_full_jitter() -> None:
    class Ceiling(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [backoff_delay(n, 0.2, 10.0, Ceiling()) for n in range(10)]
    assert ceilings == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0, 10.0])
    rng = random.Random(1)
    delays = [backoff_delay(6, 0.2, 10.0, rng) for _ in range(200)]
    assert all(0.0 <= d <= 10.0 for d in delays)
    assert min(delays) < 1.0 and max(delays) > 9.0  # spread over the whole range, not clustered
    assert backoff_delay(10_000, 0.2, 10.0, Ceiling()) == 10.0


# --- parsing ---


def test_every_captured_event_parses_into_its_typed_model() -> None:
    lines = [(name, line["event"]) for name, line in capture_lines(captures_dir()) if line["dir"] == "event"]
    assert len(lines) > 700
    without_ids = {"ApplicationReplaced", "DeviceStateChanged"}
    for name, data in lines:
        ev = parse_event(data)
        assert not isinstance(ev, UnknownEvent), f"{name}: {data['type']} -> {ev}"
        assert type(ev).__name__ == data["type"]
        assert ev.raw == data
        assert ev.application == data["application"]
        if data["type"] not in without_ids:
            assert ev.resource_ids(), f"{name}: {data['type']} concerns no resource"


def test_resource_ids_name_every_channel_bridge_playback_and_recording() -> None:
    dial = parse_event(event("Dial", dialstatus="RINGING", peer=channel("peer-1"), caller=channel("caller-1")))
    assert isinstance(dial, Dial) and dial.resource_ids() == {"peer-1", "caller-1"}

    entered = parse_event(event("ChannelEnteredBridge", bridge=bridge("br-1", ["ch-1"]), channel=channel("ch-1")))
    assert isinstance(entered, ChannelEnteredBridge) and entered.resource_ids() == {"br-1", "ch-1"}

    playback = {"id": "pb-1", "media_uri": "sound:beep", "target_uri": "bridge:br-1", "state": "done"}
    finished = parse_event(event("PlaybackFinished", playback=playback))
    assert isinstance(finished, PlaybackFinished) and finished.resource_ids() == {"pb-1", "br-1"}

    recording = {"name": "rec-1", "format": "wav", "state": "recording", "target_uri": "channel:snoop-1"}
    started = parse_event(event("RecordingStarted", recording=recording))
    assert isinstance(started, RecordingStarted) and started.resource_ids() == {"rec-1", "snoop-1"}

    replaced = parse_event(event("StasisStart", args=[], channel=channel("new"), replace_channel=channel("old")))
    assert isinstance(replaced, StasisStart) and replaced.resource_ids() == {"new", "old"}

    global_var = parse_event(event("ChannelVarset", variable="G", value="1"))
    assert isinstance(global_var, ChannelVarset) and global_var.resource_ids() == set()


def test_typed_fields_carry_the_values_the_app_needs() -> None:
    start = parse_event(event("StasisStart", args=["dial", "18005550100"], channel=channel("in-1", "Ring")))
    assert isinstance(start, StasisStart)
    assert start.args == ["dial", "18005550100"] and start.channel.state == "Ring"

    destroyed = parse_event(event("ChannelDestroyed", cause=17, cause_txt="User busy", channel=channel("c")))
    assert isinstance(destroyed, ChannelDestroyed) and (destroyed.cause, destroyed.cause_txt) == (17, "User busy")

    hangup = parse_event(event("ChannelHangupRequest", cause=32, soft=True, channel=channel("c")))
    assert isinstance(hangup, ChannelHangupRequest) and hangup.soft and hangup.cause == 32

    user = parse_event(
        event("ChannelUserevent", eventname="FakeCompany", userevent={"Phase": "hold"}, channel=channel("c"))
    )
    assert isinstance(user, ChannelUserevent) and user.userevent["Phase"] == "hold"


def test_unknown_type_becomes_unknown_event_that_still_routes() -> None:
    data = event("ChannelHold", channel=channel("ch-9"), musicclass="default")
    ev = parse_event(data)
    assert isinstance(ev, UnknownEvent)
    assert ev.type == "ChannelHold" and ev.error is None and ev.raw == data
    assert ev.resource_ids() == {"ch-9"}


def test_malformed_known_type_becomes_unknown_event_with_the_error(caplog: pytest.LogCaptureFixture) -> None:
    data = event("ChannelDestroyed", cause="not a number", channel=channel("ch-1"))
    with caplog.at_level(logging.WARNING, logger="app.ari.events"):
        ev = parse_event(data)
    assert isinstance(ev, UnknownEvent)
    assert ev.type == "ChannelDestroyed" and "cause" in ev.error
    assert ev.resource_ids() == {"ch-1"}
    assert any("malformed ARI ChannelDestroyed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("data", [{}, {"type": 5}, {"type": "StasisStart"}, {"no": "type"}])
def test_parse_event_never_raises(data: dict) -> None:
    assert isinstance(parse_event(data), UnknownEvent)


async def test_an_outage_is_told_at_once_and_declared_lost_after_its_bound(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/channels", 200, [])
    fake.reply("GET", "/bridges", 200, [])
    recorder, told = Recorder(), []
    stream = make_stream(
        client, recorder, on_down=lambda: told.append("down"), on_lost=lambda: told.append("lost"), lost_after=0.3
    )
    await stream.start()
    try:
        # A blip: back well within the bound, so nothing is declared lost.
        fake.reset_websocket()
        await wait_until(lambda: stream.reconnects == 1)
        await asyncio.sleep(0.4)
        assert told == ["down"]

        # Gone for longer than the bound: lost, once, while the stream keeps trying.
        fake.refuse_websockets = 1000
        fake.reset_websocket()
        await wait_until(lambda: told == ["down", "down", "lost"], timeout=3.0)
        assert stream.outages_lost == 1 and not stream.connected.is_set()
        await asyncio.sleep(0.4)
        assert told == ["down", "down", "lost"]

        fake.refuse_websockets = 0  # back: reconciled as after any reconnect
        await wait_until(lambda: stream.reconnects == 2, timeout=3.0)
    finally:
        await stream.stop()
