"""Retention against a real database (a SQLite file, or PostgreSQL: tests/database.py) and real
files: what a sweep deletes and keeps, a delete that fails, the database staying bounded, the
command line, and the API of a call whose recordings were deleted."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.calls import events as ev
from app.calls.events import CallEvent
from app.calls.models import CallRequest, CallStatus, RecordingChannel
from app.calls.recordings import recording_path
from app.cli import main as cli_main
from app.clock import utc_now
from app.retention import RetentionPolicy, Sweeper
from app.store import Store
from app.store.models import CallEventRow, CallRow, ClassificationRow, LineRecordingRow
from app.store.repository import MAX_LINE_RECORDINGS
from tests.conftest import api_without_calls

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
POLICY = RetentionPolicy(calls_days=365, recordings_days=30)
ALL_CHANNELS = tuple(RecordingChannel)


@pytest.fixture
def store(database_url):
    store = Store(database_url)
    yield store
    store.close()


@pytest.fixture
def rec(tmp_path) -> Path:
    directory = tmp_path / "rec"
    directory.mkdir()
    return directory


def add_call(
    store: Store,
    rec: Path,
    call_id: str,
    *,
    ended: datetime | None,
    began: datetime | None = None,
    channels=(RecordingChannel.FAR_END, RecordingChannel.APP),
    directory: Path | None = None,
) -> list[Path]:
    """A call with two classification segments (kept as segments, not events), a transcript, and
    a WAV file per channel: ``3 + len(channels)`` events (with its end, or a status change when
    ``ended`` is None: still on hold, live). Returns its files."""
    began = began or (ended or NOW) - timedelta(minutes=30)
    store.create_call(call_id, CallRequest(number="8005550100", intent="billing"), "sip_phone")
    store.update_call(call_id, created_at=began)
    files = [recording_path(directory or rec, call_id, channel) for channel in channels]
    for i, path in enumerate(files):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF" + bytes(1000 * (i + 1)))
    at = began.isoformat(timespec="milliseconds")
    events: list[ev.EventData] = [
        ev.CallCreated(number="8005550100", intent="billing"),
        ev.AudioClassified(t_start=0.0, t_end=0.5, audio_class="ivr_prompt", confidence=0.9),
        ev.AudioClassified(t_start=0.5, t_end=1.0, audio_class="music", confidence=0.8),
        ev.IvrMenuDetected(step_id="menu", transcript="For billing, press 2.", t_start=0.0, t_end=3.0, heard_seconds=3.0, listened_seconds=3.0),
        *(ev.RecordingSaved(path=str(path), seconds=61.0, channel=channel) for path, channel in zip(files, channels)),
    ]
    if ended is None:
        events.append(ev.CallStatusChanged(status=CallStatus.ON_HOLD.value, previous=CallStatus.NAVIGATING.value))
    store.add_events([CallEvent(call_id, data, at, seq) for seq, data in enumerate(events, 1)])
    if ended is not None:
        ended_at = ended.isoformat(timespec="milliseconds")
        store.add_events([CallEvent(call_id, ev.CallEnded(status="completed", reason="bridged"), ended_at, len(events) + 1)])
    return files


def rows(store: Store, table) -> int:
    with store.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


def sweeper(store: Store, rec: Path, now: datetime = NOW, policy: RetentionPolicy = POLICY, **kwargs) -> Sweeper:
    return Sweeper(store, rec, policy, wall=lambda: now, **kwargs)


def test_a_sweep_deletes_old_calls_and_old_recordings_and_leaves_new_and_live_calls(store, rec):
    ancient = add_call(store, rec, "ancient", ended=NOW - timedelta(days=400))
    month = add_call(store, rec, "month", ended=NOW - timedelta(days=45), channels=ALL_CHANNELS)
    recent = add_call(store, rec, "recent", ended=NOW - timedelta(days=2))
    live = add_call(store, rec, "live", ended=None, began=NOW - timedelta(days=500))

    report = sweeper(store, rec).sweep()

    assert (report.calls_deleted, report.recordings_removed, report.files_deleted, report.failures) == (1, 1, 6, 0)
    assert report.bytes_freed == sum(4 + 1000 * i for i in (1, 2)) + sum(4 + 1000 * i for i in (1, 2, 3, 4))
    assert (report.events_deleted, report.classifications_deleted) == (5, 2)
    # The old call is gone with everything it had.
    assert store.get_call("ancient") is None
    assert not any(path.exists() for path in ancient + month)
    # The month-old call keeps its record, events and segments; only its files went.
    kept = store.get_call("month")
    assert kept is not None and kept.recordings_removed_at == NOW
    assert len(kept.events) == 7 and len(kept.classifications) == 2
    assert [event["data"]["transcript"] for event in kept.events if event["type"] == "IVR_MENU_DETECTED"] == ["For billing, press 2."]
    # The recent call and the live one (however old it began) are untouched.
    assert all(path.exists() for path in recent + live)
    assert store.get_call("recent").recordings_removed_at is None
    assert store.get_call("live").status is CallStatus.ON_HOLD
    assert rec.is_dir(), "the recordings directory itself stays"

    again = sweeper(store, rec).sweep()
    assert not again.removed_anything and again.failures == 0


def test_a_dry_run_says_what_would_go_and_changes_nothing(store, rec):
    files = add_call(store, rec, "ancient", ended=NOW - timedelta(days=400))
    files += add_call(store, rec, "month", ended=NOW - timedelta(days=45))
    report = sweeper(store, rec).sweep(dry_run=True)
    assert (report.calls_deleted, report.recordings_removed, report.files_deleted) == (1, 1, 4)
    assert report.summary().startswith("would delete 1 calls and the recordings of 1 more; 4 files")
    assert all(path.exists() for path in files)
    assert store.get_call("ancient") is not None and store.get_call("month").recordings_removed_at is None


@pytest.mark.parametrize(("name", "ended_days_ago"), [("ancient", 400), ("month", 45)])
def test_a_file_that_cannot_be_deleted_keeps_its_call_and_is_tried_again_next_sweep(store, rec, name, ended_days_ago):
    far_end, app = add_call(store, rec, name, ended=NOW - timedelta(days=ended_days_ago))
    other = add_call(store, rec, "other", ended=NOW - timedelta(days=ended_days_ago))
    # The far end's file cannot be unlinked: a directory stands in its place (even root cannot).
    far_end.unlink()
    far_end.mkdir()
    (far_end / "keep").write_bytes(b"x")

    first = sweeper(store, rec).sweep()

    assert first.failures == 1 and str(far_end) in first.problems[0]
    assert not app.exists(), "the call's other files went"
    record = store.get_call(name)
    assert record is not None and record.recordings_removed_at is None, "not marked: its files are not all gone"
    assert not any(path.exists() for path in other), "the other call of the batch was swept as usual"

    (far_end / "keep").unlink()
    far_end.rmdir()
    second = sweeper(store, rec).sweep()
    assert second.failures == 0 and (second.calls_deleted + second.recordings_removed) == 1
    after = store.get_call(name)
    assert after is None if name == "ancient" else after.recordings_removed_at == NOW


def test_directories_left_empty_are_removed_and_files_not_named_after_the_call_are_never_deleted(store, rec, tmp_path):
    nested = add_call(store, rec, "nested", ended=NOW - timedelta(days=45), directory=rec / "2026" / "04")
    outside = tmp_path / "elsewhere" / "notes.wav"
    outside.parent.mkdir()
    outside.write_bytes(b"mine")
    store.add_events([CallEvent("nested", ev.RecordingSaved(path=str(outside), seconds=1.0), NOW.isoformat(), 99)])

    report = sweeper(store, rec).sweep()

    assert report.recordings_removed == 1 and not any(path.exists() for path in nested)
    assert not (rec / "2026").exists() and rec.is_dir()
    assert outside.read_bytes() == b"mine"


def test_the_database_stays_bounded_as_days_go_by(store, rec):
    """Three calls a day for 60 days, a sweep each day (batches of 7): the rows never outgrow
    what the limits keep, and files only the recordings limit's worth."""
    policy = RetentionPolicy(calls_days=10, recordings_days=3)
    start = NOW - timedelta(days=60)
    counts = []
    for day in range(60):
        today = start + timedelta(days=day)
        for i in range(3):
            add_call(store, rec, f"d{day:02d}c{i}", ended=today + timedelta(hours=i))
        sweeper(store, rec, now=today + timedelta(hours=23), policy=policy, batch_size=7).sweep()
        counts.append(rows(store, CallRow))
    # The sweep at 23:00 of day d keeps what ended after 23:00 of day d-10: days d-9 to d.
    assert counts[:10] == [3 * (day + 1) for day in range(10)]
    assert set(counts[10:]) == {30}
    assert (rows(store, CallEventRow), rows(store, ClassificationRow)) == (30 * 5, 30 * 2)
    with_files = {path.name.split(".")[0] for path in rec.iterdir()}
    assert with_files == {f"d{day:02d}c{i}" for day in range(57, 60) for i in range(3)}


