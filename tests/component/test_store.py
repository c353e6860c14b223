"""The store on a real database (the test's own: SQLite, or PostgreSQL with
HOLDSLAYER_TEST_DATABASE; tests/database.py), SQLite's own settings, and the event journal writer."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from app.calls import events as ev
from app.calls.events import CallEvent, EventBus
from app.calls.models import CallRequest, CallStatus, EndReason
from app.ivr.flow import CallFlow, load_flows_dir
from app.store import Store, StoreWriter, UnknownCallError

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"
T0 = datetime(2025, 3, 1, 9, 30, 0, 123000, tzinfo=timezone.utc)


@pytest.fixture
def db_url(database_url) -> str:
    return database_url


@pytest.fixture
def store(db_url):
    store = Store(db_url)
    yield store
    store.close()


def new_call(store: Store, call_id: str = "c1", number: str = "(800) 555-0100", **kwargs) -> None:
    store.create_call(call_id, CallRequest(number=number, intent="dispute a charge"), "sip_phone", **kwargs)


def event(data: ev.EventData, call_id: str = "c1", seq: int = 1, at: datetime = T0) -> CallEvent:
    return CallEvent(call_id, data, at.isoformat(timespec="milliseconds"), seq)


def a_flow(flow_id: str = "acme", number: str = "8005550100", version: int = 1, **fields) -> CallFlow:
    return CallFlow.model_validate(
        {
            "id": flow_id,
            "name": f"{flow_id} flow",
            "company": fields.pop("company", "Acme Bank"),
            "phone_number": number,
            "version": version,
            "steps": [
                {"id": "menu", "type": "LISTEN", "dtmf": "2", "timeout": 30},
                {"id": "hold", "type": "HOLD"},
                {"id": "transfer", "type": "TRANSFER", "metadata": {"device": "sip_phone"}},
            ],
            **fields,
        }
    )


# ---------------------------------------------------------------------------- engine


def test_sqlite_file_gets_its_directory_wal_and_foreign_keys(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'holdslayer.db'}")
    assert (tmp_path / "nested" / "dir" / "holdslayer.db").is_file()
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    store.close()


def test_tables_persist_across_store_instances(db_url):
    first = Store(db_url)
    new_call(first)
    first.close()
    second = Store(db_url)
    assert second.get_call("c1").number == "8005550100"
    second.close()


# ---------------------------------------------------------------------------- calls


def test_call_round_trip(store):
    new_call(store, flow_id="acme", company="Acme Bank")
    created = store.get_call("c1")
    assert (created.number, created.intent, created.device) == ("8005550100", "dispute a charge", "sip_phone")
    assert (created.flow_id, created.company, created.status, created.reason) == ("acme", "Acme Bank", CallStatus.PENDING, None)
    assert created.created_at.tzinfo is not None
    assert created.events == [] and created.classifications == []

    store.update_call("c1", status=CallStatus.ON_HOLD, answered_at=T0, hold_started_at=(T0 + timedelta(seconds=20)).isoformat())
    store.update_call(
        "c1",
        status="completed",
        reason=EndReason.BRIDGED,
        detail="the user hung up",
        connected_at=T0 + timedelta(minutes=5),
        ended_at=T0 + timedelta(minutes=9),
        hold_seconds=272.5,
        recording_path="data/recordings/c1.wav",
    )
    record = store.get_call("c1")
    assert (record.status, record.reason, record.detail) == (CallStatus.COMPLETED, EndReason.BRIDGED, "the user hung up")
    assert record.answered_at == T0
    assert record.hold_started_at == T0 + timedelta(seconds=20)
    assert record.ended_at - record.connected_at == timedelta(minutes=4)
    assert (record.hold_seconds, record.recording_path) == (272.5, "data/recordings/c1.wav")
    as_json = json.loads(json.dumps(record.to_dict()))
    assert as_json["status"] == "completed" and as_json["answered_at"] == "2025-03-01T09:30:00.123+00:00"


def test_call_errors(store):
    new_call(store)
    with pytest.raises(ValueError, match="already exists"):
        new_call(store)
    with pytest.raises(ValueError, match="cannot update call field.*colour"):
        store.update_call("c1", colour="red")
    with pytest.raises(ValueError):
        store.update_call("c1", status="on_vacation")
    with pytest.raises(ValueError, match="timezone"):
        store.update_call("c1", ended_at=datetime(2025, 1, 1))
    with pytest.raises(UnknownCallError):
        store.update_call("nope", status=CallStatus.FAILED)
    assert store.get_call("c1").status is CallStatus.PENDING  # nothing half-applied
    assert store.get_call("nope") is None


def test_list_calls_newest_first_with_status_filter_and_paging(store):
    for i in range(5):
        new_call(store, f"c{i}")
        store.update_call(f"c{i}", created_at=T0 + timedelta(minutes=i))
    store.update_call("c1", status="failed", reason="busy")
    store.update_call("c3", status="failed", reason="no_answer")

    assert [c.id for c in store.list_calls()] == ["c4", "c3", "c2", "c1", "c0"]
    assert [c.id for c in store.list_calls(limit=2, offset=1)] == ["c3", "c2"]
    failed = store.list_calls(status=CallStatus.FAILED)
    assert [(c.id, c.reason) for c in failed] == [("c3", EndReason.NO_ANSWER), ("c1", EndReason.BUSY)]
    assert all(c.events is None and c.classifications is None for c in failed)


def test_events_and_classifications_round_trip_in_order(store):
    new_call(store)
    # Written out of order on purpose: reads are ordered by seq / t_start.
    store.add_event(event(ev.CallStatusChanged(status=CallStatus.ON_HOLD, previous="navigating"), seq=7))
    store.add_event(event(ev.CallCreated(number="8005550100"), seq=3))
    store.add_event(
        event(ev.AudioClassified(t_start=3.0, t_end=6.0, audio_class="MUSIC", confidence=np.float32(0.75), features={"flatness": np.float64(0.25)}), seq=9)
    )
    store.add_classification("c1", 0.0, 3.0, "IVR_PROMPT", 0.9, {"flatness": 0.1})

    record = store.get_call("c1")
    assert [e["seq"] for e in record.events] == [3, 7], "classification windows are kept as segments, not events"
    assert record.events[0] == {
        "type": "CALL_CREATED",
        "call_id": "c1",
        "data": {"number": "8005550100", "intent": "", "device": None, "flow_id": None, "company": None},
        "at": T0.isoformat(timespec="milliseconds"),
        "seq": 3,
    }
    assert record.events[1]["data"] == {"status": "on_hold", "previous": "navigating"}
    assert record.classifications == [
        {"t_start": 0.0, "t_end": 3.0, "audio_class": "IVR_PROMPT", "confidence": 0.9, "features": {"flatness": 0.1}},
        {"t_start": 3.0, "t_end": 6.0, "audio_class": "MUSIC", "confidence": 0.75, "features": {"windows": 1}},
    ]


def window(t: float, audio_class: str, confidence: float = 0.8, seconds: float = 0.5) -> ev.AudioClassified:
    return ev.AudioClassified(t_start=t, t_end=round(t + seconds, 3), audio_class=audio_class, confidence=confidence, features={"f": 1.0})


def test_classification_windows_become_segments_of_one_class_each(store):
    new_call(store)
    windows = [window(0.5 * i, "MUSIC", 0.8 if i % 2 else 0.6) for i in range(240)]  # two minutes of music
    windows += [window(120.0, "LIVE_HUMAN", 0.9), window(120.5, "LIVE_HUMAN", 0.7)]
    windows += [window(121.0, "MUSIC"), window(125.0, "MUSIC")]  # a gap: a new segment
    # Written in batches, as the writer does: a segment goes on across batches.
    for start in range(0, len(windows), 7):
        store.add_events([event(w, seq=start + i) for i, w in enumerate(windows[start : start + 7])])
    record = store.get_call("c1")
    assert record.events == []
    assert [(c["audio_class"], c["t_start"], c["t_end"], c["features"]["windows"]) for c in record.classifications] == [
        ("MUSIC", 0.0, 120.0, 240),
        ("LIVE_HUMAN", 120.0, 121.0, 2),
        ("MUSIC", 121.0, 121.5, 1),
        ("MUSIC", 125.0, 125.5, 1),
    ]
    assert record.classifications[0]["confidence"] == pytest.approx(0.7)
    assert record.classifications[1]["confidence"] == pytest.approx(0.8)


def test_the_detectors_overlapping_windows_become_segments_that_tile_the_call(store):
    """The detector classifies 3 s windows every 0.5 s: each overlaps the one before by 2.5 s.
    Seen in a held call's database: one segment row per window (the windows never abutted), so
    the store grew by two rows a second per call and finding a call's last segment, on every
    write, slowed down as the hold went on."""
    new_call(store)
    classes = ["MUSIC"] * 240 + ["IVR_PROMPT"] * 10 + ["MUSIC"] * 20
    windows = [window(0.5 * i, audio_class, seconds=3.0) for i, audio_class in enumerate(classes)]
    for start in range(0, len(windows), 7):
        store.add_events([event(w, seq=start + i) for i, w in enumerate(windows[start : start + 7])])
    record = store.get_call("c1")
    assert [(c["audio_class"], c["t_start"], c["t_end"], c["features"]["windows"]) for c in record.classifications] == [
        ("MUSIC", 0.0, 122.5, 240),
        ("IVR_PROMPT", 122.5, 127.5, 10),
        ("MUSIC", 127.5, 137.5, 20),
    ]


def test_a_held_calls_next_window_lengthens_its_segment_without_finding_it_again(store):
    """Every window a held call writes (one every 0.5 s) used to look its call's last segment up
    again: a SELECT and an UPDATE per window, ~7% of the app's CPU at 20 held calls."""
    from sqlalchemy import event as sa_event

    new_call(store)
    store.add_events([event(window(0.0, "MUSIC", seconds=3.0), seq=1)])
    statements: list[str] = []
    sa_event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2].split()[0].upper()))
    for i in range(1, 11):
        store.add_events([event(window(0.5 * i, "MUSIC", seconds=3.0), seq=1 + i)])
    touching_segments = [s for s in statements if s in ("SELECT", "UPDATE", "INSERT")]
    # Per batch: the call's row looked up (is it known), one UPDATE of its segment.
    assert touching_segments.count("UPDATE") == 10 and touching_segments.count("SELECT") == 10, statements

    # A failed batch forgets what it had: the next one finds the segment again, and goes on from it.
    def fail(*args):
        raise RuntimeError("the database went away")

    sa_event.listen(store.engine, "before_cursor_execute", fail)
    with pytest.raises(Exception, match="went away"):
        store.add_events([event(window(5.5, "MUSIC", seconds=3.0), seq=20)])
    sa_event.remove(store.engine, "before_cursor_execute", fail)
    store.add_events([event(window(6.0, "MUSIC", seconds=3.0), seq=21), event(window(6.5, "IVR_PROMPT", seconds=3.0), seq=22)])
    store.add_events([event(window(7.0, "IVR_PROMPT", seconds=3.0), seq=23)])
    store.add_classification("c1", 20.0, 21.0, "LIVE_HUMAN", 0.9)  # written aside: the next window finds it
    store.add_events([event(window(20.5, "LIVE_HUMAN", seconds=0.5), seq=24)])
    record = store.get_call("c1")
    assert [(c["audio_class"], c["t_start"], c["t_end"], c["features"].get("windows")) for c in record.classifications] == [
        ("MUSIC", 0.0, 9.0, 12),
        ("IVR_PROMPT", 9.0, 10.0, 2),
        ("LIVE_HUMAN", 20.0, 21.0, 2),
    ]


