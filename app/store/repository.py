"""The store: calls, their events and classifications, call flows, and the user's devices.

Every method is synchronous and runs one short transaction, so it is safe from any thread;
async callers use ``await asyncio.to_thread(store.method, ...)``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.calls.events import (
    AudioClassified,
    CallEnded,
    CallEvent,
    CallStatusChanged,
    EventType,
    HumanDetected,
    RecordingSaved,
)
from app.calls.models import FINAL_STATUSES, CallRequest, CallStatus, EndReason, RecordingChannel
from app.clock import utc_now
from app.devices import Device, DeviceConflict, UnknownDevice, check_device, name_problem
from app.ivr.flow import CallFlow, FlowFileError, load_flows_dir
from app.phone import normalize_phone_number
from app.store.live import EVENTS_CHANNEL, pack_events
from app.store.db import EXCLUSIVE_WRITE_LOCK_KEY, WRITE_TRANSACTION, create_engine_for, init_db, is_sqlite_memory
from app.store.models import (
    AppliedSettingRow,
    CallEventRow,
    CallFlowRow,
    CallRow,
    ClassificationRow,
    DeviceRow,
    LineRecordingRow,
)

log = logging.getLogger(__name__)

_TIME_FIELDS = frozenset({"created_at", "answered_at", "hold_started_at", "human_detected_at", "connected_at", "ended_at"})
_UPDATABLE_FIELDS = frozenset(
    {"number", "intent", "device", "flow_id", "company", "status", "reason", "detail", "recording_path", "hold_seconds"}
    | _TIME_FIELDS
)
_REQUIRED_FIELDS = frozenset({"number", "intent", "device", "status", "created_at"})
_FINAL_STATUS_VALUES = [status.value for status in FINAL_STATUSES]
# Fingerprints kept per company number, newest last: knowledge of the line like its call flow, so
# retention never ages them out; a new announcement pushes out the oldest instead (the detector's
# memory, app.audio.fingerprint.RecordingMemory, holds 16 too).
MAX_LINE_RECORDINGS = 16


class UnknownCallError(LookupError):
    """The call id has no row: ``create_call`` must come before anything else about a call."""


@dataclass
class DeviceChanges:
    """What applying the device settings did (``Store.apply_device_settings``)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # gone from the settings, but the default or the last device
    default: str | None = None  # the new default device, when it changed

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.kept or self.default)


@dataclass(frozen=True)
class RetentionCandidate:
    """A finished call old enough for one of the retention limits (``Store.retention_candidates``):
    what ``app.retention`` decides on and the files it may have to delete."""

    id: str
    status: CallStatus
    created_at: datetime
    ended_at: datetime | None
    recordings_removed_at: datetime | None
    recording_paths: tuple[str, ...] = ()  # from its RECORDING_SAVED events


@dataclass(frozen=True)
class DeletedRows:
    """What ``Store.delete_calls`` removed, table by table."""

    calls: int = 0
    events: int = 0
    classifications: int = 0


@dataclass(frozen=True)
class LiveCall:
    """A call not in a final status, and the worker process running it (``Store.live_calls``)."""

    id: str
    status: CallStatus
    worker: int | None
    node: str = ""


