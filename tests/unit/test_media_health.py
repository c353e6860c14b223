"""Media health counters, the tallies behind /metrics, and the simulated PBX's RTP impairment:
pure parts, no sockets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.api.app import create_api
from app.calls import events as ev
from app.calls.events import CallEvent, EventBus
from app.calls.models import CallStatus
from app.config import Settings
from app.media.endpoint import EndpointStats
from app.media.health import COUNTERS, MediaHealth
from app.notify.notifier import Notifier
from app.media.jitter import JitterBuffer
from app.media.rtp import RtpPacket
from app.monitoring import CallTally, Histogram, LagWindow
from app.sim.media import ImpairedSending, RtpImpairment

FRAME = 0.02


def _stats(**counts: int) -> EndpointStats:
    base = dict.fromkeys(EndpointStats.__dataclass_fields__, 0)
    return EndpointStats(**{**base, **counts})


def test_media_health_reads_an_endpoints_counters_under_their_health_names():
    health = MediaHealth.of(_stats(received=100, lost=4, late=1, duplicates=2, concealed=6, malformed=3, stray=5, unread_frames_dropped=7))
    assert health.as_dict() == {
        "received": 100, "lost": 4, "late": 1, "duplicated": 2, "concealed": 6, "malformed": 3, "stray": 5, "dropped": 7,
    }  # fmt: skip
    assert tuple(health.as_dict()) == COUNTERS


def test_media_health_of_a_call_is_the_sum_of_its_endpoints():
    hold = MediaHealth(received=500, lost=10, concealed=12)
    listen = MediaHealth(received=200, lost=1, late=2, concealed=3)
    assert MediaHealth.total([hold, listen]) == MediaHealth(received=700, lost=11, late=2, concealed=15)
    assert MediaHealth.total([]) == MediaHealth()


def test_a_jitter_buffer_under_20_percent_loss_counts_every_lost_packet_once():
    buffer = JitterBuffer(depth_frames=3)
    sending = ImpairedSending(RtpImpairment(loss=0.2, seconds=5.0, seed=7), "em", start=0.0, seed=7)
    sent = 0
    for seq in range(400):  # 8 s: 5 s impaired, 3 s clean
        t = seq * FRAME
        if sending.fate(t) is not None:
            buffer.push(RtpPacket(0, seq, seq * 160, 1, b"\xff" * 160), t)
            sent += 1
        buffer.pop_ready(t)
    assert 30 < sending.lost < 70  # about 20% of 250 packets
    assert buffer.stats.received == sent == 400 - sending.lost
    assert buffer.stats.lost == sending.lost
    assert buffer.stats.concealed == sending.lost  # the stream never stalled
    assert sending.over


def test_impairment_is_the_same_for_the_same_seed_and_ends_with_its_window():
    def fates(seed: int) -> list[float | None]:
        sending = ImpairedSending(RtpImpairment(loss=0.2, jitter=0.05, seconds=1.0, seed=seed), "em", 10.0, seed)
        return [sending.fate(10.0 + i * FRAME) for i in range(100)]

    first = fates(3)
    assert first == fates(3) and first != fates(4)
    during, after = first[:50], first[50:]
    assert during.count(None) > 0 and any(0 < d <= 0.05 for d in during if d is not None)
    assert after == [0.0] * 50  # 1 s later every packet goes out at once


@pytest.mark.parametrize(
    "bad", [{"loss": 1.5}, {"loss": -0.1}, {"jitter": 2.0}, {"seconds": 0}, {"seconds": 4000}]
)
def test_impairment_refuses_values_out_of_range(bad):
    with pytest.raises(ValueError):
        RtpImpairment(**bad)


def test_histogram_buckets_are_cumulative_as_prometheus_reads_them():
    histogram = Histogram(bounds=(10, 60))
    for value in (5, 10, 30, 90):
        histogram.observe(value)
    assert histogram.buckets() == [("10", 2), ("60", 3), ("+Inf", 4)]
    assert (histogram.count, histogram.total) == (4, 135)


def _event(call_id: str, data: ev.EventData, at: str) -> CallEvent:
    return CallEvent(call_id, data, at=f"2026-01-01T10:{at}+00:00")


def test_the_tally_counts_decisions_and_the_holds_that_ended():
    tally = CallTally()
    for event in [
        _event("a", ev.CallStatusChanged(status="on_hold", previous="navigating"), "00:00"),
        _event("a", ev.HoldDetected(t=3.0, confidence=0.9, evidence={}), "00:03"),
        _event("a", ev.HumanSuspected(t=40.0, confidence=0.5, evidence={}), "00:40"),
        _event("a", ev.HumanRetracted(t=42.0, suspected_t=40.0, evidence={}), "00:42"),
        _event("a", ev.HumanDetected(t=70.0, confidence=0.9, evidence={}, hold_seconds=70.2), "01:10"),
        _event("a", ev.CallEnded(status="completed", reason="bridged"), "02:00"),
        _event("b", ev.CallStatusChanged(status="on_hold", previous="navigating"), "00:00"),
        _event("b", ev.CallEnded(status="cancelled", reason="cancelled"), "00:25"),
        _event("c", ev.CallEnded(status="failed", reason="busy"), "00:05"),  # never held
    ]:
        tally.observe(event)
    assert tally.decisions == {"HOLD_DETECTED": 1, "HUMAN_SUSPECTED": 1, "HUMAN_RETRACTED": 1, "HUMAN_DETECTED": 1}
    assert (tally.holds["person"].count, tally.holds["person"].total) == (1, 70.2)
    assert (tally.holds["ended"].count, tally.holds["ended"].total) == (1, 25.0)


def test_the_lag_window_keeps_the_latest_and_the_worst_of_its_window():
    window = LagWindow(window=60.0)
    window.add(0.0, 0.2)
    window.add(30.0, 0.01)
    assert (window.latest, window.worst) == (0.01, 0.2)
    window.add(61.0, 0.03)  # the 0.2 s lag is more than a minute old
    assert (window.latest, window.worst) == (0.03, 0.03)


def _scrape_runtime(lost: int) -> SimpleNamespace:
    connected = asyncio.Event()
    tally = CallTally()
    tally.observe(_event("a", ev.HoldDetected(t=3.0, confidence=0.9, evidence={}), "00:03"))
    holding = MediaHealth(received=250, lost=lost, concealed=lost + 2)
    session = SimpleNamespace(call_id="a", status=CallStatus.ON_HOLD, media=SimpleNamespace(health=lambda: holding))
    return SimpleNamespace(
        stream=SimpleNamespace(connected=connected, reconnects=3),
        manager=SimpleNamespace(
            active_calls=["a"],
            session={"a": session}.get,
            live_media=lambda: {"a": holding},
            media_totals=lambda: holding + MediaHealth(received=9000, lost=4),
        ),
        tally=tally,
        notifier=Notifier(EventBus(), []),  # no channels configured
        loop_lag=SimpleNamespace(lag=LagWindow()),
        settings=Settings(),
        workers=None,  # one process: the calls are this runtime's own
    )


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_apps_in_one_process_each_scrape_their_own_runtime():
    with TestClient(create_api(_scrape_runtime(lost=50))) as first, TestClient(create_api(_scrape_runtime(lost=7))) as second:
        one, two = first.get("/metrics"), second.get("/metrics")
    assert one.headers["content-type"].startswith("text/plain")
    one, two = _samples(one.text), _samples(two.text)
    assert one[("holdslayer_call_media_lost_packets_total", (("call_id", "a"),))] == 50
    assert two[("holdslayer_call_media_lost_packets_total", (("call_id", "a"),))] == 7
    assert one[("holdslayer_media_lost_packets_total", ())] == 54
    assert one[("holdslayer_call_media_concealed_frames_total", (("call_id", "a"),))] == 52
    assert one[("holdslayer_calls", (("state", "on_hold"),))] == 1
    assert one[("holdslayer_calls", (("state", "dialing"),))] == 0
    assert one[("holdslayer_detector_decisions_total", (("decision", "HOLD_DETECTED"),))] == 1
    assert one[("holdslayer_ari_reconnects_total", ())] == 3
    assert one[("holdslayer_ari_connected", ())] == 0
    assert ("holdslayer_event_loop_lag_seconds", ()) in one