def test_raw_windows_are_kept_as_events_on_request(db_url):
    store = Store(db_url, keep_classification_windows=True)
    new_call(store)
    store.add_events([event(window(0.0, "MUSIC"), seq=1), event(window(0.5, "MUSIC"), seq=2)])
    record = store.get_call("c1")
    assert [e["type"] for e in record.events] == ["AUDIO_CLASSIFIED", "AUDIO_CLASSIFIED"]
    assert len(record.classifications) == 1 and record.classifications[0]["features"] == {"windows": 2}
    store.close()


def test_events_need_their_call(store):
    with pytest.raises(UnknownCallError):
        store.add_event(event(ev.CallCreated(number="8005550100"), call_id="ghost"))
    with pytest.raises(UnknownCallError):
        store.add_classification("ghost", 0, 1, "MUSIC", 0.5)
    new_call(store)
    skipped = store.add_events([event(ev.CallCreated(number="8005550100"), seq=1), event(ev.CallCreated(number="8005550100"), "ghost", seq=2)])
    assert [e.call_id for e in skipped] == ["ghost"]
    assert [e["seq"] for e in store.get_call("c1").events] == [1]


def test_mark_unfinished_calls_failed(store):
    for call_id in ("pending", "holding", "done"):
        new_call(store, call_id)
        store.update_call(call_id, created_at=T0 - timedelta(seconds=5))
    store.update_call("holding", status="on_hold", answered_at=T0, hold_started_at=T0 + timedelta(seconds=30))
    store.add_event(event(ev.HoldProgress(hold_seconds=690), "holding", seq=1, at=T0 + timedelta(minutes=12)))
    store.update_call("done", status="completed", reason="bridged", ended_at=T0)

    assert store.mark_unfinished_calls_failed() == 2

    holding = store.get_call("holding")
    assert (holding.status, holding.reason, holding.detail) == (CallStatus.FAILED, EndReason.ERROR, "process restarted")
    assert holding.ended_at == T0 + timedelta(minutes=12)  # last sign of life, not the restart time
    pending = store.get_call("pending")
    assert pending.status is CallStatus.FAILED and pending.ended_at == pending.created_at
    done = store.get_call("done")
    assert (done.status, done.reason, done.ended_at) == (CallStatus.COMPLETED, EndReason.BRIDGED, T0)
    assert store.mark_unfinished_calls_failed() == 0


