"""The two commands a user runs: ``holdslayer demo`` and ``holdslayer serve``, as real processes."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pyte
import pytest

from app.sim import SimConfig, SimulatedPBX, load_scenarios
from app.store import Store
from tests.conftest import REPO
from tests.e2e.serve import serve_env as _env
from tests.e2e.serve import start_serve

pytestmark = pytest.mark.e2e

# The demo's default run, as a first-time caller: no stored flow, the menu heard and chosen from.
# Bluebird Wireless (app/sim/scenarios/nav-label-first.yaml) has one spoken menu, 8 s of hold and a
# person: a short call. Technical support is its key 2, a hold with no announcement in it.
SPEECH_COMPANY = "5551002"
SPEECH_INTENT = "my phone cannot connect to the network"


def speech_demo_env(tmp_path) -> dict[str, str]:
    """The demo keeps the database, flows and recordings of a no-flow run in a directory of its
    own under TMPDIR (here ``tmp_path``), deleted at exit unless ``--keep``; the offline navigator
    and local speech to text, whatever keys the machine has."""
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
    # Its own database and recordings were in a temporary directory, deleted at exit (no --keep).
    assert list(tmp_path.glob("holdslayer-demo-*")) == [] and "kept in" not in out, out


# What the demo draws on a terminal: a pseudo-terminal of a fixed size, rendered by a terminal
# emulator (pyte). Tall enough that the whole log stays on the screen.
ROWS, COLUMNS = 100, 120
LIVE_LINE = re.compile(r"^  \[([a-z_]+)\]")  # "  [on_hold]  hold 00:04  hearing MUSIC (0.99)"
# Settings of rich's that would decide for it whether this is a terminal, and of what size.
TERMINAL_OVERRIDES = {"FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES", "TERM"}


def _run_on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 240) -> tuple[int, list[bytes]]:
    """``holdslayer`` with a pseudo-terminal as its stdin, stdout and stderr; its exit code and
    the bytes it wrote, as they were read."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args], cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1.0)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal (it ended)
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            raise AssertionError(f"holdslayer {' '.join(args)} still running after {timeout:.0f} s")
        return proc.wait(30), chunks
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_demo_on_a_terminal_draws_one_live_line_and_leaves_no_trace_of_it(tmp_path, database_url):
    env = {k: v for k, v in _env(tmp_path, database_url).items() if k not in TERMINAL_OVERRIDES}
    env["TERM"] = "xterm"
    code, chunks = _run_on_a_terminal(["demo", "--number", "5550001", "--follow-flow"], env)
    raw = b"".join(chunks)
    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.ByteStream(screen)
    drawn: list[str] = []  # every live line the screen showed, as the bytes came
    for chunk in chunks:
        stream.feed(chunk)
        drawn += [line.rstrip() for line in screen.display if LIVE_LINE.match(line)]
    final = [line.rstrip() for line in screen.display]
    shown = "\n".join(line for line in final if line)
    assert code == 0, shown
    assert b"Traceback" not in raw, shown

    # The live line followed the call: menus, hold (with its timer and what was heard), the person.
    states = {LIVE_LINE.match(line)[1] for line in drawn}
    assert {"navigating", "on_hold", "connected"} <= states, states
    # "[on_hold]" is shown as it is, not taken for rich markup and dropped.
    assert any(re.match(r"  \[on_hold\]  hold 00:\d\d  hearing [A-Z_]+ \(\d\.\d\d\)$", line) for line in drawn), drawn
    # Drawn with rich's live display: the cursor hidden meanwhile, the line erased before each redraw
    # (not overwritten after a bare carriage return), the cursor shown again at the end.
    assert b"\x1b[?25l" in raw and b"\x1b[2K" in raw and b"\x1b[?25h" in raw
    assert not screen.cursor.hidden

    # The final screen: the log and the outcome, nothing left of the live line (transient), not a
    # fragment of it mixed into a log line.
    assert not [line for line in final if LIVE_LINE.match(line) or "hearing" in line or re.search(r"\d\d:\d\d", line)], shown
    assert "  step hold [HOLD] Wait on hold for a live person" in final, shown
    assert "  status: on_hold" in final and "  status: connected" in final, shown
    assert all(re.fullmatch(r"  status: [a-z_]+", line) for line in final if line.startswith("  status:")), shown
    assert all(
        re.fullmatch(r"  (on hold|LIVE PERSON after \d+ s on hold) \(confidence \d\.\d\d\)", line)
        for line in final if "confidence" in line
    ), shown  # fmt: skip
    assert any(line.startswith("  LIVE PERSON after") for line in final), shown
    assert [line for line in final if line][-1].startswith("OUTCOME: SUCCESS"), shown


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
    serve = None
    try:
        serve = await start_serve(http, tmp_path, database_url, pbx.ari_url)
        async with http.post(f"{serve.base}/api/calls", json={"number": "5550002"}) as resp:
            assert resp.status == 201
            call_id = (await resp.json())["call_id"]
        for _ in range(200):
            async with http.get(f"{serve.base}/api/calls/{call_id}") as resp:
                call = await resp.json()
            if call["status"] == "failed":
                break
            await asyncio.sleep(0.1)
        assert call["reason"] == "busy"
        assert await pbx.wait_idle(5.0)
        serve.proc.send_signal(signal.SIGINT)
        out = await serve.exited(30)
    finally:
        if serve is not None:
            await serve.kill()
        await pbx.stop()
    assert serve.returncode == 0, out
    store = Store(database_url)  # what the process left in its database
    try:
        stored = store.get_call(call_id)
        assert (stored.status.value, stored.reason.value) == ("failed", "busy")
    finally:
        store.close()
