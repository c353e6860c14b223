"""Media health of real calls: RTP loss and jitter injected by the simulated PBX while a call
holds, read back from /metrics (with prometheus_client's text-format parser) and /api/health,
and the same call's decisions compared with a call that heard no loss."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.calls.events import EventType
from app.sim.media import RtpImpairment
from tests.e2e.test_e2e_calls import LONG_HOLD, Stack, event_types, events_of, journal, running_stack

BURST_SECONDS = 5.0
# What the app decided for sure or did to the company; a burst of loss must change none of it.
# (HUMAN_SUSPECTED / _RETRACTED / _PROBE, the cheap tentative steps, vary between clean runs too.)
DECISIONS = {
    "CALL_ANSWERED", "IVR_DTMF_SENT", "HOLD_DETECTED", "HUMAN_DETECTED", "TRANSFER_STARTED", "TRANSFER_COMPLETE",
}  # fmt: skip
SURE_OF_A_PERSON = {EventType.HUMAN_DETECTED, EventType.TRANSFER_STARTED}

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(tmp_path, corpus, http, database_url):
    async with running_stack(tmp_path, http, corpus, database_url) as running:
        yield running


async def scrape(stack: Stack) -> dict[tuple[str, tuple], float]:
    status, body, content_type = await stack.get("/metrics")
    assert status == 200 and content_type.startswith("text/plain"), body[:200]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


async def health(stack: Stack) -> dict:
    async with stack.http.get(stack.api.base_url + "/api/health") as resp:
        assert resp.status == 200
        return await resp.json()


async def test_injected_loss_on_hold_shows_in_metrics_and_health_per_call_and_in_total(stack: Stack):
    call_id = await stack.call(LONG_HOLD)
    await stack.wait_status(call_id, "on_hold")
    async with stack.http.post(
        stack.pbx.ari_url.removesuffix("/ari") + "/sim/rtp-impairment",
        json={"loss": 0.2, "seconds": BURST_SECONDS, "seed": 11},
        headers={"Authorization": aiohttp.encode_basic_auth("holdslayer", "holdslayer")},
    ) as resp:
        assert resp.status == 200, await resp.text()
        (applied,) = (await resp.json())["impairments"]
    assert applied["channel"] == stack.holdslayer.manager.session(call_id).ids.hold_media
    await asyncio.sleep(BURST_SECONDS + 0.5)
    (sending,) = stack.pbx.impairments
    assert sending.over and 20 < sending.lost < 90  # ~20% of 250 packets

    live = next(c for c in (await health(stack))["calls"] if c["call_id"] == call_id)
    assert live["status"] == "on_hold"
    metrics = await scrape(stack)
    per_call = {
        name: metrics[(f"holdslayer_call_media_{name}_total", (("call_id", call_id),))]
        for name in ("lost_packets", "concealed_frames", "received_packets", "late_packets")
    }
    # Every packet the PBX withheld is counted lost, once; each was played as a concealed frame.
    assert live["media"]["lost"] == per_call["lost_packets"] == sending.lost
    assert per_call["concealed_frames"] >= live["media"]["concealed"] >= sending.lost
    assert per_call["received_packets"] >= live["media"]["received"] > 250
    assert metrics[("holdslayer_media_lost_packets_total", ())] >= sending.lost
    assert metrics[("holdslayer_calls", (("state", "on_hold"),))] == 1
    assert metrics[("holdslayer_ari_connected", ())] == 1

    call = await stack.wait_final(call_id, timeout=60)
    assert (call["status"], call["reason"]) == ("completed", "bridged"), journal(call)
    (kept,) = events_of(call, "MEDIA_HEALTH")
    assert kept["lost"] == sending.lost and kept["received"] >= per_call["received_packets"]
    after = await scrape(stack)
    assert not any(name == "holdslayer_call_media_lost_packets_total" for name, _ in after)  # no live call
    assert after[("holdslayer_media_lost_packets_total", ())] == kept["lost"]  # the only call of this app
    assert after[("holdslayer_media_received_packets_total", ())] == kept["received"]
    assert after[("holdslayer_detector_decisions_total", (("decision", "HUMAN_DETECTED"),))] == 1
    assert after[("holdslayer_hold_duration_seconds_count", (("outcome", "person"),))] == 1
    await stack.assert_pbx_clean()


async def test_loss_and_jitter_on_hold_change_no_decision(stack: Stack):
    subscription = stack.holdslayer.bus.subscribe()
    clean_id, impaired_id = await stack.call(LONG_HOLD), await stack.call(LONG_HOLD)
    await stack.wait_status(impaired_id, "on_hold")
    loop = asyncio.get_running_loop()
    (sending,) = stack.pbx.impair_rtp(
        RtpImpairment(loss=0.2, jitter=0.1, seconds=BURST_SECONDS, seed=5),
        channel_id=stack.holdslayer.manager.session(impaired_id).ids.hold_media,
    )
    burst = (loop.time(), loop.time() + BURST_SECONDS)
    seen: list[tuple[float, EventType]] = []
    while loop.time() < burst[1] + 0.3:  # every event of the impaired call, with when it came
        try:
            event = await asyncio.wait_for(subscription.get(), timeout=0.1)
        except TimeoutError:
            continue
        if event is not None and event.call_id == impaired_id:
            seen.append((loop.time(), event.type))
    subscription.close()

    assert not [kind for t, kind in seen if burst[0] <= t <= burst[1] and kind in SURE_OF_A_PERSON]
    assert stack.holdslayer.manager.session(impaired_id).status.value == "on_hold"
    clean, impaired = await stack.wait_final(clean_id, timeout=60), await stack.wait_final(impaired_id, timeout=60)
    assert (impaired["status"], impaired["reason"]) == (clean["status"], clean["reason"]) == ("completed", "bridged")
    decided = [kind for kind in event_types(impaired) if kind in DECISIONS]
    assert decided == [kind for kind in event_types(clean) if kind in DECISIONS], journal(impaired)
    assert decided.count("HUMAN_DETECTED") == 1
    # Both reached the company's agent (not a recording) and the user talked with them.
    assert all(company.reached_agent for company in stack.pbx.company_calls)
    assert len(stack.pbx.user_calls) == 2 and all(user.answered for user in stack.pbx.user_calls)
    # The burst did reach the app: the packets withheld are lost, some held back came too late.
    (media,) = events_of(impaired, "MEDIA_HEALTH")
    assert media["lost"] == sending.lost > 20 and media["late"] > 0 and sending.delayed > 100
    assert events_of(clean, "MEDIA_HEALTH")[0]["lost"] == 0
    await stack.assert_pbx_clean()