def test_in_memory_database_is_shared_by_threads():
    store = Store("sqlite://")
    new_call(store)

    def add(i: int) -> None:
        store.add_event(event(ev.HoldProgress(hold_seconds=i), seq=i))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e["seq"] for e in store.get_call("c1").events] == list(range(1, 21))
    store.close()


# ---------------------------------------------------------------------------- flows


def test_flow_round_trip_and_delete(store):
    flow = a_flow(description="menu 2", tags=["bank"], success_count=3)
    store.upsert_flow(flow)
    assert store.get_flow("acme") == flow
    changed = flow.model_copy(update={"name": "renamed", "version": 2})
    store.upsert_flow(changed)
    assert store.get_flow("acme") == changed
    assert store.delete_flow("acme") is True
    assert store.get_flow("acme") is None
    assert store.delete_flow("acme") is False


def test_find_flow_for_number_prefers_highest_usable_version(store):
    store.upsert_flow(a_flow("old", version=1))
    store.upsert_flow(a_flow("new", version=3))
    store.upsert_flow(a_flow("elsewhere", number="5550001", version=9))
    assert store.find_flow_for_number("(800) 555-0100").id == "new"
    assert store.set_flow_stale("new") is True
    assert store.find_flow_for_number("8005550100").id == "old"
    store.set_flow_stale("old")
    assert store.find_flow_for_number("8005550100") is None
    store.upsert_flow(a_flow("new", version=4))  # a saved definition is current again
    assert store.find_flow_for_number("8005550100").id == "new"
    assert store.set_flow_stale("missing") is False


