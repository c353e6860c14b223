"""``holdslayer serve --workers 2``, real processes on PostgreSQL, against the simulated PBX in
this process: calls spread over both workers, one WebSocket client sees every call's events in
order, an MCP client waits for the person on a call in a worker, a hang-up through REST reaches
the call's worker, a worker killed mid-hold loses only its
own call (``failed / worker_lost``) and is started again, a call dialled in from the user's phone
(the front's application) runs on a worker, and SIGTERM ends what still runs
(``cancelled / shutdown``) and exits 0. A worker that hangs (SIGSTOP) is killed once its heartbeat
is older than the bound, with the same outcome; before that, RTP loss on a call in a worker shows
in that call's media counters on the front's /metrics and /api/health. Needs
PostgreSQL (marked ``postgresql``: scripts/test provides it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
from collections import defaultdict

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from app.calls.legs import CallIds
from app.sim import SimConfig, SimulatedPBX, load_scenarios
from app.sim.media import RtpImpairment
from app.sim.phone import UserPhoneConfig
from app.sim.scenario import Scenario
from bench.capacity.company import NUMBER as ENDLESS_NUMBER
from bench.capacity.company import SCENARIO as ENDLESS_HOLD
from bench.capacity.company import write_flow
from app.store import Store
from tests.conftest import REPO, free_tcp_socket
from tests.e2e.test_cli import _env
from tests.e2e.test_e2e_calls import LONG_HOLD, MENU, USER_PHONE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

OTHER_PHONE = "PJSIP/otherphone"

EXIT_BOUND = 25.0  # SIGTERM to exit: the workers end their calls first
HUNG_BOUND = 8.0  # HOLDSLAYER_WORKER_HUNG_SECONDS here (30 by default): a test of seconds
BURST_SECONDS = 3.0


async def _poll(check, timeout: float, what: str, every: float = 0.2):
    """``check()`` until it returns something true; that value."""
    async with asyncio.timeout(timeout):
        while True:
            if value := await check():
                return value
            await asyncio.sleep(every)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first


async def _serve_two_workers(tmp_path, database_url, pbx: SimulatedPBX, **settings: str):
    """Start ``pbx`` and ``holdslayer serve --workers 2`` against it, with the capacity company's
    flow and ``settings`` on top: (process, API port, its log file)."""
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "flows", flows)
    write_flow(flows)
    await pbx.start()
    sock = free_tcp_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = _env(tmp_path, database_url, HOLDSLAYER_ARI_URL=pbx.ari_url, HOLDSLAYER_API_PORT=str(port), **settings)
    env["HOLDSLAYER_FLOWS_DIR"] = str(flows)
    log = open(tmp_path / "serve.log", "wb")  # a file, not a pipe: nothing blocks on a full buffer
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--workers", "2", cwd=REPO, env=env, stdout=log, stderr=log
    )
    return proc, port, log


async def _kill(proc) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def _stop_pbx(pbx: SimulatedPBX) -> tuple[bool, object]:
    """Whether ``pbx`` was left with no channel or bridge (and what it held), then stop it."""
    idle = await pbx.wait_idle(3.0)
    snapshot = pbx.snapshot()
    await pbx.stop()
    return idle, snapshot


def _clean_exit(proc, tmp_path) -> str:
    """``serve`` exited 0 with no traceback in its log; the log's text."""
    text = (tmp_path / "serve.log").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return text


