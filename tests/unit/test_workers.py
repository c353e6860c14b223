"""The pure parts of ``serve --workers N``: which worker takes a call, commands and replies as
text (and the errors they carry back), live event payloads within PostgreSQL's NOTIFY limit,
the workers' settings, restarts, the killing of hung workers, and the refusal of SQLite."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import pytest

from app.calls.control import (
    ActionRefused,
    BadInput,
    WorkerAddress,
    CallNotRunning,
    Command,
    MessageFormatError,
    RemoteCallControl,
    Reply,
    WorkerUnavailable,
    choose_worker,
    execute,
)
from app.calls.events import CallEvent, HoldProgress
from app.calls.manager import CallRequestError
from app.calls.models import CallRequest
from app.config import Settings, SettingsError, for_worker, front_settings, load_settings, media_slice
from app.media.health import MediaHealth
from app.store.live import MAX_PAYLOAD_BYTES, commands_channel, pack_events, unpack_events
from app.workers import (
    WORKER_HUNG_SECONDS,
    WORKER_START_SECONDS,
    CallMedia,
    Heartbeat,
    WorkerPool,
    exit_description,
    hung_reason,
    restart_delay,
)
from tests.conftest import REPO

PG = "postgresql://u:p@127.0.0.1/hs"


# ---------------------------------------------------------------------------- choosing a worker


W1, W2, W3 = (WorkerAddress("", i) for i in (1, 2, 3))


def test_the_ready_worker_with_fewest_calls_takes_the_next_one():
    assert choose_worker([W1, W2, W3], {W1: 4, W2: 1, W3: 2}, {}) == W2


def test_calls_being_started_count_against_their_worker():
    # Worker 2 has fewer live calls, but two are on their way to it already.
    assert choose_worker([W1, W2], {W1: 2, W2: 1}, {W2: 2}) == W1


def test_a_worker_that_is_not_ready_takes_no_call_and_ties_go_to_the_lowest_index():
    assert choose_worker([W3, W2], {W1: 0}, {}) == W2
    assert choose_worker([], {W1: 0}, {}) is None


def test_a_worker_is_named_by_its_host_when_there_are_several():
    assert (str(W2), str(WorkerAddress("hostb", 2))) == ("2", "hostb/2")
    assert commands_channel(2) == "holdslayer_commands_2"
    assert commands_channel(2, "hostb") == "holdslayer_commands_hostb_2"
    with pytest.raises(SettingsError, match="HOLDSLAYER_NODE"):
        load_settings(node="Host B; DROP")


async def test_a_front_hears_the_heartbeats_of_its_own_hosts_workers_only():
    async def never(index: int, detail: str) -> None:
        raise AssertionError("no worker was started")

    pool = WorkerPool(2, on_lost=never, node="hosta")
    await pool.on_heartbeat(Heartbeat(1, 10, True, 0, node="hosta").encode())
    await pool.on_heartbeat(Heartbeat(2, 11, True, 0, node="hostb").encode())  # worker 2 of another host
    assert [w["ari_connected"] for w in pool.describe()] == [True, False]


# ---------------------------------------------------------------------------- commands and replies


def test_a_command_survives_its_text_form():
    command = Command("7-1", "provide_user_data", "abc", {"field": "zip_code", "value": "94110", "permission": None})
    assert Command.decode(command.encode()) == command


@pytest.mark.parametrize("text", ["not json", '{"op": "start"}', '{"id": "1", "op": "reboot"}', "[1]"])
def test_text_that_is_no_command_is_refused(text):
    with pytest.raises(MessageFormatError):
        Command.decode(text)


@pytest.mark.parametrize(
    ("reply", "error", "check"),
    [
        (Reply("1", False, error="not_running", message="gone"), CallNotRunning, lambda e: True),
        (Reply("1", False, error="refused", message="not answered yet"), ActionRefused, lambda e: str(e) == "not answered yet"),
        (Reply("1", False, error="invalid", message="no such field", field="field"), BadInput, lambda e: e.field == "field"),
        (Reply("1", False, error="request", message="emergency", field="number"), CallRequestError, lambda e: e.field == "number"),
        (Reply("1", False, error="failed", message="boom"), WorkerUnavailable, lambda e: "boom" in str(e)),
    ],
)
def test_a_reply_raises_what_the_worker_raised(reply, error, check):
    with pytest.raises(error) as raised:
        Reply.decode(reply.encode()).value()
    assert check(raised.value)


def test_a_reply_with_an_unknown_error_kind_is_refused():
    with pytest.raises(MessageFormatError):
        Reply.decode(json.dumps({"id": "1", "ok": False, "error": "teapot"}))


class FakeCalls:
    """A CallControl with one running call, ``live``, answered and on hold."""

    def __init__(self) -> None:
        self.user_data: dict[str, str] = {}
        self.hung_up: list[str] = []

    async def start(self, request: CallRequest) -> str:
        if request.number == "911":
            raise CallRequestError("number", "911 is an emergency number")
        return "new-call"

    def _live(self, call_id: str) -> None:
        if call_id != "live":
            raise CallNotRunning(call_id)

    async def hangup(self, call_id: str) -> None:
        self._live(call_id)
        self.hung_up.append(call_id)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        self._live(call_id)
        if digits == "#":
            raise ActionRefused("the menu is not listening")

    async def transfer_now(self, call_id: str) -> None:
        self._live(call_id)

    async def provide_user_data(self, call_id: str, field: str, value: str, permission: str | None) -> None:
        self._live(call_id)
        if field == "pin":
            raise BadInput("pin is never entered into a phone menu")
        self.user_data[field] = value


async def test_execute_turns_every_outcome_into_a_reply():
    calls = FakeCalls()
    started = await execute(calls, Command("1", "start", args={"request": {"number": "5550001"}}))
    assert (started.ok, started.result) == (True, "new-call")
    refused = await execute(calls, Command("2", "start", args={"request": {"number": "911"}}))
    assert (refused.ok, refused.error, refused.field) == (False, "request", "number")
    assert (await execute(calls, Command("3", "hangup", "other"))).error == "not_running"
    assert (await execute(calls, Command("4", "send_dtmf", "live", {"digits": "#"}))).error == "refused"
    assert (await execute(calls, Command("5", "provide_user_data", "live", {"field": "pin", "value": "1"}))).error == "invalid"
    malformed = await execute(calls, Command("6", "send_dtmf", "live", {}))
    assert (malformed.ok, malformed.error) == (False, "failed")
    assert (await execute(calls, Command("7", "hangup", "live"))).ok and calls.hung_up == ["live"]


class Loopback:
    """Commands sent to a worker are executed against its FakeCalls and answered, as over the database."""

    def __init__(self, workers: dict[WorkerAddress, FakeCalls], *, silent: frozenset[WorkerAddress] = frozenset()) -> None:
        self.workers = workers
        self.silent = silent
        self.sent: list[tuple[int, str]] = []
        self.control: RemoteCallControl | None = None

    async def send(self, worker: WorkerAddress, text: str) -> None:
        self.sent.append((worker, text))
        if worker in self.silent:
            return
        reply = await execute(self.workers[worker], Command.decode(text))
        assert self.control is not None
        asyncio.get_running_loop().call_soon(self.control.on_reply, reply.encode())


def remote(loop: Loopback, *, live=None, worker_of=None, ready=(W1, W2)) -> RemoteCallControl:
    async def live_calls():
        return live or {}

    async def where(call_id):
        return (worker_of or {}).get(call_id)

    control = RemoteCallControl(loop.send, ready=lambda: ready, live_calls=live_calls, worker_of=where, command_timeout=0.2)
    loop.control = control
    return control


async def test_remote_control_sends_each_action_to_the_worker_of_the_call():
    workers = {W1: FakeCalls(), W2: FakeCalls()}
    loop = Loopback(workers)
    control = remote(loop, live={W1: 3, W2: 0}, worker_of={"live": W2})
    assert await control.start(CallRequest(number="5550001")) == "new-call"
    assert loop.sent[-1][0] == W2  # the one with fewer calls
    await control.provide_user_data("live", "zip_code", "94110", None)
    assert workers[W2].user_data == {"zip_code": "94110"} and workers[W1].user_data == {}
    with pytest.raises(ActionRefused, match="not listening"):
        await control.send_dtmf("live", "#")
    with pytest.raises(CallNotRunning):  # no worker holds it: not sent anywhere
        await control.hangup("ended-call")
    assert all(json.loads(text)["call_id"] != "ended-call" for _, text in loop.sent)


async def test_remote_control_says_so_when_no_worker_can_answer():
    loop = Loopback({W1: FakeCalls()}, silent=frozenset({W1}))
    control = remote(loop, worker_of={"live": W1}, ready=(W1,))
    with pytest.raises(WorkerUnavailable, match="worker 1 did not answer"):
        await control.transfer_now("live")
    with pytest.raises(WorkerUnavailable, match="no worker is ready"):
        await remote(Loopback({}), ready=()).start(CallRequest(number="5550001"))


async def test_a_command_too_large_for_a_notification_is_refused_before_it_is_sent():
    loop = Loopback({W1: FakeCalls()})
    control = remote(loop, worker_of={"live": W1}, ready=(W1,))
    with pytest.raises(CallRequestError) as refused:
        await control.start(CallRequest(number="5550001", user_data={"note": "x" * MAX_PAYLOAD_BYTES}))
    assert refused.value.field == "user_data"
    with pytest.raises(BadInput):
        await control.provide_user_data("live", "note", "x" * MAX_PAYLOAD_BYTES, None)
    assert loop.sent == []


# ---------------------------------------------------------------------------- live event payloads


def _event(i: int, call_id: str = "c1") -> dict:
    return CallEvent(call_id, HoldProgress(hold_seconds=float(i)), seq=i).to_dict()


def test_live_events_are_packed_in_order_within_the_notify_limit():
    events = [(_event(i, f"call-{i % 3}"), i) for i in range(500)]
    payloads = pack_events(events)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in payloads)
    unpacked = [item for p in payloads for item in unpack_events(p)]
    assert unpacked == [event for event, _ in events]


def test_an_event_too_large_for_a_notification_goes_by_its_row():
    big = CallEvent("c1", HoldProgress(hold_seconds=1.0)).to_dict()
    big["data"] = {"text": "é" * MAX_PAYLOAD_BYTES}  # bytes, not characters, count
    first, second = _event(1), _event(2)  # built once: each carries the time it was made
    unpacked = [item for p in pack_events([(first, 1), (big, 42), (second, 2)]) for item in unpack_events(p)]
    assert unpacked == [first, 42, second]
    assert pack_events([(big, None)]) == []  # no row to point to: dropped, not sent broken


# ---------------------------------------------------------------------------- processes


def test_each_worker_has_its_own_application_and_port_slice():
    settings = Settings(workers=3, database_url=PG, ari_app="hs", media_port_min=20000, media_port_max=20999)
    front = front_settings(settings)
    workers = [for_worker(settings, i) for i in (1, 2, 3)]
    assert [w.ari_app for w in workers] == ["hs-w1", "hs-w2", "hs-w3"]
    ranges = [(s.media_port_min, s.media_port_max) for s in (front, *workers)]
    assert ranges[0][0] == 20000 and ranges[-1][1] == 20999
    for (_, high), (low, _) in zip(ranges, ranges[1:]):
        assert low == high + 1  # adjacent, never overlapping
    with pytest.raises(ValueError):
        for_worker(settings, 4)


def test_a_slice_of_an_uneven_range_gives_the_remainder_to_the_last():
    assert media_slice(100, 110, 3, 0) == (100, 102)
    assert media_slice(100, 110, 3, 2) == (106, 110)


def test_more_than_one_worker_needs_postgresql_and_enough_ports():
    with pytest.raises(SettingsError, match="needs PostgreSQL"):
        load_settings(workers=2, database_url="sqlite:///x.db")
    with pytest.raises(SettingsError, match="ports"):
        load_settings(workers=4, database_url=PG, media_port_min=20000, media_port_max=20010)
    assert load_settings(workers=2, database_url=PG).workers == 2
    assert load_settings(workers=1, database_url="sqlite:///x.db").workers == 1


def test_serve_with_workers_on_sqlite_stops_with_a_clear_error(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOLDSLAYER_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "HOLDSLAYER_API_TOKEN": "s3cret"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--workers", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "HOLDSLAYER_WORKERS=2 needs PostgreSQL" in done.stderr
    assert "s3cret" not in done.stderr  # a check across settings shows none of their values


def test_a_worker_that_keeps_dying_is_restarted_ever_more_slowly():
    assert restart_delay(0) == 0.0
    assert [restart_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert restart_delay(50) == 30.0


def test_a_heartbeat_survives_its_text_form_and_a_death_is_told_in_words():
    calls = {"a1b2c3d4e5f6": MediaHealth(received=500, lost=3, concealed=4), "0f0f0f0f0f0f": MediaHealth(stray=2)}
    beat = Heartbeat(
        2, 1234, True, 7, at=1.5, media={"received": 10, "lost": 1}, backlog_frames=3, loop_lag_seconds=0.01, calls=calls
    )
    assert Heartbeat.decode(beat.encode()) == beat
    # Each call's counters go as a list in COUNTERS order, without their trailing zeros.
    assert json.loads(beat.encode())["calls"] == {"a1b2c3d4e5f6": [500, 3, 0, 0, 4], "0f0f0f0f0f0f": [0, 0, 0, 0, 0, 0, 2]}
    with pytest.raises(ValueError):
        Heartbeat.decode('{"worker": 1}')
    assert exit_description(-9) == "killed by SIGKILL"
    assert exit_description(1) == "exited with code 1"


# ---------------------------------------------------------------------------- hung workers


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# A worker that never heartbeats nor exits by itself: a real process the pool can kill.
SILENT_WORKER = [sys.executable, "-c", "import time; time.sleep(600)"]


class Watched:
    """A pool of real silent processes on a manual clock; the watchdog only runs when told."""

    def __init__(self, count: int, **options) -> None:
        self.clock = ManualClock()
        self.lost: list[tuple[int, str]] = []
        self.pool = WorkerPool(
            count, on_lost=self._on_lost, argv=lambda i: SILENT_WORKER, clock=self.clock, watch_every=3600, **options
        )

    async def _on_lost(self, index: int, detail: str) -> None:
        self.lost.append((index, detail))

    async def beat(self, index: int, calls: dict[str, MediaHealth] | None = None) -> None:
        beat = Heartbeat(index, self.pool.pid(index), True, len(calls or {}), at=self.clock.now, calls=calls or {})
        for payload in beat.payloads(MAX_PAYLOAD_BYTES):
            await self.pool.on_heartbeat(payload)

    async def pass_seconds(self, seconds: int, *, beating: tuple[int, ...] = ()) -> list[int]:
        """Time passes a second at a time, as the watchdog sees it; the workers killed."""
        killed = []
        for _ in range(seconds):
            self.clock.now += 1.0
            for index in beating:
                await self.beat(index)
            killed += self.pool.kill_hung()
        return killed

    async def restarted(self, index: int, old_pid: int) -> int:
        async with asyncio.timeout(10):
            while (pid := self.pool.pid(index)) in (None, old_pid):
                await asyncio.sleep(0.01)
        return pid


async def test_a_hung_worker_is_killed_its_calls_are_lost_and_it_is_started_again():
    watched = Watched(2, hung_after=20.0)
    await watched.pool.start()
    try:
        first, second = watched.pool.pid(1), watched.pool.pid(2)
        await watched.beat(1)
        await watched.beat(2)
        # Both heartbeat for a minute, then worker 2 falls silent: only it is killed, once its bound is past.
        assert await watched.pass_seconds(60, beating=(1, 2)) == []
        assert await watched.pass_seconds(20, beating=(1,)) == []
        assert await watched.pass_seconds(1, beating=(1,)) == [2]
        restarted = await watched.restarted(2, second)
        assert watched.lost == [(2, f"worker 2 (pid {second}) hung, no heartbeat for 21 s: killed")]
        assert watched.pool.pid(1) == first
        assert watched.pool.describe()[1]["restarts"] == 1 and restarted != second
        assert await watched.pass_seconds(1, beating=(1,)) == []  # the new process has its start allowance
    finally:
        await watched.pool.stop()


async def test_a_worker_still_starting_is_given_its_start_allowance():
    watched = Watched(1, hung_after=20.0, start_allowance=60.0)
    await watched.pool.start()
    try:
        pid = watched.pool.pid(1)
        assert await watched.pass_seconds(60) == []  # silent, but it may still be loading
        assert watched.pool.pid(1) == pid and watched.lost == []
        assert await watched.pass_seconds(1) == [1]
        await watched.restarted(1, pid)
        assert watched.lost == [(1, f"worker 1 (pid {pid}) hung, no heartbeat 61 s after its start: killed")]
    finally:
        await watched.pool.stop()


async def test_silence_the_front_could_not_hear_is_not_held_against_a_worker():
    hearing = [True]
    watched = Watched(1, hung_after=20.0, hearing=lambda: hearing[0])
    await watched.pool.start()
    try:
        await watched.beat(1)
        hearing[0] = False  # the front's listener lost the database
        assert await watched.pass_seconds(40) == []
        hearing[0] = True
        assert await watched.pass_seconds(10) == []
        watched.clock.now += 40.0  # the front's own loop stalled: the heartbeats wait unread
        assert watched.pool.kill_hung() == []
        await watched.beat(1)
        assert await watched.pass_seconds(20) == []
        assert await watched.pass_seconds(1) == [1]  # heard, then silent past its bound
    finally:
        await watched.pool.stop()


async def test_no_worker_is_taken_for_hung_while_the_pool_stops():
    watched = Watched(1, hung_after=20.0)
    await watched.pool.start()
    pid = watched.pool.pid(1)
    await watched.beat(1)
    stopping = asyncio.create_task(watched.pool.stop())
    await asyncio.sleep(0)  # stop() has begun: SIGTERM sent, waiting for the exit
    watched.clock.now += 3600.0
    assert watched.pool.kill_hung() == []
    await stopping
    assert watched.lost == [] and watched.pool.pid(1) is None
    assert watched.pool.describe()[0]["restarts"] == 0 and pid is not None


def test_hung_is_silence_past_the_bound_since_the_last_heartbeat_or_the_start():
    bounds = {"hung_after": 20.0, "start_allowance": 60.0}
    assert hung_reason(100.0, 0.0, 80.0, 0.0, **bounds) is None
    assert hung_reason(100.5, 0.0, 80.0, 0.0, **bounds) == "hung, no heartbeat for 20 s"
    assert hung_reason(100.5, 0.0, 80.0, 90.0, **bounds) is None  # the front has heard only since 90
    assert hung_reason(60.0, 0.0, None, 0.0, **bounds) is None
    assert hung_reason(61.0, 0.0, None, 0.0, **bounds) == "hung, no heartbeat 61 s after its start"
    # A bound longer than the start allowance holds for the start too.
    assert hung_reason(61.0, 0.0, None, 0.0, hung_after=90.0, start_allowance=60.0) is None
    assert exit_description(-signal.SIGKILL) == "killed by SIGKILL"


def test_the_hung_bound_is_a_setting_well_above_the_heartbeat_staleness():
    assert Settings().worker_hung_seconds == WORKER_HUNG_SECONDS == 30.0
    assert load_settings(worker_hung_seconds=8).worker_hung_seconds == 8.0
    with pytest.raises(SettingsError, match="HOLDSLAYER_WORKER_HUNG_SECONDS"):
        load_settings(worker_hung_seconds=1)
    assert WORKER_START_SECONDS >= 2 * WORKER_HUNG_SECONDS


# ---------------------------------------------------------------------------- each call's media counters


def _call_id(i: int) -> str:
    return f"{i:012x}"


# A call held two hours, through loss: its counters at their widest.
TWO_HOURS = MediaHealth(received=719_000, lost=9_100, late=310, duplicated=12, concealed=9_500, malformed=1, stray=40, dropped=2_000)


def _busy_beat(calls: int) -> Heartbeat:
    media = {name: 10**9 for name in TWO_HOURS.as_dict()}  # the worker's totals, as wide as they get
    return Heartbeat(
        12, 4_194_304, True, calls, node="x" * 32, at=1_800_000_000.123456, media=media, backlog_frames=1500,
        loop_lag_seconds=0.1234, calls={_call_id(i): TWO_HOURS for i in range(calls)},
    )  # fmt: skip


def test_a_heartbeat_written_before_calls_were_counted_is_still_read():
    old = json.dumps({"worker": 1, "pid": 10, "ari_connected": True, "active_calls": 2, "at": 5.0, "media": {"received": 9}})
    beat = Heartbeat.decode(old)
    assert (beat.calls, beat.part, beat.parts, beat.media) == ({}, 0, 1, {"received": 9})


@pytest.mark.parametrize(
    "calls", [{"c": [1] * 9}, {"c": {"received": 1}}, {"c": ["x"]}], ids=["too many counters", "not a list", "not a number"]
)
def test_a_heartbeat_with_malformed_call_counters_is_refused(calls):
    with pytest.raises(ValueError, match="not a heartbeat"):
        Heartbeat.decode(json.dumps({"worker": 1, "pid": 10, "ari_connected": True, "active_calls": 1, "calls": calls}))


def test_a_heartbeat_is_refused_for_a_part_beyond_its_parts():
    with pytest.raises(ValueError, match="part 2 of 2"):
        Heartbeat.decode(Heartbeat(1, 10, True, 0, part=2, parts=2).encode())


def test_a_hundred_and_forty_busy_calls_fit_in_one_notification():
    (payload,) = _busy_beat(140).payloads(MAX_PAYLOAD_BYTES)
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert Heartbeat.decode(payload) == _busy_beat(140)
    (idle,) = Heartbeat(1, 10, True, 0).payloads(MAX_PAYLOAD_BYTES)  # no calls: one part all the same
    assert Heartbeat.decode(idle) == Heartbeat(1, 10, True, 0)


def test_more_calls_than_fit_are_shared_out_among_whole_heartbeats_within_the_limit():
    beat = _busy_beat(1000)
    payloads = beat.payloads(MAX_PAYLOAD_BYTES)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in payloads)
    parts = [Heartbeat.decode(p) for p in payloads]
    assert [(p.part, p.parts) for p in parts] == [(i, len(payloads)) for i in range(len(payloads))]
    # Every part says all the rest; together they carry every call once.
    assert all(p.active_calls == 1000 and p.media == beat.media and p.at == beat.at for p in parts)
    gathered = [call_id for p in parts for call_id in p.calls]
    assert sorted(gathered) == sorted(beat.calls) and len(gathered) == len(set(gathered))


def test_a_call_too_large_for_any_notification_is_left_out_not_sent_broken():
    beat = Heartbeat(1, 10, True, 2, calls={"x" * MAX_PAYLOAD_BYTES: MediaHealth(received=1), "ok": MediaHealth(received=2)})
    (payload,) = beat.payloads(MAX_PAYLOAD_BYTES)
    assert Heartbeat.decode(payload).calls == {"ok": MediaHealth(received=2)}


def _parts(beat: Heartbeat) -> list[Heartbeat]:
    return [Heartbeat.decode(p) for p in beat.payloads(MAX_PAYLOAD_BYTES)]


def test_the_parts_of_a_heartbeat_are_gathered_and_a_whole_set_replaces_the_last():
    media = CallMedia()
    first = _parts(replace_calls(_busy_beat(500), at=1.0))
    assert len(first) > 2
    for part in first[:-1]:
        media.hear(part)
        assert media.calls == {}  # not whole yet
    media.hear(first[-1])
    assert len(media.calls) == 500 and media.pid == 4_194_304

    second = _parts(replace_calls(_busy_beat(400), at=2.0))
    media.hear(second[0])
    media.hear(second[2])  # the middle part went missing: this set is dropped
    assert len(media.calls) == 500
    third = _parts(replace_calls(_busy_beat(2), at=3.0))
    media.hear(third[0])
    assert sorted(media.calls) == [_call_id(0), _call_id(1)]


def replace_calls(beat: Heartbeat, *, at: float) -> Heartbeat:
    return Heartbeat(beat.worker, beat.pid, True, len(beat.calls), at=at, calls=beat.calls)


async def test_the_front_knows_each_call_of_its_running_workers_from_their_heartbeats():
    watched = Watched(2)
    await watched.pool.start()
    try:
        second = watched.pool.pid(2)
        await watched.beat(1, {"aaa": MediaHealth(received=5)})
        await watched.beat(2, {"bbb": MediaHealth(lost=1)})
        assert watched.pool.call_media() == {"aaa": MediaHealth(received=5), "bbb": MediaHealth(lost=1)}
        watched.clock.now += 1.0
        assert await watched.pass_seconds(40, beating=(1,)) == [2]
        await watched.restarted(2, second)
        await watched.pool.on_heartbeat(Heartbeat(2, second, True, 1, calls={"bbb": MediaHealth(lost=2)}).encode())  # late
        await watched.beat(1, {"aaa": MediaHealth(received=9)})
        assert watched.pool.call_media() == {"aaa": MediaHealth(received=9)}  # the dead worker's calls are gone
    finally:
        await watched.pool.stop()