def test_list_flows_filters(store):
    store.upsert_flow(a_flow("acme", tags=["bank", "demo"]))
    store.upsert_flow(a_flow("acme-card", number="8005550199", tags=["card"]))
    store.upsert_flow(a_flow("power", number="8005550111", company="Power Co", tags=["utility"]))
    store.set_flow_stale("acme-card")
    assert [f.id for f in store.list_flows()] == ["acme", "acme-card", "power"]
    assert [f.id for f in store.list_flows(company="acme bank")] == ["acme", "acme-card"]
    assert [f.id for f in store.list_flows(tag="demo")] == ["acme"]
    assert [f.id for f in store.list_flows(stale=True)] == ["acme-card"]
    assert [f.id for f in store.list_flows(company="Acme Bank", stale=False)] == ["acme"]


def test_record_flow_outcome_counts(store):
    store.upsert_flow(a_flow())
    for success in (True, True, False):
        assert store.record_flow_outcome("acme", success) is True
    flow = store.get_flow("acme")
    assert (flow.success_count, flow.fail_count) == (2, 1)
    assert store.record_flow_outcome("missing", True) is False


def test_import_flows_dir_replaces_only_with_higher_versions(store, tmp_path):
    imported, errors = store.import_flows_dir(FLOWS_DIR)
    assert (imported, errors) == (len(list(FLOWS_DIR.glob("*.yaml"))), [])
    assert store.find_flow_for_number("8005550100").id == "acme-bank"
    assert store.import_flows_dir(FLOWS_DIR) == (0, [])  # same versions: stored copies kept

    shipped, _ = load_flows_dir(FLOWS_DIR)
    acme = next(f for f in shipped if f.id == "acme-bank")
    store.upsert_flow(acme.model_copy(update={"version": 5, "description": "learned"}))
    flows_dir = tmp_path / "flows"
    flows_dir.mkdir()
    (flows_dir / "acme.json").write_text(acme.model_copy(update={"version": 4}).model_dump_json())
    (flows_dir / "new.json").write_text(a_flow("brand-new").model_dump_json())
    (flows_dir / "broken.yaml").write_text("id: [\n")

    imported, errors = store.import_flows_dir(flows_dir)
    assert imported == 1
    assert [e.path.name for e in errors] == ["broken.yaml"]
    assert store.get_flow("acme-bank").description == "learned"
    assert store.get_flow("brand-new") is not None

    (flows_dir / "acme.json").write_text(acme.model_copy(update={"version": 6}).model_dump_json())
    assert store.import_flows_dir(flows_dir)[0] == 1
    assert store.get_flow("acme-bank").version == 6