def test_many_old_calls_are_deleted_in_batches_down_to_the_kept_ones(store, rec):
    for i in range(250):
        add_call(store, rec, f"old{i:03d}", ended=NOW - timedelta(days=400 + i % 7), channels=())
    for i in range(5):
        add_call(store, rec, f"new{i}", ended=NOW - timedelta(days=1), channels=())
    assert rows(store, CallRow) == 255

    report = sweeper(store, rec, batch_size=40).sweep()

    assert report.calls_deleted == 250
    assert (rows(store, CallRow), rows(store, CallEventRow), rows(store, ClassificationRow)) == (5, 5 * 3, 5 * 2)
    assert sorted(record.id for record in store.list_calls()) == [f"new{i}" for i in range(5)]


def test_call_flows_and_line_recordings_are_never_swept_and_line_recordings_stay_bounded(store, rec):
    from tests.component.test_store import a_flow

    store.upsert_flow(a_flow())
    store.save_line_recordings("8005550100", [bytes([i]) * 8 for i in range(MAX_LINE_RECORDINGS + 4)])
    add_call(store, rec, "ancient", ended=NOW - timedelta(days=400))

    assert sweeper(store, rec).sweep().calls_deleted == 1
    assert store.get_flow("acme") is not None
    kept = store.line_recordings("8005550100")
    assert kept == [bytes([i]) * 8 for i in range(4, MAX_LINE_RECORDINGS + 4)], "the newest, oldest first"
    assert rows(store, LineRecordingRow) == MAX_LINE_RECORDINGS


