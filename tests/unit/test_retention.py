"""Retention without I/O: what is old given the time and the settings, and the sweep loop on a
manual clock (a store fake in memory)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.calls.models import FINAL_STATUSES, CallStatus
from app.config import Settings
from app.retention import Cutoffs, RetentionPolicy, Sweeper, Verdict, files_of, verdict
from app.store.repository import DeletedRows, RetentionCandidate
from tests.fakes.clock import ManualClock

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY = 86400.0
LIVE_STATUSES = [status for status in CallStatus if status not in FINAL_STATUSES]


def wall_of(clock: ManualClock):
    """Wall time that moves with the manual clock."""
    return lambda: EPOCH + timedelta(seconds=clock.now())


def a_call(call_id="c1", *, ended_days_ago: float | None, now: datetime, status=CallStatus.COMPLETED, **fields):
    ended = None if ended_days_ago is None else now - timedelta(days=ended_days_ago)
    return RetentionCandidate(
        id=call_id,
        status=status,
        created_at=fields.pop("created_at", (ended or now) - timedelta(minutes=20)),
        ended_at=ended,
        recordings_removed_at=fields.pop("recordings_removed_at", None),
        recording_paths=tuple(fields.pop("recording_paths", ())),
    )


# ---------------------------------------------------------------------------- the settings


@pytest.mark.parametrize(
    ("calls", "recordings", "expected"),
    [
        ("365", "30", (365, 30)),
        ("0", "0", (None, None)),  # 0 keeps forever
        ("", "7", (None, 7)),  # so does empty
    ],
)
def test_the_settings_give_the_policy_with_zero_or_empty_keeping_forever(monkeypatch, calls, recordings, expected):
    monkeypatch.setenv("HOLDSLAYER_RETAIN_CALLS_DAYS", calls)
    monkeypatch.setenv("HOLDSLAYER_RETAIN_RECORDINGS_DAYS", recordings)
    policy = RetentionPolicy.from_settings(Settings())
    assert (policy.calls_days, policy.recordings_days) == expected


def test_the_defaults_keep_calls_a_year_and_recordings_a_month():
    policy = RetentionPolicy.from_settings(Settings())
    assert (policy.calls_days, policy.recordings_days) == (365, 30)
    assert policy.describe() == "calls kept 365 days, recordings kept 30 days"


def test_cutoffs_move_with_the_clock():
    clock = ManualClock()
    policy = RetentionPolicy(calls_days=10, recordings_days=2)
    assert policy.cutoffs(wall_of(clock)()) == Cutoffs(EPOCH - timedelta(days=10), EPOCH - timedelta(days=2))
    clock.advance(3 * DAY)
    assert policy.cutoffs(wall_of(clock)()) == Cutoffs(EPOCH - timedelta(days=7), EPOCH + timedelta(days=1))
    assert RetentionPolicy(None, None).cutoffs(EPOCH) == Cutoffs(None, None)
    with pytest.raises(ValueError, match="naive"):
        policy.cutoffs(datetime(2026, 1, 1))


# ---------------------------------------------------------------------------- the verdict


@pytest.mark.parametrize(
    ("ended_days_ago", "expected"),
    [
        (400, Verdict.DELETE_CALL),  # past the calls limit: the record goes
        (365.001, Verdict.DELETE_CALL),
        (365, Verdict.REMOVE_RECORDINGS),  # exactly at the limit: not older than it
        (31, Verdict.REMOVE_RECORDINGS),  # past the recordings limit only: the files go, the record stays
        (30, Verdict.KEEP),
        (1, Verdict.KEEP),
    ],
)
def test_a_finished_call_is_judged_by_the_age_of_its_end(ended_days_ago, expected):
    now = EPOCH
    cutoffs = RetentionPolicy(calls_days=365, recordings_days=30).cutoffs(now)
    for status in FINAL_STATUSES:
        assert verdict(a_call(ended_days_ago=ended_days_ago, now=now, status=status), cutoffs) is expected


@pytest.mark.parametrize("status", LIVE_STATUSES)
def test_a_live_call_is_never_touched_however_old(status):
    now = EPOCH
    cutoffs = RetentionPolicy(calls_days=1, recordings_days=1).cutoffs(now)
    call = a_call(ended_days_ago=None, now=now, status=status, created_at=now - timedelta(days=900))
    assert verdict(call, cutoffs) is Verdict.KEEP


def test_recordings_already_removed_are_not_removed_again_but_the_record_still_ages_out():
    now = EPOCH
    cutoffs = RetentionPolicy(calls_days=365, recordings_days=30).cutoffs(now)
    removed = now - timedelta(days=10)
    assert verdict(a_call(ended_days_ago=40, now=now, recordings_removed_at=removed), cutoffs) is Verdict.KEEP
    assert verdict(a_call(ended_days_ago=366, now=now, recordings_removed_at=removed), cutoffs) is Verdict.DELETE_CALL


def test_a_finished_call_without_an_end_ages_from_its_start():
    now = EPOCH
    cutoffs = RetentionPolicy(calls_days=365, recordings_days=30).cutoffs(now)
    assert verdict(a_call(ended_days_ago=None, now=now, created_at=now - timedelta(days=50)), cutoffs) is Verdict.REMOVE_RECORDINGS
    assert verdict(a_call(ended_days_ago=None, now=now, created_at=now - timedelta(days=5)), cutoffs) is Verdict.KEEP


def test_keeping_forever_keeps_and_a_longer_recordings_limit_is_capped_by_the_calls_one():
    now = EPOCH
    forever = RetentionPolicy(calls_days=None, recordings_days=None).cutoffs(now)
    assert verdict(a_call(ended_days_ago=10_000, now=now), forever) is Verdict.KEEP
    # Recordings "kept" 90 days but records only 20: the call (and so its files) goes at 20.
    capped = RetentionPolicy(calls_days=20, recordings_days=90).cutoffs(now)
    assert verdict(a_call(ended_days_ago=21, now=now), capped) is Verdict.DELETE_CALL
    assert verdict(a_call(ended_days_ago=19, now=now), capped) is Verdict.KEEP
    records_forever = RetentionPolicy(calls_days=None, recordings_days=30).cutoffs(now)
    assert verdict(a_call(ended_days_ago=10_000, now=now), records_forever) is Verdict.REMOVE_RECORDINGS


# ---------------------------------------------------------------------------- the files of a call


def test_the_files_of_a_call_are_its_saved_ones_and_the_recorders_names_never_another_file():
    call = a_call(
        "abc123",
        ended_days_ago=40,
        now=EPOCH,
        recording_paths=["/old/dir/abc123.wav", "/etc/passwd", "/old/dir/other.wav", "/rec/abc123.wav"],
    )
    assert files_of(call, Path("/rec")) == [
        Path("/old/dir/abc123.wav"),  # saved where an earlier setting put it
        Path("/rec/abc123.wav"),
        Path("/rec/abc123.app.wav"),
        Path("/rec/abc123.mixed.wav"),
        Path("/rec/abc123.bridged.wav"),
        Path("/rec/abc123.bridged.wav.part"),  # a fetch cut short
    ]


# ---------------------------------------------------------------------------- the loop


class FakeStore:
    """The store's retention methods over calls in memory; ``broken`` sweeps raise."""

    def __init__(self, calls: list[RetentionCandidate], broken: int = 0) -> None:
        self.calls = {call.id: call for call in calls}
        self.broken = broken
        self.listed = 0

    def retention_candidates(self, *, calls_before, recordings_before, after_id="", limit=200):
        self.listed += 1
        if self.broken:
            self.broken -= 1
            raise OSError("database is locked")
        ids = sorted(i for i in self.calls if i > after_id)[:limit]
        return [self.calls[i] for i in ids]

    def delete_calls(self, call_ids):
        for call_id in call_ids:
            del self.calls[call_id]
        return DeletedRows(calls=len(call_ids))

    def mark_recordings_removed(self, call_ids, at):
        for call_id in call_ids:
            call = self.calls[call_id]
            self.calls[call_id] = RetentionCandidate(call.id, call.status, call.created_at, call.ended_at, at, call.recording_paths)
        return len(call_ids)