@dataclass(frozen=True)
class CallRecord:
    """One stored call. ``events``/``classifications`` are None when not loaded (``list_calls``)."""

    id: str
    number: str
    intent: str
    device: str
    flow_id: str | None
    company: str | None
    status: CallStatus
    reason: EndReason | None
    detail: str | None
    created_at: datetime
    answered_at: datetime | None
    hold_started_at: datetime | None
    human_detected_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    recording_path: str | None
    hold_seconds: float | None
    recordings_removed_at: datetime | None = None  # retention deleted its recording files then
    worker: int | None = None  # the worker process running it (serve --workers N)
    node: str | None = None  # the host installation of that worker (HOLDSLAYER_NODE)
    events: list[dict[str, Any]] | None = None  # shaped like CallEvent.to_dict(), ordered by seq
    classifications: list[dict[str, Any]] | None = None  # ordered by t_start

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: enums as their strings, times as ISO 8601."""
        out = asdict(self)
        for name, value in out.items():
            if isinstance(value, Enum):
                out[name] = value.value
            elif isinstance(value, datetime):
                out[name] = _iso(value)
        return out


class Store:
    def __init__(self, database_url: str, *, keep_classification_windows: bool = False, live_events: bool = False):
        """``keep_classification_windows``: also journal every AUDIO_CLASSIFIED window as an
        event (for debugging the detector); normally a call keeps its classification history as
        segments only (a class and its span), not a row every half second.

        ``live_events`` (PostgreSQL only): every batch of events journaled is also sent, in the
        same transaction, on the NOTIFY channel ``app.store.live.EVENTS_CHANNEL`` (a worker
        process's events, for the front of ``serve --workers N``)."""
        self.keep_classification_windows = keep_classification_windows
        self.engine = create_engine_for(database_url)
        if live_events and self.engine.dialect.name != "postgresql":
            raise ValueError("live events need PostgreSQL (LISTEN/NOTIFY), not " + self.engine.dialect.name)
        self.live_events = live_events
        init_db(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.engine.execution_options(**{WRITE_TRANSACTION: True}), expire_on_commit=False)
        # An in-memory database is one shared connection: transactions from two threads must not interleave.
        self._serial: AbstractContextManager[Any] = threading.Lock() if is_sqlite_memory(database_url) else nullcontext()
        # Each live call's last classification segment as last committed (a detached row): the
        # next window lengthens it by an UPDATE, without finding it again (a SELECT per window).
        self._segment_tails: dict[str, ClassificationRow] = {}
        self._segment_tails_lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self, *, write: bool, exclusive: bool = False) -> Iterator[Session]:
        """One transaction. ``write``: SQLite takes its write lock at once (one writer at a time).
        ``exclusive``: a write that reads what it then writes takes turns on PostgreSQL too."""
        with self._serial, (self._writer if write else self._reader).begin() as session:
            if exclusive and session.bind.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EXCLUSIVE_WRITE_LOCK_KEY})
            yield session

    # ------------------------------------------------------------------ calls

    def create_call(
        self,
        call_id: str,
        request: CallRequest,
        device: str,
        flow_id: str | None = None,
        company: str | None = None,
        worker: int | None = None,
        node: str | None = None,
    ) -> None:
        with self._transaction(write=True) as session:
            if session.get(CallRow, call_id) is not None:
                raise ValueError(f"call {call_id!r} already exists")
            session.add(
                CallRow(
                    id=call_id,
                    number=request.number,
                    intent=request.intent,
                    device=device,
                    flow_id=flow_id,
                    company=company,
                    status=CallStatus.PENDING.value,
                    created_at=utc_now(),
                    worker=worker,
                    node=node or None,
                )
            )

    def update_call(self, call_id: str, **fields: Any) -> None:
        """Set columns of a call. Status and reason may be enums or their strings; times are aware
        datetimes or ISO 8601 strings. An unknown field raises ValueError."""
        unknown = sorted(set(fields) - _UPDATABLE_FIELDS)
        if unknown:
            raise ValueError(f"cannot update call field(s) {', '.join(unknown)}; known: {', '.join(sorted(_UPDATABLE_FIELDS))}")
        values = {name: _column_value(name, value) for name, value in fields.items()}
        with self._transaction(write=True) as session:
            row = _call_row(session, call_id)
            for name, value in values.items():
                setattr(row, name, value)

    def add_event(self, event: CallEvent) -> None:
        """Journal one event (and its classification row for AUDIO_CLASSIFIED)."""
        if self.add_events([event]):
            raise UnknownCallError(f"no call {event.call_id!r}")

    def add_events(self, events: Sequence[CallEvent]) -> list[CallEvent]:
        """Journal events in one transaction; returns those skipped because their call has no row."""
        if not events:
            return []
        call_ids = {event.call_id for event in events}
        with self._segment_tails_lock:
            tails = {call_id: self._segment_tails.pop(call_id) for call_id in call_ids if call_id in self._segment_tails}
        segments = _Segments(tails)
        with self._transaction(write=True) as session:
            known = set(session.scalars(select(CallRow.id).where(CallRow.id.in_(call_ids))))
            skipped = []
            live: list[tuple[dict[str, Any], CallEventRow | None]] = []
            for event in events:
                if event.call_id not in known:
                    skipped.append(event)
                    continue
                window = event.data if isinstance(event.data, AudioClassified) else None
                if window is not None:
                    segments.add(session, event.call_id, window)
                row_added = None
                if window is None or self.keep_classification_windows:
                    row_added = CallEventRow(
                        call_id=event.call_id,
                        seq=event.seq,
                        type=event.type.value,
                        at=_as_utc(event.at),
                        data=event.data.model_dump(mode="json"),
                    )
                    session.add(row_added)
                if self.live_events:
                    live.append((event.to_dict(), row_added))
                changes = call_row_changes(event)
                if changes:
                    row = _call_row(session, event.call_id)
                    if row.answered_at is not None:
                        changes.pop("answered_at", None)  # the first answer; menus may come back later
                    for name, value in changes.items():
                        setattr(row, name, _column_value(name, value))
            if live:
                _notify_live(session, live)
        # Committed: the tails are what the database holds (after a failure they are dropped, and
        # the next window finds its segment again). An ended call gets no more windows.
        ended = {event.call_id for event in events if event.type is EventType.CALL_ENDED}
        with self._segment_tails_lock:
            # Taken out for this batch but not used by it (no window of that call): put back too.
            after = {**tails, **segments.tails}
            self._segment_tails.update({c: row for c, row in after.items() if row is not None and c not in ended})
        return skipped

    def add_classification(
        self,
        call_id: str,
        t_start: float,
        t_end: float,
        audio_class: str,
        confidence: float,
        features: dict[str, Any] | None = None,
    ) -> None:
        with self._segment_tails_lock:
            self._segment_tails.pop(call_id, None)  # its last segment may no longer be the last row
        with self._transaction(write=True) as session:
            _call_row(session, call_id)
            session.add(
                ClassificationRow(
                    call_id=call_id,
                    t_start=float(t_start),
                    t_end=float(t_end),
                    audio_class=str(_json_safe(audio_class)),
                    confidence=float(confidence),
                    features=None if features is None else _json_safe(features),
                )
            )

    def get_call(self, call_id: str) -> CallRecord | None:
        with self._transaction(write=False) as session:
            row = session.get(CallRow, call_id)
            if row is None:
                return None
            events = session.scalars(
                select(CallEventRow).where(CallEventRow.call_id == call_id).order_by(CallEventRow.seq, CallEventRow.id)
            )
            classifications = session.scalars(
                select(ClassificationRow)
                .where(ClassificationRow.call_id == call_id)
                .order_by(ClassificationRow.t_start, ClassificationRow.id)
            )
            return _call_record(
                row,
                events=[_event_json(e) for e in events],
                classifications=[
                    {
                        "t_start": c.t_start,
                        "t_end": c.t_end,
                        "audio_class": c.audio_class,
                        "confidence": c.confidence,
                        "features": c.features,
                    }
                    for c in classifications
                ],
            )

    def call_recordings(self, call_id: str) -> list[dict[str, Any]] | None:
        """The RECORDING_SAVED data of a call (``path``, ``seconds``, ``channel``), in order;
        None when there is no such call."""
        with self._transaction(write=False) as session:
            if session.get(CallRow, call_id) is None:
                return None
            rows = session.scalars(
                select(CallEventRow.data)
                .where(CallEventRow.call_id == call_id, CallEventRow.type == EventType.RECORDING_SAVED.value)
                .order_by(CallEventRow.seq, CallEventRow.id)
            )
            return [dict(data) for data in rows]

    def recordings_removed_at(self, call_id: str) -> datetime | None:
        """When retention deleted the call's recording files; None while they are kept (or no call)."""
        with self._transaction(write=False) as session:
            return session.scalar(select(CallRow.recordings_removed_at).where(CallRow.id == call_id))

    # ------------------------------------------------------------------ retention (app.retention)

    def retention_candidates(
        self,
        *,
        calls_before: datetime | None,
        recordings_before: datetime | None,
        after_id: str = "",
        limit: int = 200,
    ) -> list[RetentionCandidate]:
        """Finished calls that ended (or, without an end, began) before ``calls_before``, or before
        ``recordings_before`` with their recordings still kept; by id, from after ``after_id``.
        A call in any other status is live (or was, until a restart marks it failed): never listed."""
        old: list[Any] = []
        if calls_before is not None:
            old.append(_ended_before(calls_before))
        if recordings_before is not None:
            old.append(and_(_ended_before(recordings_before), CallRow.recordings_removed_at.is_(None)))
        if not old:
            return []
        query = (
            select(CallRow)
            .where(CallRow.status.in_(_FINAL_STATUS_VALUES), CallRow.id > after_id, or_(*old))
            .order_by(CallRow.id)
            .limit(limit)
        )
        with self._transaction(write=False) as session:
            rows = list(session.scalars(query))
            paths: dict[str, list[str]] = {row.id: [] for row in rows}
            saved = session.execute(
                select(CallEventRow.call_id, CallEventRow.data)
                .where(CallEventRow.call_id.in_(paths), CallEventRow.type == EventType.RECORDING_SAVED.value)
                .order_by(CallEventRow.id)
            )
            for call_id, data in saved:
                if isinstance(data, dict) and isinstance(data.get("path"), str):
                    paths[call_id].append(data["path"])
            return [
                RetentionCandidate(
                    id=row.id,
                    status=CallStatus(row.status),
                    created_at=row.created_at,
                    ended_at=row.ended_at,
                    recordings_removed_at=row.recordings_removed_at,
                    recording_paths=tuple(paths[row.id]),
                )
                for row in rows
            ]

    def delete_calls(self, call_ids: Sequence[str]) -> DeletedRows:
        """Delete finished calls with their events and classification segments, in one
        transaction. A call not (or no longer) in a final status is left alone."""
        if not call_ids:
            return DeletedRows()
        with self._transaction(write=True) as session:
            finished = list(
                session.scalars(select(CallRow.id).where(CallRow.id.in_(call_ids), CallRow.status.in_(_FINAL_STATUS_VALUES)))
            )
            if not finished:
                return DeletedRows()
            events = session.execute(delete(CallEventRow).where(CallEventRow.call_id.in_(finished))).rowcount
            segments = session.execute(delete(ClassificationRow).where(ClassificationRow.call_id.in_(finished))).rowcount
            calls = session.execute(delete(CallRow).where(CallRow.id.in_(finished))).rowcount
            return DeletedRows(calls=calls, events=events, classifications=segments)

    def mark_recordings_removed(self, call_ids: Sequence[str], at: datetime) -> int:
        """Note that these calls' recording files are deleted (their records stay). How many."""
        if not call_ids:
            return 0
        statement = (
            update(CallRow)
            .where(CallRow.id.in_(call_ids), CallRow.recordings_removed_at.is_(None))
            .values(recordings_removed_at=_as_utc(at))
        )
        with self._transaction(write=True) as session:
            return session.execute(statement).rowcount

    def list_calls(
        self,
        limit: int = 100,
        offset: int = 0,
        status: CallStatus | str | None = None,
        *,
        company: str | None = None,
        number: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[CallRecord]:
        """Newest first, without events or classifications. The filters (all of them must hold):
        ``status``; ``company``: its name contains this, whatever the case; ``number``: the number
        dialled (any spelling of it); created at or after ``since`` and before ``until``."""
        query = select(CallRow).order_by(CallRow.created_at.desc(), CallRow.id).limit(limit).offset(offset)
        with self._transaction(write=False) as session:
            conditions = _call_conditions(session, status, company, number, since, until)
            return [_call_record(row) for row in session.scalars(query.where(*conditions))]

    def count_calls(
        self,
        status: CallStatus | str | None = None,
        *,
        company: str | None = None,
        number: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many calls ``list_calls`` with the same filters pages through."""
        with self._transaction(write=False) as session:
            conditions = _call_conditions(session, status, company, number, since, until)
            return session.scalar(select(func.count()).select_from(CallRow).where(*conditions)) or 0

    def mark_unfinished_calls_failed(
        self, reason: EndReason | str = EndReason.ERROR, detail: str = "process restarted", node: str = ""
    ) -> int:
        """At start-up: give every call of this node (``HOLDSLAYER_NODE``; other hosts' calls
        sharing the database run on) left in a non-final status a final one. Returns how many.

        ``ended_at`` becomes the last moment the call is known to have been alive.
        """
        reason_value = EndReason(reason).value
        with self._transaction(write=True) as session:
            rows = list(
                session.scalars(select(CallRow).where(CallRow.status.not_in(_FINAL_STATUS_VALUES), _on_node(node)))
            )
            for row in rows:
                last_event = session.scalar(select(func.max(CallEventRow.at)).where(CallEventRow.call_id == row.id))
                known_times = [getattr(row, name) for name in _TIME_FIELDS] + [last_event]
                row.ended_at = row.ended_at or max(t for t in known_times if t is not None)
                row.status = CallStatus.FAILED.value
                row.reason = reason_value
                row.detail = detail
            return len(rows)

    # ------------------------------------------------------------------ worker processes (serve --workers N)

    def live_calls_by_worker(self, node: str = "") -> dict[int, int]:
        """Worker index -> how many of its calls are live (not in a final status), on one node."""
        query = (
            select(CallRow.worker, func.count())
            .where(CallRow.worker.is_not(None), CallRow.status.not_in(_FINAL_STATUS_VALUES), _on_node(node))
            .group_by(CallRow.worker)
        )
        with self._transaction(write=False) as session:
            return {int(worker): int(count) for worker, count in session.execute(query)}

    def live_calls(self, worker: int | None = None, node: str = "") -> list[LiveCall]:
        """The live calls, oldest first: every one, or those of worker ``worker`` of ``node``."""
        query = (
            select(CallRow.id, CallRow.status, CallRow.worker, CallRow.node)
            .where(CallRow.status.not_in(_FINAL_STATUS_VALUES))
            .order_by(CallRow.created_at, CallRow.id)
        )
        if worker is not None:
            query = query.where(CallRow.worker == worker, _on_node(node))
        with self._transaction(write=False) as session:
            return [LiveCall(id, CallStatus(status), w, n or "") for id, status, w, n in session.execute(query)]

    def worker_of(self, call_id: str) -> tuple[str, int] | None:
        """(node, worker index) of a live call; None when the call is not live or runs in no worker."""
        query = select(CallRow.node, CallRow.worker).where(
            CallRow.id == call_id, CallRow.status.not_in(_FINAL_STATUS_VALUES), CallRow.worker.is_not(None)
        )
        with self._transaction(write=False) as session:
            found = session.execute(query).first()
            return None if found is None else (found[0] or "", int(found[1]))

    def last_event_seq(self, call_id: str) -> int:
        """The highest sequence number journaled for a call (0: none)."""
        with self._transaction(write=False) as session:
            return session.scalar(select(func.max(CallEventRow.seq)).where(CallEventRow.call_id == call_id)) or 0

    def event_by_row(self, row_id: int) -> dict[str, Any] | None:
        """One journaled event in its JSON form (a live event too large for a notification)."""
        with self._transaction(write=False) as session:
            e = session.get(CallEventRow, row_id)
            return None if e is None else _event_json(e)

    def missed_events(
        self, following: Mapping[str, int], since: datetime, ended: Collection[str] = (), limit: int = 1000
    ) -> list[dict[str, Any]]:
        """The journaled events of the workers' calls that a follower of their live events
        (``app.store.live.EventFeed``) may have missed while it was not listening, from ``since``
        on, in their JSON form: of each call in ``following`` (id -> the seq of the last event it
        has of it), those numbered after that; of every other worker call that is live, or ended
        at or after ``since``, and not in ``ended`` (calls it saw end), those at or after
        ``since`` (all of them for a call that began meanwhile). Each call's in seq order, the
        oldest row first; at most ``limit`` (ask again from where they end for more)."""
        since = _as_utc(since)
        known = set(following) | set(ended)
        # The live calls and those ended meanwhile only: as many as the outage saw, whatever the
        # history (both columns are indexed).
        others_query = (
            select(CallRow.id)
            .where(
                CallRow.worker.is_not(None),
                or_(CallRow.status.not_in(_FINAL_STATUS_VALUES), CallRow.ended_at >= since),
            )
            .order_by(CallRow.created_at, CallRow.id)
        )
        rows: list[CallEventRow] = []
        with self._transaction(write=False) as session:
            others = [call_id for call_id in session.scalars(others_query) if call_id not in known]
            wanted = [and_(CallEventRow.call_id == c, CallEventRow.seq > seq) for c, seq in following.items()]
            wanted += [and_(CallEventRow.call_id == c, CallEventRow.at >= since) for c in others]
            # A query per call, through the call_id index: no statement grows with the calls.
            for condition in wanted:
                if len(rows) >= limit:
                    break
                query = select(CallEventRow).where(condition).order_by(CallEventRow.seq, CallEventRow.id)
                rows.extend(session.scalars(query.limit(limit - len(rows))))
        # Row order is commit order across calls and seq order within one (a call's events are
        # written by the one writer of its process, in order).
        rows.sort(key=lambda e: e.id)
        return [_event_json(e) for e in rows]

    # ------------------------------------------------------------------ recordings of a company's line

    def line_recordings(self, number: str) -> list[bytes]:
        """Fingerprints of the recordings heard on calls to this number, oldest first."""
        query = (
            select(LineRecordingRow.fingerprint)
            .where(LineRecordingRow.phone_number == normalize_phone_number(number))
            .order_by(LineRecordingRow.position)
        )
        with self._transaction(write=False) as session:
            return list(session.scalars(query))

    def save_line_recordings(self, number: str, fingerprints: Sequence[bytes]) -> None:
        """Replace what is known of this number's recordings (the call's memory holds the old ones
        too), keeping the newest ``MAX_LINE_RECORDINGS``."""
        phone = normalize_phone_number(number)
        fingerprints = list(fingerprints)[-MAX_LINE_RECORDINGS:]
        now = utc_now()
        with self._transaction(write=True) as session:
            session.execute(delete(LineRecordingRow).where(LineRecordingRow.phone_number == phone))
            session.add_all(
                LineRecordingRow(phone_number=phone, position=i, fingerprint=data, updated_at=now)
                for i, data in enumerate(fingerprints)
            )

    # ------------------------------------------------------------------ the user's devices

    def list_devices(self) -> list[Device]:
        """Every device, by name (in code point order, the same on every backend)."""
        with self._transaction(write=False) as session:
            rows = list(session.scalars(select(DeviceRow)))
        return sorted((_device(row) for row in rows), key=lambda device: device.name)

    def get_device(self, name: str) -> Device | None:
        if name_problem(name) is not None:
            return None  # never stored (and not sent: PostgreSQL text cannot even hold a NUL)
        with self._transaction(write=False) as session:
            row = session.get(DeviceRow, name)
            return None if row is None else _device(row)

    def create_device(self, name: str, dial_string: str, *, label: str = "", default: bool = False) -> Device:
        """A new device; the first one is the default whatever ``default`` says. ``InvalidDevice``
        for a bad field, ``DeviceConflict`` for a name taken."""
        check_device(name, dial_string, label)
        with self._device_transaction() as session:
            if session.get(DeviceRow, name) is not None:
                raise DeviceConflict(f"a device named {name!r} exists; PUT /api/devices/{name} changes it", field="name")
            first = session.scalar(select(func.count()).select_from(DeviceRow)) == 0
            if default and not first:
                _clear_default(session)
            now = utc_now()
            row = DeviceRow(
                name=name, dial_string=dial_string, label=label, is_default=default or first, created_at=now, updated_at=now
            )
            session.add(row)
            return _device(row)

    def update_device(
        self, name: str, *, dial_string: str | None = None, label: str | None = None, default: bool | None = None
    ) -> Device:
        """Change what is given (None: unchanged). ``default=True`` makes it the default device;
        ``default=False`` on the default device is a ``DeviceConflict``: another must become it."""
        if name_problem(name) is not None:
            raise UnknownDevice(f"no device named {name!r}")
        check_device(name, dial_string, label)
        with self._device_transaction() as session:
            row = _device_row(session, name)
            if default is False and row.is_default:
                raise DeviceConflict(
                    f"{name!r} is the default device: make another device the default instead", field="default"
                )
            if default and not row.is_default:
                _clear_default(session)
                row.is_default = True
            if dial_string is not None:
                row.dial_string = dial_string
            if label is not None:
                row.label = label
            row.updated_at = utc_now()
            return _device(row)

    def delete_device(self, name: str) -> None:
        """``UnknownDevice`` if there is none; ``DeviceConflict`` for the default or the last device
        (a call always has a device to ring)."""
        if name_problem(name) is not None:
            raise UnknownDevice(f"no device named {name!r}")
        with self._device_transaction() as session:
            row = _device_row(session, name)
            if session.scalar(select(func.count()).select_from(DeviceRow)) == 1:
                raise DeviceConflict(f"{name!r} is the only device: calls need one to ring; add another first")
            if row.is_default:
                raise DeviceConflict(f"{name!r} is the default device: make another device the default first")
            session.delete(row)

    def apply_device_settings(self, devices: Mapping[str, str], default: str) -> DeviceChanges:
        """Bring the settings' devices (``user_devices``, ``default_transfer_device``) into the store.

        The first time, all of them. Later, only what changed in the settings since they were last
        applied: a device added or given another dial string there is stored, one removed there is
        deleted (unless it is the default or the last device), a new default there becomes the
        default. What the API changed stays as long as the settings do not change.
        """
        for name, dial_string in devices.items():
            check_device(name, dial_string)
        if default not in devices:
            raise DeviceConflict(f"the default device {default!r} is not one of the devices", field="default")
        wanted = {"devices": dict(devices), "default": default}
        changes = DeviceChanges()
        with self._device_transaction() as session:
            applied = session.get(AppliedSettingRow, "devices")
            if applied is not None and applied.value == wanted:
                return changes
            before: dict[str, Any] = applied.value if applied is not None else {"devices": {}, "default": None}
            rows = {row.name: row for row in session.scalars(select(DeviceRow))}
            now = utc_now()

            def add(name: str) -> DeviceRow:
                rows[name] = DeviceRow(
                    name=name, dial_string=devices[name], label="", is_default=False, created_at=now, updated_at=now
                )
                session.add(rows[name])
                changes.added.append(name)
                return rows[name]

            for name, dial_string in devices.items():
                if before["devices"].get(name) == dial_string:
                    continue  # as the settings said last time: what the API made of it stands
                row = rows.get(name)
                if row is None:
                    add(name)
                elif row.dial_string != dial_string:
                    row.dial_string, row.updated_at = dial_string, now
                    changes.changed.append(name)
            session.flush()
            if before["default"] != default or not any(row.is_default for row in rows.values()):
                # Deleted through the API while the settings had it; now they make it the default.
                row = rows.get(default) or add(default)
                if not row.is_default:
                    _clear_default(session)
                    row.is_default, row.updated_at = True, now
                    changes.default = default
            for name in before["devices"]:
                row = rows.get(name)
                if name in devices or row is None:
                    continue
                if row.is_default or len(rows) == 1:
                    changes.kept.append(name)
                    continue
                session.delete(row)
                del rows[name]
                changes.removed.append(name)
            if applied is None:
                session.add(AppliedSettingRow(key="devices", value=wanted, applied_at=now))
            else:
                applied.value, applied.applied_at = wanted, now
        return changes

    @contextmanager
    def _device_transaction(self) -> Iterator[Session]:
        try:
            with self._transaction(write=True, exclusive=True) as session:
                yield session
        except IntegrityError:
            # Two changes at the same moment (PostgreSQL): a name taken, or a second default.
            raise DeviceConflict("the devices were changed by another request at the same moment; try again") from None

    # ------------------------------------------------------------------ call flows

    def upsert_flow(self, flow: CallFlow) -> None:
        """Store the flow as given (insert or replace); a stored definition is no longer stale."""
        with self._transaction(write=True, exclusive=True) as session:
            _put_flow(session, flow)

    def get_flow(self, flow_id: str) -> CallFlow | None:
        with self._transaction(write=False) as session:
            row = session.get(CallFlowRow, flow_id)
            return None if row is None else _flow(row)

    def find_flow_for_number(self, number: str) -> CallFlow | None:
        """The usable flow for a number: not stale, highest version (then most recently updated)."""
        query = (
            select(CallFlowRow)
            .where(CallFlowRow.phone_number == normalize_phone_number(number), CallFlowRow.stale.is_(False))
            .order_by(CallFlowRow.version.desc(), CallFlowRow.updated_at.desc())
            .limit(1)
        )
        with self._transaction(write=False) as session:
            row = session.scalars(query).first()
            return None if row is None else _flow(row)

    def list_flows(self, company: str | None = None, tag: str | None = None, stale: bool | None = None) -> list[CallFlow]:
        """Flows ordered by company, name and id. ``company`` matches case-insensitively; ``stale``
        None lists all, True only the stale, False only the usable ones."""
        query = select(CallFlowRow)
        if stale is not None:
            query = query.where(CallFlowRow.stale.is_(stale))
        with self._transaction(write=False) as session:
            rows = list(session.scalars(query))
        # Filtered and sorted here (a handful of flows), the same on every backend whatever its
        # collation or lower(): tags are a JSON list, company names any Unicode.
        wanted = None if company is None else company.casefold()
        rows = [r for r in rows if (wanted is None or r.company.casefold() == wanted) and (tag is None or tag in r.tags)]
        return [_flow(row) for row in sorted(rows, key=lambda r: (r.company, r.name, r.id))]

    def delete_flow(self, flow_id: str) -> bool:
        with self._transaction(write=True) as session:
            row = session.get(CallFlowRow, flow_id)
            if row is None:
                return False
            session.delete(row)
            return True

    def record_flow_outcome(self, flow_id: str, success: bool) -> bool:
        """Count one call that followed the flow. False if the flow no longer exists."""
        column = CallFlowRow.success_count if success else CallFlowRow.fail_count
        statement = update(CallFlowRow).where(CallFlowRow.id == flow_id).values({column: column + 1})
        with self._transaction(write=True) as session:
            return session.execute(statement).rowcount > 0

    def set_flow_stale(self, flow_id: str, stale: bool = True) -> bool:
        """A stale flow (the menu changed under it) is kept but no longer chosen for calls."""
        statement = update(CallFlowRow).where(CallFlowRow.id == flow_id).values(stale=stale)
        with self._transaction(write=True) as session:
            return session.execute(statement).rowcount > 0

    def import_flows_dir(self, directory: str | Path) -> tuple[int, list[FlowFileError]]:
        """Load the flow files of ``directory``. A file's flow is stored when it is new or has a
        higher version than the stored one. Returns (flows stored, errors of unusable files)."""
        flows, errors = load_flows_dir(directory)
        imported = 0
        with self._transaction(write=True, exclusive=True) as session:
            for flow in flows:
                stored = session.get(CallFlowRow, flow.id)
                if stored is None or flow.version > stored.version:
                    _put_flow(session, flow)
                    imported += 1
        return imported, errors


# ---------------------------------------------------------------------------- helpers


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def _event_json(e: CallEventRow) -> dict[str, Any]:
    """A journaled event in the JSON form of ``CallEvent.to_dict``."""
    return {"type": e.type, "call_id": e.call_id, "data": e.data, "at": _iso(e.at), "seq": e.seq}


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone")
    return moment.astimezone(timezone.utc)


def _column_value(name: str, value: Any) -> Any:
    if value is None:
        if name in _REQUIRED_FIELDS:
            raise ValueError(f"call field {name} cannot be empty")
        return None
    if name == "status":
        return CallStatus(value).value
    if name == "reason":
        return EndReason(value).value
    if name in _TIME_FIELDS:
        return _as_utc(value)
    if name == "hold_seconds":
        return float(value)
    return str(value)


def _ended_before(moment: datetime) -> Any:
    """The call ended before ``moment`` (one that never got an end: began before it). Two
    conditions, not coalesce(), so that both can use their column's index."""
    return or_(CallRow.ended_at < moment, and_(CallRow.ended_at.is_(None), CallRow.created_at < moment))


def _call_conditions(
    session: Session,
    status: CallStatus | str | None,
    company: str | None,
    number: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    """The WHERE of ``list_calls``/``count_calls``. The company's name is matched here, not in
    SQL: lower() and ILIKE fold only ASCII on SQLite, all of Unicode on PostgreSQL; the distinct
    names are few (one per company called), and the calls are then picked by the exact names."""
    conditions: list[Any] = []
    if status is not None:
        conditions.append(CallRow.status == CallStatus(status).value)
    if number is not None:
        conditions.append(CallRow.number == normalize_phone_number(number))
    if since is not None:
        conditions.append(CallRow.created_at >= _as_utc(since))
    if until is not None:
        conditions.append(CallRow.created_at < _as_utc(until))
    if company is not None:
        wanted = company.casefold()
        names = session.scalars(select(CallRow.company).where(CallRow.company.is_not(None)).distinct())
        conditions.append(CallRow.company.in_([name for name in names if wanted in name.casefold()]))
    return conditions


def _call_row(session: Session, call_id: str) -> CallRow:
    row = session.get(CallRow, call_id)
    if row is None:
        raise UnknownCallError(f"no call {call_id!r}")
    return row


def _on_node(node: str) -> Any:
    """The calls of one node; the calls of the only installation have none."""
    return func.coalesce(CallRow.node, "") == node


def _notify_live(session: Session, live: list[tuple[dict[str, Any], CallEventRow | None]]) -> None:
    """Send the events on the live channel; delivered when (and only if) the transaction commits,
    in commit order. An event too large for a notification goes by its row id."""
    if any(row is not None for _, row in live):
        session.flush()  # the rows' ids
    payloads = pack_events([(event, None if row is None else row.id) for event, row in live])
    session.execute(text("SELECT pg_notify(:channel, :payload)"), [{"channel": EVENTS_CHANNEL, "payload": p} for p in payloads])


def _call_record(row: CallRow, **loaded: Any) -> CallRecord:
    return CallRecord(
        id=row.id,
        number=row.number,
        intent=row.intent,
        device=row.device,
        flow_id=row.flow_id,
        company=row.company,
        status=CallStatus(row.status),
        reason=None if row.reason is None else EndReason(row.reason),
        detail=row.detail,
        created_at=row.created_at,
        answered_at=row.answered_at,
        hold_started_at=row.hold_started_at,
        human_detected_at=row.human_detected_at,
        connected_at=row.connected_at,
        ended_at=row.ended_at,
        recording_path=row.recording_path,
        hold_seconds=row.hold_seconds,
        recordings_removed_at=row.recordings_removed_at,
        worker=row.worker,
        node=row.node,
        **loaded,
    )


# A status reached stamps its time on the call (the event's own time).
_STATUS_TIMES = {
    CallStatus.NAVIGATING.value: "answered_at",
    CallStatus.ON_HOLD.value: "hold_started_at",
    CallStatus.HUMAN_DETECTED.value: "human_detected_at",
    CallStatus.CONNECTED.value: "connected_at",
}


def call_row_changes(event: CallEvent) -> dict[str, Any]:
    """What an event changes in its call's row: the row follows from the events alone."""
    match event.data:
        case CallStatusChanged(status=status):
            changes: dict[str, Any] = {"status": status}
            if status in _STATUS_TIMES:
                changes[_STATUS_TIMES[status]] = event.at
            return changes
        case HumanDetected(hold_seconds=hold_seconds):
            return {"hold_seconds": hold_seconds}
        case RecordingSaved(path=path, channel=RecordingChannel.FAR_END):
            return {"recording_path": path}  # the others are found through their events
        case CallEnded(status=status, reason=reason, detail=detail):
            return {"status": status, "reason": reason, "detail": detail, "ended_at": event.at}
    return {}


SEGMENT_GAP_SECONDS = 0.05  # windows closer than this (they abut: 0.0) continue one segment


class _Segments:
    """Classification windows folded into segments as they are written: a window of the class of
    the call's last segment that starts inside it or where it ends lengthens it to the window's
    end (its confidence the mean over its windows, their count in ``features["windows"]``); any
    other starts a new segment, from where the last one ends if the window overlaps it. The
    detector's windows overlap (3 s every 0.5 s): segments tile the call's timeline all the same."""

    def __init__(self, tails: dict[str, ClassificationRow]) -> None:
        self._committed = tails  # last segments as an earlier transaction left them (detached rows)
        self.tails: dict[str, ClassificationRow | None] = {}  # as this transaction leaves them

    def add(self, session: Session, call_id: str, window: AudioClassified) -> None:
        if call_id not in self.tails:
            committed = self._committed.get(call_id)
            if committed is not None:
                session.add(committed)  # attached again as it was: changed, it is one UPDATE by id
                self.tails[call_id] = committed
            else:
                self.tails[call_id] = session.scalars(
                    select(ClassificationRow)
                    .where(ClassificationRow.call_id == call_id)
                    .order_by(ClassificationRow.t_end.desc(), ClassificationRow.id.desc())
                    .limit(1)
                ).first()
        last = self.tails[call_id]
        follows = last is not None and window.t_start <= last.t_end + SEGMENT_GAP_SECONDS and window.t_end >= last.t_end
        if follows and last.audio_class == window.audio_class:
            windows = int((last.features or {}).get("windows", 1))
            last.confidence = round((last.confidence * windows + window.confidence) / (windows + 1), 4)
            last.t_end = window.t_end
            last.features = {"windows": windows + 1}
            return
        row = ClassificationRow(
            call_id=call_id,
            t_start=max(window.t_start, last.t_end) if follows else window.t_start,
            t_end=window.t_end,
            audio_class=window.audio_class,
            confidence=window.confidence,
            features={"windows": 1},
        )
        session.add(row)
        self.tails[call_id] = row


def _device(row: DeviceRow) -> Device:
    return Device(name=row.name, dial_string=row.dial_string, label=row.label, is_default=row.is_default)


def _device_row(session: Session, name: str) -> DeviceRow:
    row = session.get(DeviceRow, name)
    if row is None:
        raise UnknownDevice(f"no device named {name!r}")
    return row


def _clear_default(session: Session) -> None:
    """No device is the default, until the caller makes one so: a statement of its own before
    that, so that two defaults never exist even for one statement (the unique index)."""
    session.execute(update(DeviceRow).where(DeviceRow.is_default.is_(True)).values(is_default=False))


def _put_flow(session: Session, flow: CallFlow) -> None:
    row = session.get(CallFlowRow, flow.id)
    if row is None:
        row = CallFlowRow(id=flow.id)
        session.add(row)
    row.name = flow.name
    row.company = flow.company
    row.phone_number = flow.phone_number
    row.description = flow.description
    row.steps = [step.model_dump(mode="json") for step in flow.steps]
    row.version = flow.version
    row.tags = list(flow.tags)
    row.success_count = flow.success_count
    row.fail_count = flow.fail_count
    row.created_at = flow.created_at
    row.updated_at = flow.updated_at
    row.stale = False


def _flow(row: CallFlowRow) -> CallFlow:
    return CallFlow.model_validate(
        {
            "id": row.id,
            "name": row.name,
            "company": row.company,
            "phone_number": row.phone_number,
            "description": row.description,
            "steps": row.steps,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "version": row.version,
            "tags": row.tags,
            "success_count": row.success_count,
            "fail_count": row.fail_count,
        }
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def _json_safe(value: Any) -> Any:
    """Event data as plain JSON: one odd value (an enum, a numpy number) must not lose the event."""
    return json.loads(json.dumps(value, default=_plain))
