"""Capacity benchmark: how many calls on hold one app process holds, and what each one costs.

    .venv/bin/python -m bench.capacity --calls 10,25,50,100 --seconds 120 --cores 1
    .venv/bin/python -m bench.capacity --calls 50 --seconds 1800 --stem capacity-long   # flatness
    .venv/bin/python -m bench.capacity --cores 2 --workers 2 --database-server postgresql://u:p@host/db

For each N: the simulated PBX runs in one process (``bench.capacity.sim_process``, pinned to the
other core), the app in another (``bench.capacity.app_process``: ``holdslayer serve`` plus a
read-only route; pinned with ``taskset``), N calls are placed through the REST API to a company
that holds for ever (``bench.capacity.company``), and once every call is on hold the app process
is measured for ``--seconds``:

With ``--workers N`` the app is ``serve --workers N`` (a front and N worker processes, on
PostgreSQL): CPU and memory are those of all its processes, the frame counters, backlog and loop
lag come from the workers' heartbeats, the event latency is measured across the processes (a
worker's event reaches the WebSocket through the database).

- CPU: the process's user + system time (every thread) over the window, in % of one core, per
  held call (the idle process's own CPU is reported apart and included in the per-call figure);
- RSS: resident memory at the end of the window minus before the first call, per call (a warm-up
  call, placed and hung up before, has loaded what a process loads once: models, voices); and its
  rise per call per minute of hold (from the per-minute samples);
- frames: received, lost (concealed by the jitter buffer), late, dropped unread, over the window,
  from the app's RTP endpoints; and the analysis backlog: the most received frames that waited
  to be heard (each is 20 ms of the far end the detector has not analysed yet);
- event latency: every AUDIO_CLASSIFIED event (one per call per 0.5 s) is timed as it reaches a
  WebSocket client of ``/ws/events``, against the end of the audio window it classifies:
  ``arrival - window end`` minus the same call's smallest such value (the part the load adds:
  queueing in the app, not the classifier's own window);
- the PBX: its media clock's late ticks and skipped time, and its CPU, so that audio the PBX
  sent late is not counted against the app.

"Held" means every call stayed on hold, no frame was lost, late or dropped, and the app kept
up: at least 99 % of the frames the window should carry were received, no more than
``MAX_BACKLOG_SECONDS`` of audio waited in an endpoint, and the event latency's 95th percentile
stayed under it too. Over loopback an overloaded app does not lose packets at first: they wait
in its sockets' receive buffers (seconds of audio) and everything it hears comes late.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.capacity.company import NUMBER, write_flow
from bench.capacity.procstat import cpu_seconds, tree_cpu_seconds, tree_rss_bytes

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
MAX_BACKLOG_SECONDS = 0.5
# Below this share of the frames the window should carry, the app left audio in its sockets.
MIN_RECEIVED_SHARE = 0.99
FRAME_SECONDS = 0.02
MB = 1024 * 1024
CLIENT_KEEPALIVE_SECONDS = 2.0
WARM_UP_SETTLED_PERCENT = 15.0  # per held warm-up call: loading is over (a held call is ~3%)


# ----------------------------------------------------------------------------- results


@dataclass
class Minute:
    """One sample of the long run: the process over the last interval."""

    at_seconds: float  # since the window began
    cpu_percent_per_call: float
    rss_mb: float
    lost_frames: int  # since the window began


@dataclass
class CapacityRow:
    calls: int
    cores: str  # the app's CPUs (taskset list)
    held_calls: int  # calls on hold through the whole window
    seconds: float  # the measured window
    cpu_percent: float  # the app process, % of one core
    cpu_percent_per_call: float
    idle_cpu_percent: float  # the app with no call
    rss_idle_mb: float
    rss_mb: float
    rss_per_call_mb: float
    frames_received: int
    frames_expected: int  # calls x window / 20 ms
    frames_lost: int  # concealed by the jitter buffer
    frames_late: int
    frames_dropped_unread: int
    backlog_max_seconds: float  # the furthest the analysis ran behind
    loop_lag_max_seconds: float  # the app's event loop
    events: int  # AUDIO_CLASSIFIED events seen on the WebSocket in the window
    event_latency_p50: float | None
    event_latency_p95: float | None
    event_latency_max: float | None
    sim_cpu_percent: float
    sim_late_ticks: int
    sim_skipped_seconds: float
    sim_max_lag_seconds: float
    failed_calls: list[str] = field(default_factory=list)  # status of calls that left hold
    minutes: list[Minute] = field(default_factory=list)

    @property
    def no_lost_frame(self) -> bool:
        return self.frames_lost == 0 and self.frames_late == 0 and self.frames_dropped_unread == 0

    @property
    def kept_up(self) -> bool:
        """The analysis kept pace: frames were read as they came (not left queued in the socket
        or the endpoint) and the events left without growing delay."""
        return (
            self.frames_received >= MIN_RECEIVED_SHARE * self.frames_expected
            and self.backlog_max_seconds <= MAX_BACKLOG_SECONDS
            and (self.event_latency_p95 or 0.0) <= MAX_BACKLOG_SECONDS
        )

    @property
    def held(self) -> bool:
        return self.held_calls == self.calls and self.no_lost_frame and self.kept_up and self.frames_received > 0

    @property
    def sim_on_time(self) -> bool:
        return self.sim_late_ticks == 0 and self.sim_skipped_seconds == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "no_lost_frame": self.no_lost_frame,
            "kept_up": self.kept_up,
            "held": self.held,
            "sim_on_time": self.sim_on_time,
        }


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def event_latencies(arrivals: dict[str, list[tuple[float, float]]]) -> list[float]:
    """Per call ``(window end in call time, arrival in wall time)`` -> each event's lateness
    beyond the call's quickest one (the call's clocks differ by a constant: its start)."""
    latencies: list[float] = []
    for events in arrivals.values():
        offsets = [arrival - t_end for t_end, arrival in events]
        if offsets:
            fastest = min(offsets)
            latencies.extend(offset - fastest for offset in offsets)
    return latencies


def _worker_key(worker: dict[str, Any]) -> str:
    return f"worker {worker['worker']} pid {worker['pid']}"  # a restarted worker counts from 0 again


def frame_totals(snapshot: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per call, the sums over its endpoints of the counters the benchmark reads; with worker
    processes, per worker, its totals since it started."""
    if "workers" in snapshot:
        return {
            _worker_key(w): {
                "received": w["media"].get("received", 0),
                "lost": w["media"].get("lost", 0),
                "late": w["media"].get("late", 0),
                "unread_frames_dropped": w["media"].get("dropped", 0),
            }
            for w in snapshot["workers"]
        }
    totals: dict[str, dict[str, int]] = {}
    for call in snapshot["calls"]:
        sums = {"received": 0, "lost": 0, "late": 0, "unread_frames_dropped": 0}
        for stats in call["endpoints"].values():
            for key in sums:
                sums[key] += stats[key]
        totals[call["call_id"]] = sums
    return totals