async def until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_the_sweeper_sweeps_at_start_then_every_hour_and_survives_a_failing_sweep(tmp_path):
    clock = ManualClock()
    # Three calls end on day 0; recordings are kept 2 days, records 4.
    calls = [a_call(f"c{i}", ended_days_ago=0, now=EPOCH) for i in range(3)]
    store = FakeStore(calls, broken=1)
    sweeper = Sweeper(store, tmp_path, RetentionPolicy(calls_days=4, recordings_days=2), wall=wall_of(clock), clock=clock, batch_size=2)
    sweeper.start()
    assert sweeper.running
    try:
        await until(lambda: sweeper.sweeps == 1)
        assert sweeper.totals["failures"] == 1, "the first sweep failed, counted, and the loop goes on"
        clock.advance(3599)
        await asyncio.sleep(0.05)
        assert sweeper.sweeps == 1, "not before the hour"
        clock.advance(1)
        await until(lambda: sweeper.sweeps == 2)
        assert sweeper.totals["recordings_removed"] == 0 and len(store.calls) == 3, "nothing old yet"

        clock.advance(3 * DAY)  # past the recordings limit
        await until(lambda: sweeper.sweeps == 3)
        assert sweeper.totals["recordings_removed"] == 3
        assert all(call.recordings_removed_at == EPOCH + timedelta(days=3, hours=1) for call in store.calls.values())

        clock.advance(2 * DAY)  # past the calls limit
        await until(lambda: sweeper.sweeps == 4)
        assert (sweeper.totals["calls_deleted"], store.calls) == (3, {})
    finally:
        await sweeper.stop()
    assert not sweeper.running
    listed = store.listed
    clock.advance(10 * DAY)
    await asyncio.sleep(0.05)
    assert store.listed == listed, "no sweep after stop"


async def test_a_policy_that_keeps_everything_starts_no_task(tmp_path):
    store = FakeStore([a_call(ended_days_ago=10_000, now=EPOCH)])
    sweeper = Sweeper(store, tmp_path, RetentionPolicy(None, None))
    sweeper.start()
    assert not sweeper.running
    assert sweeper.sweep().removed_anything is False and store.listed == 0
    await sweeper.stop()