@pytest.mark.postgresql  # worker processes
async def test_calls_spread_over_two_workers_and_survive_the_loss_of_one(tmp_path, corpus, http, database_url):
    # Two calls reach a person at about the same time: each rings a phone of its own.
    user = UserPhoneConfig(answer_after=0.5, hangup_after=8.0, speech="prompt:hello")
    phones = {USER_PHONE: user, OTHER_PHONE: user}
    # The calls still running at the end hold for ever (the capacity benchmark's company and flow).
    endless = Scenario.model_validate(ENDLESS_HOLD)
    scenarios = {**load_scenarios(), endless.number: endless}
    pbx = SimulatedPBX(SimConfig(scenarios=scenarios, corpus=corpus, user_phones=phones))
    proc, port, log = await _serve_two_workers(
        tmp_path, database_url, pbx,
        HOLDSLAYER_USER_DEVICES=json.dumps({"sip_phone": USER_PHONE, "other": OTHER_PHONE}), HOLDSLAYER_NAVIGATOR="offline",
        HOLDSLAYER_DIAL_IN_ASKS_INTENT="false",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    messages: list[dict] = []

    async def get(path: str) -> dict:
        async with http.get(base + path) as resp:
            assert resp.status == 200, (path, resp.status, await resp.text())
            return await resp.json()

    async def health() -> dict | None:
        try:
            return await get("/api/health")
        except OSError:
            return None

    async def place(number: str, device: str | None = None) -> str:
        async with http.post(f"{base}/api/calls", json={"number": number, "device": device}) as resp:
            assert resp.status == 201, await resp.text()
            return (await resp.json())["call_id"]

    async def status_of(call_id: str) -> tuple[str, str | None]:
        call = await get(f"/api/calls/{call_id}")
        return call["status"], call["reason"]

    def reaches(call_id: str, *statuses: str):
        async def check():
            status = await status_of(call_id)
            return status if status[0] in statuses else None

        return check

    def workers_ready(restarts: int = 0):
        async def check():
            body = await health()
            ready = body is not None and body["ari_connected"] and [w["ready"] for w in body["workers"]] == [True, True]
            return body if ready and body["workers"][1]["restarts"] == restarts else None

        return check

    async def mcp_waits_for_the_person(call_id: str) -> tuple[dict, dict]:
        """An AI assistant follows a call that runs on a worker: live, then the person."""
        async with streamable_http_client(base + "/mcp") as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                status = await session.call_tool("get_call_status", {"call_id": call_id})
                waited = await session.call_tool("wait_for_person", {"call_id": call_id, "timeout_seconds": 90})
                return status.structured_content, waited.structured_content

    async def follow(ws) -> None:
        async for message in ws:
            messages.append(json.loads(message.data))

    follower = assistant = None
    try:
        await _poll(workers_ready(), 90, "serve --workers 2 did not come up with both workers ready")
        ws = await http.ws_connect(f"{base}/ws/events")
        follower = asyncio.create_task(follow(ws))

        # The worker with the fewest live calls takes the next one: 1, 2, 1, 2.
        menu = await place(MENU, device="other")
        held_a, held_b, held_c = [await place(LONG_HOLD) for _ in range(3)]
        assistant = asyncio.create_task(mcp_waits_for_the_person(menu))
        store = Store(database_url)
        try:
            assert [store.get_call(c).worker for c in (menu, held_a, held_b, held_c)] == [1, 2, 1, 2]
        finally:
            store.close()
        listed = {c["call_id"]: c["worker"] for c in (await health())["calls"]}
        assert listed == {menu: 1, held_a: 2, held_b: 1, held_c: 2}
        async with http.get(f"{base}/metrics") as resp:
            scraped = await resp.text()
        by_state = [float(line.split()[-1]) for line in scraped.splitlines() if line.startswith("holdslayer_calls{")]
        assert sum(by_state) == 4  # the workers' calls, from the store

        for call_id in (held_a, held_c):
            await _poll(reaches(call_id, "on_hold"), 60, f"{call_id} never on hold")
        async with http.post(f"{base}/api/calls/{held_a}/hangup") as resp:  # a call of worker 2
            assert resp.status == 202, await resp.text()
        assert await _poll(reaches(held_a, "cancelled"), 20, "the hang-up did not end the call") == ("cancelled", "cancelled")
        async with http.post(f"{base}/api/calls/{held_a}/hangup") as resp:
            assert resp.status == 409  # it has ended: said as with one process

        # Worker 2 dies mid-hold: its call ends worker_lost, worker 1's calls go on, worker 2 is back.
        worker2 = (await health())["workers"][1]["pid"]
        os.kill(worker2, signal.SIGKILL)
        lost = await _poll(reaches(held_c, "failed", "completed", "cancelled"), 20, "the lost call did not end")
        assert lost == ("failed", "worker_lost")
        assert (await get(f"/api/calls/{held_c}"))["detail"] == f"worker 2 (pid {worker2}) killed by SIGKILL"
        assert (await status_of(held_b))[0] not in ("failed", "completed", "cancelled")
        restarted = await _poll(workers_ready(restarts=1), 60, "worker 2 was not started again")
        assert restarted["workers"][1]["pid"] != worker2

        # The restarted worker takes the next call (worker 1 has two).
        held_d = await place(ENDLESS_NUMBER)
        assert {c["call_id"]: c["worker"] for c in (await health())["calls"]}[held_d] == 2
        status, waited = await asyncio.wait_for(assistant, 90)
        assert status["live"] is True and status["status"] not in ("failed", "completed", "cancelled")
        assert (waited["outcome"], waited["call_id"]) == ("person", menu), waited
        for call_id in (menu, held_b):
            bridged = await _poll(reaches(call_id, "completed", "failed", "cancelled"), 120, f"{call_id} did not end")
            call = await get(f"/api/calls/{call_id}")
            assert bridged == ("completed", "bridged"), (call_id == menu, call["detail"], [e["type"] for e in call["events"]][-12:])
        await _poll(reaches(held_d, "on_hold"), 60, "the call on the restarted worker never on hold")

        # The user dials in: the front's application answers and hands the call to a worker.
        await pbx.place_inbound_call(ENDLESS_NUMBER)

        async def dialled_in():
            calls = (await health())["calls"]
            return next((c for c in calls if c["call_id"] != held_d), None)

        dialled = await _poll(dialled_in, 30, "the dial-in started no call")
        assert dialled["worker"] == 1  # worker 1's calls have ended, worker 2 holds one
        dial_in = dialled["call_id"]
        await _poll(reaches(dial_in, "on_hold"), 60, "the dialled-in call never on hold")

        def streamed_on_hold(call_id: str) -> bool:
            return any(
                m.get("call_id") == call_id and m["type"] == "CALL_STATUS" and m["data"]["status"] == "on_hold"
                for m in messages
            )

        async def both_streamed_on_hold():
            return streamed_on_hold(held_d) and streamed_on_hold(dial_in)

        await _poll(both_streamed_on_hold, 10, "the WebSocket did not show both calls on hold")

        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), EXIT_BOUND)
        await asyncio.wait_for(follower, 5)  # the server closed the WebSocket on its way out
    finally:
        await _kill(proc)
        for task in (follower, assistant):
            if task is not None:
                task.cancel()
        log.close()
        idle, snapshot = await _stop_pbx(pbx)
    _clean_exit(proc, tmp_path)
    assert idle, f"left in the PBX: {snapshot}"

    store = Store(database_url)
    try:
        calls = {c: store.get_call(c) for c in (menu, held_a, held_b, held_c, held_d, dial_in)}
    finally:
        store.close()
    for call_id in (held_d, dial_in):
        assert (calls[call_id].status.value, calls[call_id].reason.value) == ("cancelled", "shutdown")

    # One WebSocket client saw every call, each call's events in the order stored, from its
    # creation to its end, and the half-second audio windows the store keeps no row of. (The
    # server closes its WebSockets before it ends the calls still running at SIGTERM, with one
    # process as with several: the last call's stream stops on hold.)
    live = defaultdict(list)
    for message in messages:
        if message["type"] not in ("state", "heartbeat"):
            live[message["call_id"]].append(message)
    for call_id, record in calls.items():
        streamed = live[call_id]
        seqs = [e["seq"] for e in streamed]
        assert seqs == sorted(set(seqs)), f"{call_id}: out of order or repeated"
        types = [e["type"] for e in streamed if e["type"] != "AUDIO_CLASSIFIED"]
        stored = [e["type"] for e in record.events]
        if call_id in (held_d, dial_in):
            assert types == stored[: len(types)] and streamed_on_hold(call_id)
        else:
            assert types == stored and stored[-1] == "CALL_ENDED", call_id
        assert types[0] == "CALL_CREATED"
    for call_id in (menu, held_b):  # they heard a menu, music and a person
        assert any(e["type"] == "AUDIO_CLASSIFIED" for e in live[call_id]), call_id


