"""Faults a running Hold Slayer survives, each against the simulated PBX over real HTTP/WS/UDP:
the PBX shutting down, crashing, restarting; a call task crashing; the app killed and started
again. SIGTERM and Ctrl-C of ``holdslayer serve`` are in test_cli_signals.py.

The ARI websocket merely dropping (and reconnecting) is test_e2e_calls.py
``test_websocket_dropped_mid_hold_and_reconnected``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from app.audio.pipeline import AudioPipeline
from app.calls.legs import CallIds
from app.config import Settings
from app.runtime import HoldSlayer
from app.sim import SimConfig, SimulatedPBX, UserPhoneConfig, load_scenarios
from app.store import Store
from tests.conftest import REPO
from tests.e2e.serve import start_serve
from tests.e2e.test_e2e_calls import BUSY, LONG_HOLD, MENU, USER_PHONE, Stack, event_types, running_stack

pytestmark = pytest.mark.e2e

LOST_AFTER = 2.0  # pbx_lost_timeout in these tests (30 s in production)


@pytest.fixture
async def stack(tmp_path: Path, corpus, http, database_url, request):
    """The app and the simulated PBX (test_e2e_calls.py), with this test's settings."""
    async with running_stack(tmp_path, http, corpus, database_url, **getattr(request, "param", {})) as running:
        yield running


def our_channels(pbx: SimulatedPBX, call_id: str) -> list[str]:
    return [c for c in pbx.snapshot()["channels"] if CallIds.call_of(c) == call_id]


async def on_hold(stack: Stack) -> str:
    call_id = await stack.call(LONG_HOLD)
    await stack.wait_status(call_id, "on_hold")
    await asyncio.sleep(0.5)
    return call_id


@pytest.mark.parametrize("stack", [{"pbx_lost_timeout": LOST_AFTER}], indirect=True)
async def test_pbx_shut_down_during_hold_ends_the_call_pbx_lost_not_company_hangup(stack: Stack):
    call_id = await on_hold(stack)
    loop = asyncio.get_running_loop()
    stopped_at = loop.time()
    await stack.pbx.shut_down()  # every channel gets StasisEnd (no cause), then ARI closes
    call = await stack.wait_final(call_id, timeout=20)
    assert (call["status"], call["reason"]) == ("failed", "pbx_lost"), call["detail"]
    assert "closed its ARI connection" in call["detail"]
    # Told by the PBX itself: no need to wait for the outage bound.
    assert loop.time() - stopped_at < LOST_AFTER + 1.0
    company = next(c for c in stack.pbx.company_calls if c.number == LONG_HOLD)
    assert company.ended_by == "pbx"
    flow = stack.holdslayer.store.get_flow("test-long-hold")
    assert call["flow_id"] == flow.id and flow.fail_count == 0, "the PBX going away is not the flow's failure"


@pytest.mark.parametrize("stack", [{"pbx_lost_timeout": LOST_AFTER}], indirect=True)
async def test_pbx_gone_and_not_back_within_the_bound_ends_the_call_pbx_lost(stack: Stack):
    call_id = await on_hold(stack)
    loop = asyncio.get_running_loop()
    stopped_at = loop.time()
    await stack.pbx.stop()  # a crash: no event, the server closes, RTP stops
    call = await stack.wait_final(call_id, timeout=20)
    ended_after = loop.time() - stopped_at
    assert (call["status"], call["reason"]) == ("failed", "pbx_lost"), call["detail"]
    assert f"no connection to the PBX for {LOST_AFTER:g} s" in call["detail"]
    assert LOST_AFTER <= ended_after < LOST_AFTER + 8.0
    assert stack.holdslayer.stream.outages_lost == 1
    assert stack.holdslayer.manager.active_calls == []


@pytest.mark.parametrize("stack", [{"pbx_lost_timeout": 30.0}], indirect=True)
async def test_pbx_restarted_empty_is_reconciled_and_the_call_ends_pbx_lost(stack: Stack):
    call_id = await on_hold(stack)
    port = stack.pbx.port
    await stack.pbx.stop()
    await stack.pbx.start()  # the same port, nothing of the earlier run: a restarted Asterisk
    assert stack.pbx.port == port and stack.pbx.snapshot() == {"channels": [], "bridges": []}
    call = await stack.wait_final(call_id, timeout=20)  # far sooner than the 30 s bound
    assert (call["status"], call["reason"]) == ("failed", "pbx_lost"), call["detail"]
    assert "no longer had the call when the app reconnected" in call["detail"]
    assert "ARI_RECONNECTED" in event_types(call)
    assert stack.holdslayer.stream.outages_lost == 0
    await stack.assert_pbx_clean()
    # The app goes on with the new PBX: a new call is placed and ends as usual.
    busy = await stack.wait_final(await stack.call(BUSY), timeout=20)
    assert (busy["status"], busy["reason"]) == ("failed", "busy")


