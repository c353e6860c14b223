"""The worker processes of ``holdslayer serve --workers N``, kept running by the front.

Each worker is ``holdslayer worker --index i`` (i = 1..N), a process of its own (its own core):
its own ARI application (``<ari_app>-w<i>``), RTP ports and store writer (``app.runtime``). The
front starts them, hears their heartbeats (``WORKERS_CHANNEL``: alive, ARI connected, live
calls and each one's media counters), and when one exits unasked it calls ``on_lost`` (the
front ends that worker's calls, ``failed / worker_lost``) and starts it again, waiting longer
after each quick failure. A worker that stops heartbeating without exiting (deadlocked, stuck
in C, SIGSTOPped) is hung: past ``hung_after`` seconds of silence (``WORKER_START_SECONDS``
before its first heartbeat) it is killed, and its exit takes that same path. On ``stop`` every
worker gets SIGTERM, ends its calls (``cancelled / shutdown``) and exits; one that does not
within the grace time is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, replace

from app.media.health import COUNTERS, MediaHealth

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
HEARTBEAT_STALE_SECONDS = 5.0  # a worker silent this long takes no new call
STOP_GRACE_SECONDS = 20.0  # a worker ends its calls (up to 15 s each, side by side), then exits
QUICK_FAILURE_SECONDS = 30.0  # a worker that dies sooner than this after its start failed quickly
MAX_RESTART_DELAY_SECONDS = 30.0
# A worker silent this long is hung: killed, its calls end (worker_lost). Far above a busy loop's
# lag, so only a worker that cannot run at all is taken for hung (HOLDSLAYER_WORKER_HUNG_SECONDS).
WORKER_HUNG_SECONDS = 30.0
# From its start to its first heartbeat: imports (a few seconds, more on a loaded machine) and its
# database connection (up to 30 s before it gives up and exits); ARI may come later (it beats meanwhile).
WORKER_START_SECONDS = 60.0
# A watch this late means the front's own loop was stalled: it heard nobody meanwhile.
FRONT_STALLED_SECONDS = HEARTBEAT_STALE_SECONDS


@dataclass(frozen=True)
class Heartbeat:
    """What a worker says of itself every HEARTBEAT_SECONDS. ``calls``: each live call's media
    counters; when they do not fit in one notification, the heartbeat is sent as ``parts``
    notifications (``payloads``), each whole but for its share of the calls."""

    worker: int
    pid: int
    ari_connected: bool
    active_calls: int
    node: str = ""  # HOLDSLAYER_NODE: the host; fronts of other hosts ignore it
    at: float = 0.0  # its wall clock (time.time()) when it said so
    media: dict[str, int] = field(default_factory=dict)  # MediaHealth of every call since the worker started
    backlog_frames: int = 0  # the most frames waiting to be heard in a live call (x 20 ms)
    loop_lag_seconds: float = 0.0
    calls: dict[str, MediaHealth] = field(default_factory=dict)  # call id -> its counters (this part's calls)
    part: int = 0
    parts: int = 1

    def encode(self) -> str:
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw["calls"] = {call_id: _compact(health) for call_id, health in self.calls.items()}
        return json.dumps(raw, separators=(",", ":"))

    def payloads(self, limit: int) -> list[str]:
        """This heartbeat as notifications of at most ``limit`` bytes: as many as its calls need
        (140 calls with two hours' counters fit in one of 7900 bytes), each with every field but
        ``calls``, which are shared out among them. A call whose entry alone does not fit is left
        out, with a warning."""
        room = limit - _size(replace(self, calls={}, part=_MAX_PARTS, parts=_MAX_PARTS).encode())
        shares: list[dict[str, MediaHealth]] = [{}]
        used = 0
        for call_id, health in self.calls.items():
            # Its entry without the braces of its own object, with its comma.
            size = _size(json.dumps({call_id: _compact(health)}, separators=(",", ":"))) - 1
            if size > room:
                log.warning("the media counters of call %s do not fit in a heartbeat", call_id)
                continue
            if used + size > room:
                shares.append({})
                used = 0
            shares[-1][call_id] = health
            used += size
        return [replace(self, calls=share, part=i, parts=len(shares)).encode() for i, share in enumerate(shares)]

    @classmethod
    def decode(cls, text: str) -> Heartbeat:
        try:
            raw = json.loads(text)
            beat = cls(
                int(raw["worker"]), int(raw["pid"]), bool(raw["ari_connected"]), int(raw["active_calls"]),
                str(raw.get("node", "")), float(raw.get("at", 0.0)), {str(k): int(v) for k, v in (raw.get("media") or {}).items()},
                int(raw.get("backlog_frames", 0)), float(raw.get("loop_lag_seconds", 0.0)),
                {str(k): _expand(v) for k, v in (raw.get("calls") or {}).items()},
                int(raw.get("part", 0)), int(raw.get("parts", 1)),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a heartbeat: {exc}") from None
        if not 0 <= beat.part < beat.parts:
            raise ValueError(f"not a heartbeat: part {beat.part} of {beat.parts}")
        return beat


_MAX_PARTS = 99_999  # as wide as any part number written: the room left for calls is never overstated


def _size(text: str) -> int:
    return len(text.encode())


def _compact(health: MediaHealth) -> list[int]:
    """Its counters in ``COUNTERS`` order, trailing zeros left out: most calls count only packets
    received, some lost and concealed too; a few hundred calls fit in one notification."""
    counts = [getattr(health, name) for name in COUNTERS]
    while counts and counts[-1] == 0:
        counts.pop()
    return counts


def _expand(counts: object) -> MediaHealth:
    if not isinstance(counts, list) or len(counts) > len(COUNTERS):
        raise ValueError(f"not media counters: {counts!r}")
    return MediaHealth(*(int(n) for n in counts))


class CallMedia:
    """Each live call's media counters in one worker, as its heartbeats tell them: the parts of
    one heartbeat (same pid and time) gathered in order. A whole set replaces the last; a set
    missing a part is dropped (the next comes a second later)."""

    def __init__(self) -> None:
        self.calls: dict[str, MediaHealth] = {}
        self.pid: int | None = None  # of the process that sent ``calls``
        self._gathering: dict[str, MediaHealth] = {}
        self._of: tuple[int, float] | None = None  # the heartbeat being gathered: pid, time
        self._next = 0

    def hear(self, beat: Heartbeat) -> None:
        if beat.part == 0:
            self._gathering, self._of, self._next = {}, (beat.pid, beat.at), 0
        if self._of != (beat.pid, beat.at) or beat.part != self._next:
            self._of = None
            return
        self._gathering.update(beat.calls)
        self._next += 1
        if self._next == beat.parts:
            self.calls, self.pid, self._of = self._gathering, beat.pid, None


def restart_delay(quick_failures: int) -> float:
    """Seconds before starting a worker again: at once after a long life, then 1, 2, 4, ... 30."""
    if quick_failures <= 0:
        return 0.0
    return min(2.0 ** (quick_failures - 1), MAX_RESTART_DELAY_SECONDS)


def hung_reason(
    now: float, started_at: float, heard_at: float | None, hearing_since: float, *, hung_after: float, start_allowance: float
) -> str | None:
    """Why a running worker counts as hung (None: it does not). ``heard_at``: its last heartbeat
    (None: none yet); silence counts only since ``hearing_since``, from when the front could hear."""
    if heard_at is None:
        if now - max(started_at, hearing_since) > max(start_allowance, hung_after):
            return f"hung, no heartbeat {now - started_at:.0f} s after its start"
        return None
    if now - max(heard_at, hearing_since) > hung_after:
        return f"hung, no heartbeat for {now - heard_at:.0f} s"
    return None


def exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_failures: int = 0
    heartbeat: Heartbeat | None = None
    heard_at: float = 0.0
    hung: str | None = None  # why it was killed as hung
    media: CallMedia = field(default_factory=CallMedia)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def last_heard(self) -> float | None:
        """When its current process last heartbeat (None: not yet)."""
        if self.heartbeat is None or self.process is None or self.heartbeat.pid != self.process.pid:
            return None
        return self.heard_at


class WorkerPool:
    """Starts ``count`` workers (``argv(i)``, environment ``env``), restarts the ones that die and
    kills the ones that hang. ``hearing()`` says whether the front can hear heartbeats now (its
    listener is connected): silence while it cannot is not held against a worker."""

    def __init__(
        self,
        count: int,
        *,
        on_lost: Callable[[int, str], Awaitable[None]],
        node: str = "",
        env: Mapping[str, str] | None = None,
        argv: Callable[[int], list[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        hung_after: float = WORKER_HUNG_SECONDS,
        start_allowance: float = WORKER_START_SECONDS,
        hearing: Callable[[], bool] = lambda: True,
        watch_every: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._workers = {i: _Worker(i) for i in range(1, count + 1)}
        self.node = node
        self._on_lost = on_lost
        self._env = dict(os.environ if env is None else env)
        self._env["HOLDSLAYER_WORKERS"] = str(count)  # `serve --workers N` overrides the setting: tell them
        self._argv = argv or (lambda i: [sys.executable, "-m", "app.cli", "worker", "--index", str(i)])
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._hung_after = hung_after
        self._start_allowance = start_allowance
        self._hearing = hearing
        self._watch_every = watch_every
        self._watched_at = self._hearing_since = clock()

    @property
    def count(self) -> int:
        return len(self._workers)

    async def start(self) -> None:
        self._stopping = False
        for worker in self._workers.values():
            await self._spawn(worker)
            self._tasks.append(asyncio.create_task(self._supervise(worker), name=f"worker-{worker.index}"))
        self._watched_at = self._hearing_since = self._clock()
        self._tasks.append(asyncio.create_task(self._watch(), name="worker-watchdog"))

    def ready(self) -> list[int]:
        """The workers that may take a new call: running, ARI connected, heard from lately."""
        now = self._clock()
        return [
            w.index
            for w in self._workers.values()
            if w.alive
            and w.heartbeat is not None
            and w.heartbeat.pid == w.process.pid  # type: ignore[union-attr]
            and w.heartbeat.ari_connected
            and now - w.heard_at <= HEARTBEAT_STALE_SECONDS
        ]

    async def on_heartbeat(self, payload: str) -> None:
        try:
            beat = Heartbeat.decode(payload)
        except ValueError as error:
            log.warning("ignored a heartbeat: %s", error)
            return
        worker = self._workers.get(beat.worker) if beat.node == self.node else None
        if worker is not None:
            worker.heartbeat, worker.heard_at = beat, self._clock()
            if worker.alive and beat.pid == worker.process.pid:  # type: ignore[union-attr]
                worker.media.hear(beat)

    def describe(self) -> list[dict]:
        """Each worker as /api/health shows it."""
        ready = set(self.ready())
        return [
            {
                "index": w.index,
                "pid": w.process.pid if w.process is not None else None,
                "alive": w.alive,
                "ready": w.index in ready,
                "ari_connected": bool(w.heartbeat and w.heartbeat.ari_connected),
                "active_calls": w.heartbeat.active_calls if w.heartbeat is not None and w.alive else 0,
                "restarts": w.restarts,
                "event_loop_lag_seconds": w.heartbeat.loop_lag_seconds if w.heartbeat is not None else None,
            }
            for w in self._workers.values()
        ]

    def heartbeats(self) -> list[Heartbeat]:
        """The last heartbeat of each running worker (since its current start)."""
        return [
            w.heartbeat
            for w in self._workers.values()
            if w.alive and w.heartbeat is not None and w.heartbeat.pid == w.process.pid  # type: ignore[union-attr]
        ]

    def call_media(self) -> dict[str, MediaHealth]:
        """Each live call's media counters in the running workers, as their last heartbeats said."""
        found: dict[str, MediaHealth] = {}
        for w in self._workers.values():
            if w.alive and w.media.pid == w.process.pid:  # type: ignore[union-attr]
                found.update(w.media.calls)
        return found

    def pid(self, index: int) -> int | None:
        worker = self._workers[index]
        return worker.process.pid if worker.alive else None  # type: ignore[union-attr]

    def kill_hung(self) -> list[int]:
        """SIGKILL every running worker silent past its bound (``hung_reason``): it may not handle
        SIGTERM, and its exit ends its calls and starts it again. The indices of those killed."""
        if self._stopping:
            return []
        now = self._clock()
        if not self._hearing() or now - self._watched_at > FRONT_STALLED_SECONDS:
            self._hearing_since = now  # the front heard nothing meanwhile: silence counts from now
        self._watched_at = now
        killed = []
        for worker in self._workers.values():
            if not worker.alive or worker.hung is not None:
                continue
            reason = hung_reason(
                now, worker.started_at, worker.last_heard(), self._hearing_since,
                hung_after=self._hung_after, start_allowance=self._start_allowance,
            )  # fmt: skip
            if reason is None:
                continue
            worker.hung = reason
            log.error("worker %d (pid %d) %s: killed", worker.index, worker.process.pid, reason)  # type: ignore[union-attr]
            with contextlib.suppress(ProcessLookupError):  # it exited just now: its exit is handled
                worker.process.kill()  # type: ignore[union-attr]
            killed.append(worker.index)
        return killed

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._watch_every)
            self.kill_hung()

    async def stop(self) -> None:
        """SIGTERM every worker (each ends its calls, ``shutdown``), wait, kill what remains."""
        self._stopping = True  # from now on no worker is taken for hung
        running = [w.process for w in self._workers.values() if w.alive]
        for process in running:
            process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        if running:
            _, late = await asyncio.wait(
                {asyncio.create_task(p.wait()) for p in running}, timeout=STOP_GRACE_SECONDS  # type: ignore[union-attr]
            )
            for process in running:
                if process.returncode is None:  # type: ignore[union-attr]
                    log.error("worker pid %d did not stop within %g s: killed", process.pid, STOP_GRACE_SECONDS)  # type: ignore[union-attr]
                    process.kill()  # type: ignore[union-attr]
            await asyncio.gather(*late, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _spawn(self, worker: _Worker) -> None:
        worker.heartbeat, worker.hung, worker.media = None, None, CallMedia()
        worker.started_at = self._clock()
        worker.process = await asyncio.create_subprocess_exec(*self._argv(worker.index), env=self._env)
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)

    async def _supervise(self, worker: _Worker) -> None:
        while True:
            assert worker.process is not None
            returncode = await worker.process.wait()
            if self._stopping:
                return
            lived = self._clock() - worker.started_at
            worker.quick_failures = worker.quick_failures + 1 if lived < QUICK_FAILURE_SECONDS else 0
            how = f"{worker.hung}: killed" if worker.hung and returncode == -signal.SIGKILL else exit_description(returncode)
            detail = f"worker {worker.index} (pid {worker.process.pid}) {how}"
            log.error("%s after %.0f s: its calls end (worker_lost); it is started again", detail, lived)
            try:
                await self._on_lost(worker.index, detail)
            except Exception:
                log.exception("ending the calls of worker %d failed", worker.index)
            await asyncio.sleep(restart_delay(worker.quick_failures))
            if self._stopping:
                return
            worker.restarts += 1
            await self._spawn(worker)
