"""The capacity benchmark measures a real app process holding real calls (tiny scale).

Two calls on hold for 10 s: the simulated PBX and the app run as processes of their own, the
calls go through the REST API, the audio over UDP. What is asserted is that the harness measured
something real (CPU time, frames, events, memory), not how fast anything was.
"""

from __future__ import annotations

import json

import pytest

from bench.capacity.run import CapacityRun, RunConfig, expected_frames, frame_deltas, max_backlog_frames, save
from tests import database


async def test_two_held_calls_are_measured_and_written(tmp_path, corpus):
    # No pinning: the test runs wherever the machine has room (the benchmark pins).
    row = await CapacityRun(2, 10.0, RunConfig(app_cpus=None, sim_cpus=None)).run()

    assert row.calls == 2 and row.held_calls == 2, row.failed_calls
    assert row.cpu_percent > 0 and row.cpu_percent_per_call > 0
    assert row.rss_mb > row.rss_idle_mb * 0.5 > 0
    # 2 calls x ~10 s of 20 ms frames reached the app's endpoints (a loaded machine may lag a little)
    assert 0.5 * row.frames_expected < row.frames_received <= row.frames_expected * 1.05
    assert row.frames_expected >= 900
    # one AUDIO_CLASSIFIED per call per 0.5 s came through the WebSocket
    assert row.events >= 20
    assert row.event_latency_p50 is not None and row.event_latency_p50 >= 0
    assert row.sim_cpu_percent > 0

    text = save([row], tmp_path, {"cores": "any", "commit": "test", "at": "now", "seconds": 10.0,
                                  "load_before": "0", "load_after": "0"}, "capacity-test")  # fmt: skip
    data = json.loads((tmp_path / "capacity-test.json").read_text())
    assert [r["calls"] for r in data["rows"]] == [2]
    assert data["rows"][0]["frames_received"] == row.frames_received
    assert "| 2 |" in text and (tmp_path / "capacity-test.md").read_text() == text


@pytest.mark.postgresql
async def test_two_worker_processes_are_measured_as_one_app(tmp_path, corpus, database_backend):
    """``--workers 2``: serve --workers 2 on PostgreSQL; CPU and memory of every process of the
    app, frames from the workers' heartbeats, events across the processes. ``database_backend``
    makes it the PostgreSQL variant (skipped without a server); the benchmark makes its own database."""
    server = database.server_url()
    config = RunConfig(app_cpus=None, sim_cpus=None, workers=2, database_server=server)
    row = await CapacityRun(2, 10.0, config).run()

    assert row.calls == 2 and row.held_calls == 2, row.failed_calls
    assert row.cpu_percent > 0
    # The front alone holds no call: the frames counted are the workers', over their heartbeats' span.
    assert 0.5 * row.frames_expected < row.frames_received <= row.frames_expected * 1.05
    assert row.frames_expected >= 700
    assert row.events >= 20  # a worker's AUDIO_CLASSIFIED reached the front's WebSocket


def test_with_workers_the_frames_are_the_growth_of_each_workers_totals():
    def snap(at: float, received: int, pid: int = 7, backlog: int = 0) -> dict:
        media = {"received": received, "lost": 1, "late": 0, "dropped": 0}
        worker = {"worker": 1, "pid": pid, "active_calls": 2, "at": at, "media": media, "backlog_frames": backlog}
        return {"calls": [], "workers": [worker]}

    before, after = snap(100.0, 1000), snap(110.0, 2000, backlog=3)
    assert frame_deltas(before, after, ["ignored"])["received"] == 1000
    assert expected_frames(before, after, 2, 10.5) == 1000  # 2 calls x 10 s between the heartbeats
    assert max_backlog_frames(after) == 3
    restarted = snap(110.0, 50, pid=8)  # a worker started again counts from 0: not compared
    assert frame_deltas(before, restarted, [])["received"] == 0