def frame_deltas(before: dict[str, Any], after: dict[str, Any], calls: list[str]) -> dict[str, int]:
    start, end = frame_totals(before), frame_totals(after)
    keys = ("received", "lost", "late", "unread_frames_dropped")
    out = dict.fromkeys(keys, 0)
    # With workers, no call starts or ends in the window: the workers' totals grow by its calls' frames.
    for call_id in calls if "workers" not in after else list(end):
        if call_id in start and call_id in end:
            for key in keys:
                out[key] += end[call_id][key] - start[call_id][key]
    return out


def max_backlog_frames(snapshot: dict[str, Any]) -> int:
    if "workers" in snapshot:
        return max((w["backlog_frames"] for w in snapshot["workers"]), default=0)
    return max((s["unread"] for c in snapshot["calls"] for s in c["endpoints"].values()), default=0)


def expected_frames(before: dict[str, Any], after: dict[str, Any], calls: int, window: float) -> int:
    """The frames the window should carry: calls x window / 20 ms. With workers, their counters
    are as of their last heartbeats: each worker's calls over the time between its two."""
    if "workers" not in after:
        return int(round(calls * window / FRAME_SECONDS))
    start = {_worker_key(w): w for w in before["workers"]}
    return int(
        round(
            sum(
                w["active_calls"] * (w["at"] - start[_worker_key(w)]["at"]) / FRAME_SECONDS
                for w in after["workers"]
                if _worker_key(w) in start
            )
        )
    )


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpus: str | None, argv: list[str]) -> list[str]:
    if cpus is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", cpus, *argv]


