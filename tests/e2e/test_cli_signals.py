"""SIGTERM and Ctrl-C (SIGINT) of ``holdslayer serve``, a real process, with a call on hold on the
simulated PBX and a dashboard-like WebSocket client following it: the process ends every live
call (``cancelled / shutdown``), hangs its channels up and exits 0 within a bound, with no traceback."""

from __future__ import annotations

import asyncio
import signal

import pytest

from app.sim import SimConfig, SimulatedPBX, load_scenarios
from app.store import Store
from tests.e2e.serve import start_serve, wait_until_serving
from tests.e2e.test_e2e_calls import LONG_HOLD

pytestmark = pytest.mark.e2e

EXIT_BOUND = 10.0  # seconds from the signal to the process's exit


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_stopped_by_a_signal_ends_the_live_call_and_exits_0(signum, tmp_path, corpus, http, database_url):
    pbx = SimulatedPBX(SimConfig(scenarios=load_scenarios(), corpus=corpus))
    await pbx.start()
    proc, base = await start_serve(tmp_path, database_url, pbx.ari_url)
    loop = asyncio.get_running_loop()
    try:
        await wait_until_serving(http, base, proc)
        async with http.post(f"{base}/api/calls", json={"number": LONG_HOLD}) as resp:
            assert resp.status == 201
            call_id = (await resp.json())["call_id"]
        for _ in range(300):
            async with http.get(f"{base}/api/calls/{call_id}") as resp:
                status = (await resp.json())["status"]
            if status == "on_hold":
                break
            await asyncio.sleep(0.1)
        assert status == "on_hold"
        assert pbx.snapshot()["channels"], "the call holds channels in the PBX"
        events = await http.ws_connect(f"{base}/ws/events")  # a follower still connected at the signal

        signalled_at = loop.time()
        proc.send_signal(signum)
        out, _ = await asyncio.wait_for(proc.communicate(), EXIT_BOUND)
        took = loop.time() - signalled_at
        await events.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        idle = await pbx.wait_idle(2.0)
        snapshot = pbx.snapshot()
        await pbx.stop()
    text = out.decode()
    assert proc.returncode == 0, text
    assert took < EXIT_BOUND
    assert "Traceback" not in text, text
    assert idle, f"left in the PBX: {snapshot}"
    store = Store(database_url)
    try:
        stored = store.get_call(call_id)
        assert (stored.status.value, stored.reason.value) == ("cancelled", "shutdown"), stored.detail
    finally:
        store.close()