# ---------------------------------------------------------------------------- concurrency


def test_concurrent_writers_from_threads_do_not_corrupt(db_url):
    # Two Store instances on one file stand in for two processes; threads use both.
    stores = [Store(db_url), Store(db_url)]
    stores[0].upsert_flow(a_flow())
    workers, calls_each, events_each = 8, 5, 10
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        store = stores[worker % 2]
        try:
            for c in range(calls_each):
                call_id = f"w{worker}-c{c}"
                new_call(store, call_id)
                for seq in range(events_each):
                    store.add_event(event(ev.HoldProgress(hold_seconds=seq), call_id, seq=seq))
                    store.update_call(call_id, status="on_hold", hold_seconds=seq)  # read-modify-write
                store.record_flow_outcome("acme", success=c % 2 == 0)
        except BaseException as exc:  # surfaced in the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []

    store = stores[0]
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    calls = store.list_calls(limit=1000)
    assert len(calls) == workers * calls_each
    for call in calls:
        record = store.get_call(call.id)
        assert [e["seq"] for e in record.events] == list(range(events_each))
        assert record.hold_seconds == events_each - 1
    flow = store.get_flow("acme")
    assert flow.success_count + flow.fail_count == workers * calls_each
    assert flow.success_count == workers * 3  # calls 0, 2, 4 of each worker
    for s in stores:
        s.close()