@pytest.mark.postgresql  # worker processes
async def test_a_calls_media_counters_come_from_its_worker_and_a_hung_worker_is_killed(
    tmp_path, corpus, http, database_url
):
    endless = Scenario.model_validate(ENDLESS_HOLD)
    pbx = SimulatedPBX(SimConfig(scenarios={**load_scenarios(), endless.number: endless}, corpus=corpus))
    proc, port, log = await _serve_two_workers(
        tmp_path, database_url, pbx, HOLDSLAYER_NAVIGATOR="offline", HOLDSLAYER_WORKER_HUNG_SECONDS=str(HUNG_BOUND)
    )
    front = Front(http, f"http://127.0.0.1:{port}")
    loop = asyncio.get_running_loop()
    stopped: int | None = None
    try:
        await _poll(front.workers_ready(), 90, "serve --workers 2 did not come up with both workers ready")
        kept, held = await front.place(ENDLESS_NUMBER), await front.place(ENDLESS_NUMBER)
        assert {c["call_id"]: c["worker"] for c in (await front.health())["calls"]} == {kept: 1, held: 2}
        for call_id in (kept, held):
            await _poll(front.reaches(call_id, "on_hold"), 60, f"{call_id} never on hold")

        # Loss on worker 1's call: its counters reach the front in the worker's heartbeats.
        (sending,) = pbx.impair_rtp(
            RtpImpairment(loss=0.2, seconds=BURST_SECONDS, seed=11), channel_id=CallIds(kept).hold_media
        )
        await asyncio.sleep(BURST_SECONDS + 0.5)
        assert sending.over and sending.lost > 10  # ~20% of 150 packets

        def lost_packets(metrics: dict, call_id: str) -> float | None:
            return metrics.get(("holdslayer_call_media_lost_packets_total", (("call_id", call_id),)))

        async def counted():
            metrics = await front.scrape()
            return metrics if lost_packets(metrics, kept) == sending.lost else None

        metrics = await _poll(counted, 10, f"/metrics did not count the {sending.lost} packets withheld")
        per_call = {
            (name.removeprefix("holdslayer_call_media_").removesuffix("_total"), dict(labels)["call_id"]): value
            for (name, labels), value in metrics.items()
            if name.startswith("holdslayer_call_media_")
        }
        assert per_call[("concealed_frames", kept)] >= sending.lost
        assert per_call[("received_packets", kept)] > 100 and per_call[("received_packets", held)] > 100
        assert per_call[("lost_packets", held)] == 0  # worker 2's call heard no loss
        assert {call_id for _, call_id in per_call} == {kept, held}
        assert metrics[("holdslayer_media_lost_packets_total", ())] == sending.lost  # the totals agree
        listed = {c["call_id"]: c["media"] for c in (await front.health())["calls"]}
        assert listed[kept]["lost"] == sending.lost and listed[held]["received"] > 100

        # Worker 2 hangs: alive, silent. Its call ends once its last heartbeat is older than the bound.
        hung = (await front.health())["workers"][1]["pid"]
        os.kill(hung, signal.SIGSTOP)
        stopped, since = hung, loop.time()
        lost = await _poll(front.reaches(held, *FINAL), HUNG_BOUND + 15, "the hung worker's call did not end")
        took = loop.time() - since
        assert lost == ("failed", "worker_lost")
        assert took >= HUNG_BOUND - 2.0  # its last heartbeat came at most a second or so before it stopped
        detail = (await front.get(f"/api/calls/{held}"))["detail"]
        said = re.fullmatch(rf"worker 2 \(pid {hung}\) hung, no heartbeat for (\d+) s: killed", detail)
        assert said is not None and int(said[1]) >= HUNG_BOUND, detail
        assert (await front.status_of(kept))[0] == "on_hold"  # worker 1's call goes on
        metrics = await front.scrape()
        assert lost_packets(metrics, kept) == sending.lost and lost_packets(metrics, held) is None  # ended: no series

        restarted = await _poll(front.workers_ready(restarts=1), 60, "worker 2 was not started again")
        assert restarted["workers"][1]["pid"] != hung
        with pytest.raises(ProcessLookupError):
            os.kill(hung, 0)  # gone, not left stopped
        stopped = None
        after = await front.place(ENDLESS_NUMBER)  # to the new worker 2: it has fewer calls
        assert {c["call_id"]: c["worker"] for c in (await front.health())["calls"]} == {kept: 1, after: 2}
        await _poll(front.reaches(after, "on_hold"), 60, "the call on the restarted worker never on hold")

        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), EXIT_BOUND)
    finally:
        if stopped is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped, signal.SIGCONT)
        await _kill(proc)
        log.close()
        idle, snapshot = await _stop_pbx(pbx)
    text = _clean_exit(proc, tmp_path)
    assert f"worker 2 (pid {hung}) hung, no heartbeat for" in text
    assert idle, f"left in the PBX: {snapshot}"


