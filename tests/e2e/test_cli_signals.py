"""SIGTERM and Ctrl-C (SIGINT) of ``holdslayer serve``, a real process, with a call on hold on the
simulated PBX and a dashboard-like WebSocket client following it: the process ends every live
call (``cancelled / shutdown``), hangs its channels up and exits 0 within a bound, with no traceback.
And Ctrl-C or SIGTERM of ``holdslayer demo`` on hold: the call ends the same way, the demo exits
130 or 143 (128 + the signal) and deletes its temporary directory unless told to keep it."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest

from app.sim import SimConfig, SimulatedPBX, load_scenarios
from app.store import Store
from tests.conftest import REPO, free_tcp_socket
from tests.e2e.serve import SERVE_UP_SECONDS, launch_serve, start_serve
from tests.e2e.test_cli import SPEECH_COMPANY, SPEECH_INTENT, speech_demo_env
from tests.e2e.test_e2e_calls import LONG_HOLD

pytestmark = pytest.mark.e2e

EXIT_BOUND = 10.0  # seconds from the signal to the process's exit


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_stopped_by_a_signal_ends_the_live_call_and_exits_0(signum, tmp_path, corpus, http, database_url):
    pbx = SimulatedPBX(SimConfig(scenarios=load_scenarios(), corpus=corpus))
    await pbx.start()
    loop = asyncio.get_running_loop()
    serve = None
    try:
        serve = await start_serve(http, tmp_path, database_url, pbx.ari_url)
        base = serve.base
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
        serve.proc.send_signal(signum)
        text = await serve.exited(EXIT_BOUND)
        took = loop.time() - signalled_at
        await events.close()
    finally:
        if serve is not None:
            await serve.kill()
        idle = await pbx.wait_idle(2.0)
        snapshot = pbx.snapshot()
        await pbx.stop()
    assert serve.returncode == 0, text
    assert took < EXIT_BOUND
    assert "Traceback" not in text, text
    assert "Task was destroyed" not in text, text
    assert idle, f"left in the PBX: {snapshot}"
    store = Store(database_url)
    try:
        stored = store.get_call(call_id)
        assert (stored.status.value, stored.reason.value) == ("cancelled", "shutdown"), stored.detail
    finally:
        store.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_waiting_for_an_asterisk_that_is_not_up_stops_on_a_signal(signum, tmp_path, database_url):
    # A port where nothing listens (held bound, so no other test takes it): every ARI connection is refused.
    nothing_there = free_tcp_socket()
    ari_url = f"http://127.0.0.1:{nothing_there.getsockname()[1]}"
    loop = asyncio.get_running_loop()
    serve = await launch_serve(tmp_path, database_url, ari_url)
    try:
        await serve.until_printed(b"ARI event websocket", SERVE_UP_SECONDS)  # it has tried, and waits
        signalled_at = loop.time()
        serve.proc.send_signal(signum)
        text = await serve.exited(EXIT_BOUND)
        took = loop.time() - signalled_at
    finally:
        await serve.kill()
        nothing_there.close()
    assert serve.returncode == 0, text
    assert took < EXIT_BOUND
    assert "stopped while waiting for Asterisk's ARI" in text, text
    assert "Traceback" not in text, text


# The demo stops its call, its app and its PBX in process (0.1-0.4 s), and no longer waits for what
# the call was preparing as the hold began: the lines to say to a person (their renders stop) and
# the loading of the voice (done as the app started). It waited 4-11 s for them (10.5-11 s beside
# three other demos and two busy loops on two cores; now 2-2.4 s, mostly the interpreter's exit).
DEMO_EXIT_BOUND = 5.0


def _sigint_raises_keyboardinterrupt() -> None:
    """In the child: Python turns SIGINT into KeyboardInterrupt only if it was not ignored when
    it started (it is for a background job of a shell), as a user's terminal has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("signum", "keep"),
    [(signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGINT, False)],
    ids=["SIGINT-keep", "SIGTERM-keep", "SIGINT"],
)
async def test_demo_stopped_on_hold_hangs_up_stores_the_call_and_exits_128_plus_the_signal(signum, keep, tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "demo", "--number", SPEECH_COMPANY, "--intent", SPEECH_INTENT,
        *(["--keep"] if keep else []),
        cwd=REPO, env=speech_demo_env(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_sigint_raises_keyboardinterrupt,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    before: list[str] = []
    try:
        async with asyncio.timeout(120):
            while "  status: on_hold\n" not in before:
                line = (await proc.stdout.readline()).decode()
                assert line, "the demo ended before the hold:\n" + "".join(before)
                before.append(line)
        signalled_at = loop.time()
        proc.send_signal(signum)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        took = loop.time() - signalled_at
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = "".join(before) + out.decode()
    assert proc.returncode == 128 + signum, text
    assert "Traceback" not in text and "Task was destroyed" not in text, text
    said = "interrupted" if signum == signal.SIGINT else "terminated"
    assert text.strip().splitlines()[-1] == f"{said}: the call was hung up", text
    assert "OUTCOME" not in text  # it did not go on to a result
    assert took < DEMO_EXIT_BOUND, f"exited {took:.1f} s after the signal"

    # A run with no stored flow has a database of its own, in a new directory under TMPDIR:
    # deleted at exit, or kept (--keep) and shown.
    left = list(tmp_path.glob("holdslayer-demo-*"))
    if not keep:
        assert left == [] and "kept in" not in text, text
        return
    kept = re.search(r"^call record and recordings kept in (\S+) \(demo.db, recordings/\)$", text, re.M)
    assert kept and left == [Path(kept[1])], text
    assert list((left[0] / "recordings").glob("*.wav")), "the call's recordings are with its record"
    call_id = re.search(r", call (\w+)$", before[0], re.M)[1]
    store = Store(f"sqlite:///{left[0] / 'demo.db'}")
    try:
        stored = store.get_call(call_id)
        assert (stored.status.value, stored.reason.value) == ("cancelled", "shutdown"), stored.detail
        assert stored.ended_at is not None
    finally:
        store.close()
