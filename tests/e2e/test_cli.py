"""The two commands a user runs: ``holdslayer demo`` and ``holdslayer serve``, as real processes."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import pytest

from app.sim import SimConfig, SimulatedPBX, load_scenarios
from app.store import Store
from tests.conftest import REPO
from tests.e2e.serve import serve_env as _env
from tests.e2e.serve import start_serve, wait_until_serving

pytestmark = pytest.mark.e2e

# The demo's default run, as a first-time caller: no stored flow, the menu heard and chosen from.
# Bluebird Wireless (app/sim/scenarios/nav-label-first.yaml) has one spoken menu, 8 s of hold and a
# person: a short call. Technical support is its key 2, a hold with no announcement in it.
SPEECH_COMPANY = "5551002"
SPEECH_INTENT = "my phone cannot connect to the network"


def speech_demo_env(tmp_path) -> dict[str, str]:
    """The demo keeps the database and flows of a no-flow run in a directory of its own under
    TMPDIR (here ``tmp_path``); the offline navigator and local speech to text, whatever keys the
    machine has."""
    return _env(
        tmp_path, f"sqlite:///{tmp_path / 'unused.db'}",
        TMPDIR=str(tmp_path), HOLDSLAYER_NAVIGATOR="offline", HOLDSLAYER_STT_PROVIDER="local",
    )  # fmt: skip


async def _run(args: list[str], env: dict[str, str], timeout: float = 240) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:  # timed out: not left running after the test
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode()


async def test_demo_bridges_the_user_and_exits_0(tmp_path, database_url):
    code, out = await _run(["demo", "--number", "5550001", "--follow-flow"], _env(tmp_path, database_url))
    assert code == 0, out
    assert "Traceback" not in out
    assert "pressed 2" in out and "pressed 1" in out
    assert "LIVE PERSON" in out
    assert out.strip().splitlines()[-1].startswith("OUTCOME: SUCCESS")


async def test_demo_by_default_finds_the_way_by_speech_and_bridges_the_user(tmp_path):
    code, out = await _run(["demo", "--number", SPEECH_COMPANY, "--intent", SPEECH_INTENT], speech_demo_env(tmp_path))
    assert code == 0, out
    assert "Traceback" not in out
    assert "no stored flow: finding the way by what the menu says" in out
    assert "following the stored call flow" not in out
    assert "step explore [LISTEN]" in out, out  # the flow of a caller with none, not a stored one's steps
    heard = re.search(r"menu heard \([\d.]+ s\): '(.*)'", out)
    assert heard and "technical support" in heard[1].lower(), out  # what speech to text made of the menu
    assert re.search(r"pressed 2 \(offline: .*technical support", out), out  # the key, and why
    assert "LIVE PERSON" in out
    assert out.strip().splitlines()[-1].startswith("OUTCOME: SUCCESS"), out


async def test_demo_lists_the_simulated_companies(tmp_path):
    # --list opens no database
    code, out = await _run(["demo", "--list"], _env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}"), timeout=60)
    assert code == 0, out
    for number, name in ((s.number, s.name) for s in load_scenarios().values()):
        assert number in out and name in out


async def test_demo_exits_nonzero_when_the_call_fails(tmp_path, database_url):
    code, out = await _run(["demo", "--number", "5550002"], _env(tmp_path, database_url))
    assert code == 1, out
    assert out.strip().splitlines()[-1].startswith("OUTCOME: FAILED - busy")


async def test_serve_places_calls_through_the_api_and_stops_cleanly(tmp_path, corpus, http, database_url):
    pbx = SimulatedPBX(SimConfig(scenarios=load_scenarios(), corpus=corpus))
    await pbx.start()
    proc, base = await start_serve(tmp_path, database_url, pbx.ari_url)
    try:
        await wait_until_serving(http, base, proc)
        async with http.post(f"{base}/api/calls", json={"number": "5550002"}) as resp:
            assert resp.status == 201
            call_id = (await resp.json())["call_id"]
        for _ in range(200):
            async with http.get(f"{base}/api/calls/{call_id}") as resp:
                call = await resp.json()
            if call["status"] == "failed":
                break
            await asyncio.sleep(0.1)
        assert call["reason"] == "busy"
        assert await pbx.wait_idle(5.0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        await pbx.stop()
    assert proc.returncode == 0, out.decode()
    store = Store(database_url)  # what the process left in its database
    try:
        stored = store.get_call(call_id)
        assert (stored.status.value, stored.reason.value) == ("failed", "busy")
    finally:
        store.close()