# ---------------------------------------------------------------------------- the journal writer


async def test_writer_persists_events_in_publish_order_and_drains_on_stop(store):
    new_call(store)
    bus = EventBus()
    writer = StoreWriter(store, bus, batch_size=7)
    writer.start()
    published = [bus.emit("c1", ev.HoldProgress(hold_seconds=i)) for i in range(60)]
    published.append(
        bus.emit("c1", ev.AudioClassified(t_start=0.0, t_end=3.0, audio_class="MUSIC", confidence=0.8, features={"f": 1.0}))
    )
    published.append(bus.emit("c1", ev.CallEnded(status="completed", reason="bridged", detail="")))
    await asyncio.wait_for(writer.stop(), 10)

    record = store.get_call("c1")
    assert [e["seq"] for e in record.events] == [e.seq for e in published if e.type is not ev.EventType.AUDIO_CLASSIFIED]
    assert [e["data"].get("hold_seconds") for e in record.events[:60]] == list(range(60))
    assert record.classifications == [
        {"t_start": 0.0, "t_end": 3.0, "audio_class": "MUSIC", "confidence": 0.8, "features": {"windows": 1}}
    ]
    # The row follows the events: CALL_ENDED made the call completed.
    assert (record.status, record.reason) == (CallStatus.COMPLETED, EndReason.BRIDGED)
    assert writer.journaled == len(published) and writer.skipped == 0 and writer.failed == 0


async def test_a_reader_can_wait_until_an_event_is_in_the_store(store):
    """What a WebSocket client relies on: once wait_stored(seq) says yes, the row shows the event."""
    new_call(store)
    bus = EventBus()
    writer = StoreWriter(store, bus)
    assert await writer.wait_stored(1, timeout=0.05) is False  # not started: never hangs the reader
    writer.start()
    ended = bus.emit("c1", ev.CallEnded(status="completed", reason="bridged", detail=""))
    assert store.get_call("c1").status is not CallStatus.COMPLETED  # published, not written yet
    assert await writer.wait_stored(ended.seq, timeout=10) is True
    assert store.get_call("c1").status is CallStatus.COMPLETED
    assert await writer.wait_stored(ended.seq, timeout=0.0) is True  # already there: no wait
    await writer.stop()


async def test_held_calls_share_a_transaction_and_anything_else_is_written_at_once(store, monkeypatch):
    """Periodic events (a classified window every 0.5 s, the hold's progress) wait a moment for
    more, so that many held calls take one transaction, not one each; a status change does not."""
    for call_id in ("c1", "c2", "c3"):
        new_call(store, call_id)
    transactions: list[list[str]] = []
    add_events = store.add_events
    monkeypatch.setattr(store, "add_events", lambda batch: transactions.append([e.type.value for e in batch]) or add_events(batch))
    bus = EventBus()
    writer = StoreWriter(store, bus, linger=0.3)
    writer.start()
    loop = asyncio.get_running_loop()

    for second in range(2):  # three held calls, 20 ms apart
        for call_id in ("c1", "c2", "c3"):
            bus.emit(call_id, ev.HoldProgress(hold_seconds=second))
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.4)
    assert transactions == [["HOLD_PROGRESS"] * 6]

    sent = loop.time()
    status = bus.emit("c2", ev.CallStatusChanged(status="human_detected", previous="on_hold"))
    assert await writer.wait_stored(status.seq, timeout=10)
    assert loop.time() - sent < 0.2 and transactions[-1] == ["CALL_STATUS"]

    bus.emit("c1", ev.HoldProgress(hold_seconds=2))
    ended = bus.emit("c1", ev.CallEnded(status="completed", reason="bridged", detail=""))
    assert await writer.wait_stored(ended.seq, timeout=10)
    assert loop.time() - sent < 0.2, "a batch with a final event in it does not wait"
    assert transactions[-1] == ["HOLD_PROGRESS", "CALL_ENDED"]
    await asyncio.wait_for(writer.stop(), 10)
    assert writer.journaled == 9 and store.get_call("c1").status is CallStatus.COMPLETED