FINAL = ("failed", "completed", "cancelled")


class Front:
    """The REST API of a running ``serve --workers N``."""

    def __init__(self, http, base: str) -> None:
        self.http = http
        self.base = base

    async def get(self, path: str) -> dict:
        async with self.http.get(self.base + path) as resp:
            assert resp.status == 200, (path, resp.status, await resp.text())
            return await resp.json()

    async def health(self) -> dict | None:
        try:
            return await self.get("/api/health")
        except OSError:
            return None

    async def place(self, number: str) -> str:
        async with self.http.post(f"{self.base}/api/calls", json={"number": number}) as resp:
            assert resp.status == 201, await resp.text()
            return (await resp.json())["call_id"]

    async def status_of(self, call_id: str) -> tuple[str, str | None]:
        call = await self.get(f"/api/calls/{call_id}")
        return call["status"], call["reason"]

    async def scrape(self) -> dict[tuple[str, tuple], float]:
        """/metrics: (series, sorted labels) -> value."""
        async with self.http.get(self.base + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def reaches(self, call_id: str, *statuses: str):
        async def check():
            status = await self.status_of(call_id)
            return status if status[0] in statuses else None

        return check

    def workers_ready(self, restarts: int = 0):
        async def check():
            body = await self.health()
            ready = body is not None and body["ari_connected"] and [w["ready"] for w in body["workers"]] == [True, True]
            return body if ready and body["workers"][1]["restarts"] == restarts else None

        return check