def test_prune_on_the_command_line_with_and_without_dry_run(store, rec, database_url, monkeypatch, capsys):
    ended = utc_now() - timedelta(days=45)
    files = add_call(store, rec, "month", ended=ended)
    monkeypatch.setenv("HOLDSLAYER_DATABASE_URL", database_url)
    monkeypatch.setenv("HOLDSLAYER_RECORDINGS_DIR", str(rec))
    monkeypatch.setenv("HOLDSLAYER_RETAIN_RECORDINGS_DAYS", "30")

    assert cli_main(["prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "recordings kept 30 days" in out and "would delete 0 calls and the recordings of 1 more; 2 files" in out
    assert all(path.exists() for path in files)

    assert cli_main(["prune"]) == 0
    assert "deleted 0 calls (0 events, 0 classification segments) and the recordings of 1 more" in capsys.readouterr().out
    assert not any(path.exists() for path in files)
    assert store.get_call("month").recordings_removed_at is not None

    monkeypatch.setenv("HOLDSLAYER_RETAIN_CALLS_DAYS", "-3")
    assert cli_main(["prune"]) == 2
    assert "HOLDSLAYER_RETAIN_CALLS_DAYS" in capsys.readouterr().err


async def test_the_app_sweeps_at_start_and_the_api_says_the_recordings_are_gone(tmp_path, http, corpus, database_url):
    rec = tmp_path / "rec"  # the app's recordings directory (api_without_calls)
    setup = Store(database_url)
    try:
        ancient = add_call(setup, rec, "ancient", ended=utc_now() - timedelta(days=400))
        month = add_call(setup, rec, "month", ended=utc_now() - timedelta(days=45), channels=ALL_CHANNELS)
        recent = add_call(setup, rec, "recent", ended=utc_now() - timedelta(days=1))
    finally:
        setup.close()

    async with api_without_calls(tmp_path, http, corpus, database_url) as (call, holdslayer):
        for _ in range(500):  # the first sweep runs in the background at start
            if holdslayer.retention.sweeps:
                break
            await asyncio.sleep(0.01)
        assert holdslayer.retention.totals["calls_deleted"] == 1
        assert not any(path.exists() for path in ancient + month) and all(path.exists() for path in recent)

        status, listing = await call("GET", "/api/calls/month/recordings")
        assert status == 200
        assert [r["channel"] for r in listing["recordings"]] == [c.value for c in ALL_CHANNELS]
        removed_at = datetime.fromisoformat(listing["recordings"][0]["removed_at"])
        assert abs(removed_at - utc_now()) < timedelta(minutes=1)
        assert all(r["removed_at"] == listing["recordings"][0]["removed_at"] for r in listing["recordings"])

        for path in ("/api/calls/month/recordings/far_end", "/api/calls/month/recordings/bridged", "/api/calls/month/recording"):
            status, body = await call("GET", path)
            assert status == 410 and "HOLDSLAYER_RETAIN_RECORDINGS_DAYS" in body["detail"], path
        status, body = await call("GET", "/api/calls/month")
        assert status == 200 and body["status"] == "completed" and len(body["events"]) == 7

        status, listing = await call("GET", "/api/calls/recent/recordings")
        assert [r["removed_at"] for r in listing["recordings"]] == [None, None]
        assert (await call("GET", "/api/calls/recent/recordings/far_end"))[0] == 200
        assert (await call("GET", "/api/calls/ancient/recordings"))[0] == 404