@pytest.mark.parametrize("stack", [{"pbx_lost_timeout": LOST_AFTER}], indirect=True)
async def test_pbx_cut_off_then_back_its_leftover_channels_are_hung_up_on_reconnect(stack: Stack):
    call_id = await on_hold(stack)
    await stack.pbx.cut_off()  # the network fails; the PBX keeps the call
    call = await stack.wait_final(call_id, timeout=20)
    assert (call["status"], call["reason"]) == ("failed", "pbx_lost"), call["detail"]
    assert our_channels(stack.pbx, call_id), "the PBX still holds the call's channels: nobody could hang them up"

    stack.pbx.reconnect_network()
    # Swept as soon as the app reconnects (its backoff grew during the outage: up to 10 s).
    assert await stack.pbx.wait_idle(timeout=15.0), f"left behind in the PBX: {stack.pbx.snapshot()}"
    # The reconnection is counted once its sweep is done, a moment after the PBX went idle.
    async def counted() -> bool:
        return stack.holdslayer.stream.reconnects >= 1

    await _wait_until(counted, 5, "the reconnection counted")


class CrashingPipeline(AudioPipeline):
    """Hearing that fails after a second of audio (a bug in the audio path, say)."""

    def push(self, pcm, t, **kwargs):
        if t > 1.0:
            raise ValueError("injected fault in the audio pipeline")
        return super().push(pcm, t, **kwargs)


async def test_a_crashing_call_task_ends_that_call_and_the_other_completes(tmp_path: Path, corpus, http, database_url):
    made: list[AudioPipeline] = []

    def detector_factory(settings: Settings) -> AudioPipeline:
        # The first call's detector crashes; every other call hears normally.
        kind = CrashingPipeline if not made else AudioPipeline
        made.append(kind(window_seconds=settings.classifier_window_seconds))
        return made[-1]

    # The user talks with the agent for 2 s and hangs up: the healthy call completes sooner.
    phones = {USER_PHONE: UserPhoneConfig(answer_after=0.5, hangup_after=2.0, speech="prompt:hello")}
    async with running_stack(
        tmp_path, http, corpus, database_url, user_phones=phones, detector_factory=detector_factory
    ) as stack:
        crashing = await stack.call(LONG_HOLD)
        healthy = await stack.call(MENU)
        crashed = await stack.wait_final(crashing, timeout=30)
        assert (crashed["status"], crashed["reason"]) == ("failed", "error"), crashed["detail"]
        assert "crashed: ValueError: injected fault in the audio pipeline" in crashed["detail"]
        assert our_channels(stack.pbx, crashing) == [], "its channels are hung up"
        assert stack.holdslayer.manager.session(healthy) is not None, "the other call goes on"

        other = await stack.wait_final(healthy, timeout=90)
        assert (other["status"], other["reason"]) == ("completed", "bridged"), other["detail"]
        await stack.assert_pbx_clean()


async def _wait_until(predicate, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.1)


async def test_app_killed_mid_hold_then_restarted_cleans_the_pbx_and_marks_the_call(
    tmp_path: Path, corpus, http, database_url
):
    pbx = SimulatedPBX(SimConfig(scenarios=load_scenarios(), corpus=corpus))
    await pbx.start()
    first = None
    second: HoldSlayer | None = None
    try:
        first = await start_serve(http, tmp_path, database_url, pbx.ari_url)
        base = first.base
        async with http.post(f"{base}/api/calls", json={"number": LONG_HOLD}) as resp:
            assert resp.status == 201
            call_id = (await resp.json())["call_id"]

        async def holding() -> bool:
            async with http.get(f"{base}/api/calls/{call_id}") as resp:
                return (await resp.json())["status"] == "on_hold"

        await _wait_until(holding, 30, "the call on hold")
        os.kill(first.pid, signal.SIGKILL)  # no clean-up of any kind
        await first.exited(10)
        left = our_channels(pbx, call_id)
        assert left, "the killed run left its call's channels in the PBX"

        second = HoldSlayer(
            Settings(
                ari_url=pbx.ari_url, database_url=database_url, recordings_dir=tmp_path / "recordings2",
                flows_dir=REPO / "flows",
            )
        )  # fmt: skip
        await second.start()
        assert our_channels(pbx, call_id) == []
        assert await pbx.wait_idle(5.0), pbx.snapshot()
        stored = second.store.get_call(call_id)
        assert (stored.status.value, stored.reason.value) == ("failed", "app_restarted")
        assert "stopped while the call was live" in stored.detail
    finally:
        if first is not None:
            await first.kill()
        if second is not None:
            await second.stop()
        await pbx.stop()
    store = Store(database_url)  # what a third start would find: nothing left to mark
    try:
        assert store.mark_unfinished_calls_failed() == 0
    finally:
        store.close()