async def test_writer_skips_events_of_unknown_calls_and_keeps_going(store):
    new_call(store)
    bus = EventBus()
    writer = StoreWriter(store, bus)
    writer.start()
    bus.emit("ghost", ev.CallCreated(number="8005550100"))
    bus.emit("c1", ev.CallCreated(number="8005550100"))
    bus.emit("ghost", ev.CallDialing(number="8005550100", dial_string="PJSIP/8005550100@trunk"))
    bus.emit("c1", ev.CallDialing(number="8005550100", dial_string="PJSIP/8005550100@trunk"))
    await asyncio.wait_for(writer.stop(), 10)
    assert [e["type"] for e in store.get_call("c1").events] == ["CALL_CREATED", "CALL_DIALING"]
    assert (writer.journaled, writer.skipped) == (2, 2)


async def test_writer_isolates_an_event_the_database_refuses(store):
    new_call(store)
    bus = EventBus()
    writer = StoreWriter(store, bus)
    writer.start()
    bus.emit("c1", ev.CallCreated(number="8005550100"))
    bus.publish(CallEvent("c1", ev.CallDialing(number="8005550100", dial_string="PJSIP/8005550100@trunk"), at="not a time"))
    bus.emit("c1", ev.CallRinging())
    await asyncio.wait_for(writer.stop(), 10)
    assert [e["type"] for e in store.get_call("c1").events] == ["CALL_CREATED", "CALL_RINGING"]
    assert (writer.journaled, writer.failed) == (2, 1)


async def test_writer_stops_even_when_its_queue_overflowed(store):
    new_call(store)
    bus = EventBus()
    writer = StoreWriter(store, bus)
    writer.start()
    queue_size = 10_000  # EventBus.subscribe default
    for i in range(queue_size + 5):  # no await: the writer cannot run, its queue fills up
        bus.emit("c1", ev.HoldProgress(hold_seconds=i))
    await asyncio.wait_for(writer.stop(), 30)
    assert writer.dropped == 5
    assert writer.journaled == queue_size
    events = store.get_call("c1").events
    assert len(events) == queue_size and events[-1]["data"]["hold_seconds"] == queue_size - 1


def test_the_call_row_follows_its_events(store):
    new_call(store)
    at = [T0 + timedelta(seconds=s) for s in range(8)]
    store.add_events(
        [
            event(ev.CallStatusChanged(status="navigating", previous="ringing"), seq=1, at=at[1]),
            event(ev.CallStatusChanged(status="on_hold", previous="navigating"), seq=2, at=at[2]),
            event(ev.CallStatusChanged(status="navigating", previous="on_hold"), seq=3, at=at[3]),  # menus again
            event(ev.HumanDetected(t=80.0, confidence=0.9, evidence={}, hold_seconds=61.5), seq=4, at=at[4]),
            event(ev.CallStatusChanged(status="human_detected", previous="on_hold"), seq=5, at=at[4]),
            event(ev.CallStatusChanged(status="connected", previous="transferring"), seq=6, at=at[5]),
            event(ev.RecordingSaved(path="/rec/c1.wav", seconds=90.0), seq=7, at=at[6]),
            event(ev.RecordingSaved(path="/rec/c1.app.wav", seconds=90.0, channel="app"), seq=7, at=at[6]),
            event(ev.RecordingSaved(path="/rec/c1.bridged.wav", seconds=12.0, channel="bridged"), seq=7, at=at[6]),
            event(ev.CallEnded(status="completed", reason="bridged", detail="the user hung up"), seq=8, at=at[7]),
        ]
    )
    record = store.get_call("c1")
    # The row keeps the far end's file (GET .../recording); the others are found through their events.
    assert store.call_recordings("c1") == [
        {"path": "/rec/c1.wav", "seconds": 90.0, "channel": "far_end"},
        {"path": "/rec/c1.app.wav", "seconds": 90.0, "channel": "app"},
        {"path": "/rec/c1.bridged.wav", "seconds": 12.0, "channel": "bridged"},
    ]
    assert store.call_recordings("nope") is None
    assert record.answered_at == at[1]  # the first answer, not the menus coming back
    assert (record.hold_started_at, record.human_detected_at, record.connected_at) == (at[2], at[4], at[5])
    assert (record.hold_seconds, record.recording_path) == (61.5, "/rec/c1.wav")
    assert (record.status, record.reason, record.detail, record.ended_at) == (
        CallStatus.COMPLETED, EndReason.BRIDGED, "the user hung up", at[7],
    )  # fmt: skip