@dataclass
class RunConfig:
    app_cpus: str | None = "0"
    sim_cpus: str | None = "1"
    ramp_per_second: float = 10.0  # calls placed per second
    settle_seconds: float = 3.0  # after the last call is on hold, before the window
    sample_seconds: float = 1.0
    minute_seconds: float = 60.0  # the long run's sampling interval
    profile_path: Path | None = None
    keep_dir: Path | None = None
    media_port_min: int = 31000
    media_port_max: int = 31999
    # serve --workers N: the calls in N worker processes; needs a PostgreSQL server whose role may
    # create databases (each N gets a database of its own, dropped after).
    workers: int = 1
    database_server: str | None = None


def create_database(config: RunConfig) -> str:
    """A new, empty PostgreSQL database on ``config.database_server``; its URL."""
    import psycopg

    if not config.database_server or not config.database_server.startswith(("postgresql://", "postgres://")):
        raise ValueError("--workers above 1 needs --database-server postgresql://user:password@host/db (a role that may create databases)")
    name = f"hs_capacity_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(config.database_server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = config.database_server.rpartition("/")
    return f"{base}/{name}"


def drop_database(config: RunConfig, url: str) -> None:
    import psycopg

    name = url.rpartition("/")[2]
    with psycopg.connect(config.database_server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack:
    """One simulated PBX process and one app process, for one N."""

    def __init__(self, config: RunConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.sim: subprocess.Popen | None = None
        self.app: subprocess.Popen | None = None
        self.api_url = ""
        self._database: str | None = None  # the PostgreSQL database made for this N

    async def __aenter__(self) -> Stack:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        python = sys.executable
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDSLAYER_")}
        env["PYTHONPATH"] = str(REPO)
        status = self.workdir / "sim.json"
        status.unlink(missing_ok=True)  # a kept directory's earlier run
        self.sim = subprocess.Popen(
            pinned(self.config.sim_cpus, [python, "-m", "bench.capacity.sim_process", "--status", str(status)]),
            cwd=self.workdir, env=env, stdout=open(self.workdir / "sim.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        ari_url = (await self._wait_for_sim(status))["ari_url"]
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        flows = self.workdir / "flows"
        write_flow(flows)
        database_url = f"sqlite:///{self.workdir / 'calls.db'}"
        if self.config.workers > 1:
            database_url = self._database = await asyncio.to_thread(create_database, self.config)
        app_env = {
            **env,
            "HOLDSLAYER_ARI_URL": ari_url,
            "HOLDSLAYER_API_PORT": str(port),
            "HOLDSLAYER_DATABASE_URL": database_url,
            "HOLDSLAYER_WORKERS": str(self.config.workers),
            "HOLDSLAYER_RECORDINGS_DIR": str(self.workdir / "recordings"),
            "HOLDSLAYER_FLOWS_DIR": str(flows),
            "HOLDSLAYER_MEDIA_PORT_MIN": str(self.config.media_port_min),
            "HOLDSLAYER_MEDIA_PORT_MAX": str(self.config.media_port_max),
            "HOLDSLAYER_NAVIGATOR": "offline",
            "HOLDSLAYER_MAX_HOLD_TIME": "86400",
            "HOLDSLAYER_USER_DEVICES": json.dumps({"sip_phone": "PJSIP/userphone"}),
        }
        if self.config.profile_path is not None:
            app_env["HOLDSLAYER_BENCH_PROFILE"] = str(self.config.profile_path)
        self.app = subprocess.Popen(
            pinned(self.config.app_cpus, [python, "-m", "bench.capacity.app_process"]),
            cwd=self.workdir, env=app_env, stdout=open(self.workdir / "app.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        await self._wait_for_app()

    async def __aexit__(self, *exc_info: object) -> None:
        for process in (self.app, self.sim):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in (self.app, self.sim):
            if process is None:
                continue
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._database is not None:
            await asyncio.to_thread(drop_database, self.config, self._database)
            self._database = None

    def sim_status(self) -> dict[str, Any]:
        return json.loads((self.workdir / "sim.json").read_text())

    async def _wait_for_sim(self, status: Path, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if status.exists():
                return json.loads(status.read_text())
            if self.sim is not None and self.sim.poll() is not None:
                raise RuntimeError(f"the simulated PBX exited: {(self.workdir / 'sim.log').read_text()[-2000:]}")
            await asyncio.sleep(0.1)
        raise RuntimeError("the simulated PBX did not start")

    async def _wait_for_app(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.app is not None and self.app.poll() is not None:
                    raise RuntimeError(f"the app exited: {(self.workdir / 'app.log').read_text()[-2000:]}")
                try:
                    async with http.get(self.api_url + "/api/health") as resp:
                        body = await resp.json() if resp.status == 200 else {}
                        # With worker processes, they too must be up and connected to take calls.
                        if body.get("ari_connected") and all(w["ready"] for w in body.get("workers", [])):
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("the app did not connect to the simulated PBX")


# ----------------------------------------------------------------------------- one N


class CapacityRun:
    def __init__(self, calls: int, seconds: float, config: RunConfig) -> None:
        self.calls = calls
        self.seconds = seconds
        self.config = config
        self.arrivals: dict[str, list[tuple[float, float]]] = {}  # call -> (t_end, arrival) in the window
        self._window_open = False

    async def run(self) -> CapacityRow:
        if self.config.keep_dir is not None:  # the processes' logs, database and recordings stay
            workdir = self.config.keep_dir / f"n{self.calls}"
            workdir.mkdir(parents=True, exist_ok=True)
            return await self._run_in(workdir)
        with tempfile.TemporaryDirectory(prefix="holdslayer-capacity-") as tmp:
            return await self._run_in(Path(tmp))

    async def _run_in(self, workdir: Path) -> CapacityRow:
        # The app's server (uvicorn) closes a connection idle for 5 s; one reused later than that
        # may be closed under the request (the warm-up waits longer than that between requests).
        connector = aiohttp.TCPConnector(keepalive_timeout=CLIENT_KEEPALIVE_SECONDS)
        async with Stack(self.config, workdir) as stack, aiohttp.ClientSession(connector=connector) as http:
            return await self._measure(stack, http)

    async def _measure(self, stack: Stack, http: aiohttp.ClientSession) -> CapacityRow:
        assert stack.app is not None and stack.sim is not None
        app_pid, sim_pid = stack.app.pid, stack.sim.pid
        await self._media(stack, http)  # starts the loop-lag probe before the idle sample
        # One call first, hung up: what the process loads once (models, voices) is not per call.
        # (one per worker process: each loads its own)
        warm_up = await self._place_calls(stack, http, max(1, self.config.workers))
        await self._wait_on_hold(stack, http, warm_up)
        # The hold loads things in the background (the voice, its lines): held until they are done
        # (a held call alone costs a few percent), so that the idle sample has them.
        await self._settle(app_pid, below_percent=WARM_UP_SETTLED_PERCENT * len(warm_up))
        await self._hang_up(stack, http, warm_up)
        await self._wait_ended(stack, http, warm_up)
        await self._settle(app_pid, below_percent=WARM_UP_SETTLED_PERCENT)
        idle_cpu = await self._cpu_percent(app_pid, 3.0)
        rss_idle = tree_rss_bytes(app_pid)
        watcher = asyncio.create_task(self._watch_events(stack, http))
        call_ids = await self._place_calls(stack, http, self.calls)
        await self._wait_on_hold(stack, http, call_ids)
        await asyncio.sleep(self.config.settle_seconds)

        if self.config.profile_path is not None:
            await http.post(stack.api_url + "/bench/profile/start")
        before = await self._media(stack, http)
        sim_before = stack.sim_status()
        cpu0, sim_cpu0, wall0 = tree_cpu_seconds(app_pid), cpu_seconds(sim_pid), time.monotonic()
        self._window_open = True
        backlog, loop_lag, minutes = 0, 0.0, []
        minute_cpu, minute_wall = cpu0, wall0
        while (now := time.monotonic()) < wall0 + self.seconds:
            await asyncio.sleep(min(self.config.sample_seconds, wall0 + self.seconds - now))
            snapshot = await self._media(stack, http)
            backlog = max(backlog, max_backlog_frames(snapshot))
            loop_lag = max(loop_lag, snapshot["loop_lag_seconds"])
            if time.monotonic() - minute_wall >= self.config.minute_seconds:
                cpu, wall = tree_cpu_seconds(app_pid), time.monotonic()
                lost = frame_deltas(before, snapshot, call_ids)
                minutes.append(
                    Minute(
                        at_seconds=round(wall - wall0, 1),
                        cpu_percent_per_call=round(100 * (cpu - minute_cpu) / (wall - minute_wall) / self.calls, 3),
                        rss_mb=round(tree_rss_bytes(app_pid) / MB, 1),
                        lost_frames=lost["lost"] + lost["late"],
                    )
                )
                minute_cpu, minute_wall = cpu, wall
        cpu1, sim_cpu1, wall1 = tree_cpu_seconds(app_pid), cpu_seconds(sim_pid), time.monotonic()
        rss_end = tree_rss_bytes(app_pid)
        self._window_open = False
        after = await self._media(stack, http)
        sim_after = stack.sim_status()
        if self.config.profile_path is not None:
            await http.post(stack.api_url + "/bench/profile/stop")
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await self._hang_up(stack, http, call_ids)

        statuses = {c["call_id"]: c["status"] for c in after["calls"]}
        held = [c for c in call_ids if statuses.get(c) == "on_hold"]
        frames = frame_deltas(before, after, call_ids)
        window = wall1 - wall0
        cpu_percent = 100 * (cpu1 - cpu0) / window
        latencies = event_latencies(self.arrivals)
        return CapacityRow(
            calls=self.calls,
            cores=self.config.app_cpus or "any",
            held_calls=len(held),
            seconds=round(window, 1),
            cpu_percent=round(cpu_percent, 1),
            cpu_percent_per_call=round(cpu_percent / self.calls, 3),
            idle_cpu_percent=round(idle_cpu, 2),
            rss_idle_mb=round(rss_idle / MB, 1),
            rss_mb=round(rss_end / MB, 1),
            rss_per_call_mb=round((rss_end - rss_idle) / MB / self.calls, 2),
            frames_received=frames["received"],
            frames_expected=expected_frames(before, after, len(call_ids), window),
            frames_lost=frames["lost"],
            frames_late=frames["late"],
            frames_dropped_unread=frames["unread_frames_dropped"],
            backlog_max_seconds=round(backlog * FRAME_SECONDS, 2),
            loop_lag_max_seconds=loop_lag,
            events=len(latencies),
            event_latency_p50=_rounded(quantile(latencies, 0.5)),
            event_latency_p95=_rounded(quantile(latencies, 0.95)),
            event_latency_max=_rounded(max(latencies, default=None)),
            sim_cpu_percent=round(100 * (sim_cpu1 - sim_cpu0) / window, 1),
            sim_late_ticks=sim_after["late_ticks"] - sim_before["late_ticks"],
            sim_skipped_seconds=round(sim_after["skipped_seconds"] - sim_before["skipped_seconds"], 3),
            sim_max_lag_seconds=sim_after["max_lag_seconds"],
            failed_calls=sorted(f"{c}: {statuses.get(c, 'ended')}" for c in call_ids if c not in held),
            minutes=minutes,
        )

    async def _media(self, stack: Stack, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(stack.api_url + "/bench/media") as resp:
            resp.raise_for_status()
            return await resp.json()

    async def _settle(self, pid: int, *, below_percent: float, limit_seconds: float = 60.0) -> None:
        """Wait (at most ``limit_seconds``) until the process uses less than ``below_percent`` of a core."""
        deadline = time.monotonic() + limit_seconds
        while await self._cpu_percent(pid, 2.0) >= below_percent and time.monotonic() < deadline:
            pass

    @staticmethod
    async def _cpu_percent(pid: int, seconds: float) -> float:
        cpu0, wall0 = tree_cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        return 100 * (tree_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)

    async def _place_calls(self, stack: Stack, http: aiohttp.ClientSession, count: int) -> list[str]:
        call_ids = []
        for _ in range(count):
            async with http.post(stack.api_url + "/api/calls", json={"number": NUMBER, "intent": "hold"}) as resp:
                body = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"POST /api/calls: {resp.status} {body}")
                call_ids.append(body["call_id"])
            await asyncio.sleep(1 / self.config.ramp_per_second)
        return call_ids

    async def _wait_on_hold(self, stack: Stack, http: aiohttp.ClientSession, call_ids: list[str]) -> None:
        deadline = time.monotonic() + 60 + len(call_ids) * 0.5
        while time.monotonic() < deadline:
            statuses = {c["call_id"]: c["status"] for c in (await self._media(stack, http))["calls"]}
            if all(statuses.get(c) == "on_hold" for c in call_ids):
                return
            if any(c not in statuses for c in call_ids):
                break  # a call ended before it reached the hold
            await asyncio.sleep(0.5)
        raise RuntimeError(f"calls did not all reach the hold: {statuses}")

    async def _wait_ended(self, stack: Stack, http: aiohttp.ClientSession, call_ids: list[str]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            live = {c["call_id"] for c in (await self._media(stack, http))["calls"]}
            if not live & set(call_ids):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"calls did not end: {call_ids}")

    async def _watch_events(self, stack: Stack, http: aiohttp.ClientSession) -> None:
        async with http.ws_connect(stack.api_url.replace("http", "ws", 1) + "/ws/events", max_msg_size=0) as ws:
            async for message in ws:
                arrival = time.monotonic()
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(message.data)
                if self._window_open and event.get("type") == "AUDIO_CLASSIFIED":
                    self.arrivals.setdefault(event["call_id"], []).append((event["data"]["t_end"], arrival))

    async def _hang_up(self, stack: Stack, http: aiohttp.ClientSession, call_ids: list[str]) -> None:
        for call_id in call_ids:
            async with http.post(f"{stack.api_url}/api/calls/{call_id}/hangup") as resp:
                await resp.read()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ----------------------------------------------------------------------------- report


def largest_held(rows: list[CapacityRow]) -> int | None:
    held = [row.calls for row in rows if row.held]
    return max(held) if held else None


def table(rows: list[CapacityRow]) -> str:
    lines = [
        "| calls | app CPUs | held | CPU % (process) | CPU % per call | RSS MB | RSS per call MB | frames recv / expected "
        "| lost | late | backlog max s | event latency p50 / p95 / max s | PBX late ticks | PBX CPU % |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        latency = " / ".join("-" if v is None else f"{v:.3f}" for v in (r.event_latency_p50, r.event_latency_p95, r.event_latency_max))
        lines.append(
            f"| {r.calls} | {r.cores} | {r.held_calls}{'' if r.held else ' ✗'} | {r.cpu_percent:.1f} | {r.cpu_percent_per_call:.2f} "
            f"| {r.rss_mb:.0f} | {r.rss_per_call_mb:.2f} | {r.frames_received} / {r.frames_expected} | {r.frames_lost} "
            f"| {r.frames_late} | {r.backlog_max_seconds:.2f} | {latency} | {r.sim_late_ticks} | {r.sim_cpu_percent:.0f} |"
        )
    return "\n".join(lines)


def minutes_table(row: CapacityRow) -> str:
    lines = ["| minute | CPU % per call | RSS MB | frames lost or late so far |", "|---:|---:|---:|---:|"]
    for m in row.minutes:
        lines.append(f"| {m.at_seconds / 60:.0f} | {m.cpu_percent_per_call:.2f} | {m.rss_mb:.0f} | {m.lost_frames} |")
    return "\n".join(lines)


def flatness(row: CapacityRow) -> dict[str, float] | None:
    """Slopes over the long run: RSS MB per call per minute and CPU % per call per hour."""
    if len(row.minutes) < 3:
        return None
    t = [m.at_seconds / 60 for m in row.minutes]
    rss = [m.rss_mb for m in row.minutes]
    cpu = [m.cpu_percent_per_call for m in row.minutes]
    rss_slope = statistics.linear_regression(t, rss).slope
    cpu_slope = statistics.linear_regression(t, cpu).slope
    return {
        "rss_mb_per_call_per_minute": round(rss_slope / row.calls, 4),
        "cpu_percent_per_call_per_hour": round(cpu_slope * 60, 4),
        "cpu_first_minute": cpu[0],
        "cpu_last_minute": cpu[-1],
        "rss_first_minute_mb": rss[0],
        "rss_last_minute_mb": rss[-1],
    }


def report(rows: list[CapacityRow], meta: dict[str, Any]) -> str:
    workers = meta.get("workers", 1)
    processes = f", {workers} worker processes" if workers > 1 else ""
    out = [f"# Capacity ({meta['cores']} core(s) for the app{processes})", ""]
    out.append(
        f"Commit {meta['commit']}, {meta['at']}; {meta['seconds']} s measured per N after every call was on hold; "
        f"load average {meta['load_before']} before and {meta['load_after']} after (a shared machine)."
    )
    out += ["", table(rows), ""]
    best = largest_held(rows)
    out.append(f"Largest N held with no lost frame: {best if best is not None else 'none'}.")
    for row in rows:
        if row.minutes:
            out += ["", f"Per minute at N = {row.calls}:", "", minutes_table(row)]
            flat = flatness(row)
            if flat:
                out += ["", "Slopes: " + ", ".join(f"{k} {v}" for k, v in flat.items())]
    return "\n".join(out) + "\n"


def save(rows: list[CapacityRow], out_dir: Path, meta: dict[str, Any], stem: str) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": meta,
        "largest_held": largest_held(rows),
        "rows": [row.to_dict() for row in rows],
        "flatness": {str(row.calls): flatness(row) for row in rows if row.minutes},
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    text = report(rows, meta)
    (out_dir / f"{stem}.md").write_text(text)
    return text