# ---------------------------------------------------------------------------- what every backend stores


def test_text_with_a_nul_character_is_stored_and_never_found_by_a_lookup(store):
    # PostgreSQL text cannot hold NUL: the store keeps U+FFFD there, SQLite keeps it as it is.
    kept = "a\ufffdb" if store.engine.dialect.name == "postgresql" else "a\x00b"
    store.create_call("c1", CallRequest(number="8005550100", intent="a\x00b"), "sip_phone")
    store.upsert_flow(a_flow(name="a\x00b", description="\x00"))
    assert store.get_call("c1").intent == kept
    assert store.get_flow("acme").name == kept
    assert store.get_call("c1\x00") is None and store.get_flow("acme\x00") is None
    assert store.list_flows(company="Acme\x00") == [] and store.get_device("\x00") is None
    store.add_event(event(ev.CallCreated(number="8005550100", intent="a\x00b"), seq=1))
    assert store.get_call("c1").events[0]["data"]["intent"] == "a\x00b"  # inside JSON it is kept everywhere


def test_flows_list_in_the_same_order_and_match_companies_the_same_on_every_backend(store):
    for flow_id, company, name in [("b", "acme", "Zed"), ("a", "Acme", "zed"), ("c", "Émile & Co", "x"), ("d", "ÉMILE & CO", "x")]:
        store.upsert_flow(a_flow(flow_id, company=company, name=name))
    assert [f.id for f in store.list_flows()] == ["a", "b", "d", "c"]  # code point order, not the collation's
    assert [f.id for f in store.list_flows(company="ACME")] == ["a", "b"]
    assert [f.id for f in store.list_flows(company="émile & co")] == ["d", "c"]


async def test_a_restart_loses_no_finished_call(db_url):
    store = Store(db_url)
    new_call(store, "done")
    new_call(store, "running")  # still on hold when the process stops
    bus = EventBus()
    writer = StoreWriter(store, bus)
    writer.start()
    journal = [
        bus.emit("done", ev.CallStatusChanged(status="on_hold", previous="navigating")),
        bus.emit("done", ev.HumanDetected(t=80.0, confidence=0.9, evidence={}, hold_seconds=61.5)),
        bus.emit("done", ev.CallEnded(status="completed", reason="bridged", detail="the user hung up")),
    ]
    bus.emit("done", ev.AudioClassified(t_start=0.0, t_end=0.5, audio_class="MUSIC", confidence=0.8, features={}))
    bus.emit("running", ev.CallStatusChanged(status="on_hold", previous="navigating"))
    await asyncio.wait_for(writer.stop(), 10)
    store.close()

    again = Store(db_url)  # the next process
    try:
        assert again.mark_unfinished_calls_failed() == 1  # what every start does
        done = again.get_call("done")
        assert (done.status, done.reason, done.detail, done.hold_seconds) == (
            CallStatus.COMPLETED, EndReason.BRIDGED, "the user hung up", 61.5,
        )  # fmt: skip
        assert [e["seq"] for e in done.events] == [e.seq for e in journal]
        assert [c["audio_class"] for c in done.classifications] == ["MUSIC"]
        assert again.get_call("running").status is CallStatus.FAILED
        assert {c.id for c in again.list_calls()} == {"done", "running"}
    finally:
        again.close()
