"""Retention: recordings and call records are kept for a configured time, then removed.

Two limits, in days after a call ended (``HOLDSLAYER_RETAIN_RECORDINGS_DAYS``,
``HOLDSLAYER_RETAIN_CALLS_DAYS``; none keeps forever):

- past the recordings limit the call's WAV files are deleted and the call is marked
  (``recordings_removed_at``); its record stays, and the API lists its recordings as removed;
- past the calls limit the call goes with everything it has: events (the transcript is in them),
  classification segments, and any recording file left.

What is old is decided here without I/O (``RetentionPolicy``, ``verdict``, ``files_of``); the
``Sweeper`` does the I/O: candidates from the store in batches, files first, then the rows of a
batch in one transaction, so that a file that cannot be deleted keeps its call (and is tried again
at the next sweep) rather than being left on disk with nothing pointing at it. A call that is not
in a final status is live and never touched. Call flows and the fingerprints of a company's
announcements (``line_recordings``) are knowledge of the company, not call data: they stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from app.calls.models import FINAL_STATUSES, RecordingChannel
from app.calls.recordings import recording_path
from app.clock import Clock, MonotonicClock, utc_now
from app.config import Settings
from app.store.repository import RetentionCandidate, Store

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 3600.0
BATCH_SIZE = 200


# ---------------------------------------------------------------------------- what is old (pure)


@dataclass(frozen=True)
class Cutoffs:
    """Calls that ended before ``calls_before`` are deleted; recordings of calls that ended before
    ``recordings_before`` are. None: that limit keeps forever."""

    calls_before: datetime | None
    recordings_before: datetime | None


@dataclass(frozen=True)
class RetentionPolicy:
    calls_days: int | None  # None: keep forever
    recordings_days: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(calls_days=settings.retain_calls_days, recordings_days=settings.retain_recordings_days)

    @property
    def keeps_everything(self) -> bool:
        return self.calls_days is None and self.recordings_days is None

    def cutoffs(self, now: datetime) -> Cutoffs:
        if now.tzinfo is None:
            raise ValueError(f"naive datetime {now!r}: give a timezone-aware time")
        return Cutoffs(
            calls_before=None if self.calls_days is None else now - timedelta(days=self.calls_days),
            recordings_before=None if self.recordings_days is None else now - timedelta(days=self.recordings_days),
        )

    def describe(self) -> str:
        def days(value: int | None) -> str:
            return "forever" if value is None else f"{value} day{'s' if value != 1 else ''}"

        return f"calls kept {days(self.calls_days)}, recordings kept {days(self.recordings_days)}"


class Verdict(enum.Enum):
    KEEP = "keep"
    REMOVE_RECORDINGS = "remove_recordings"  # the files go, the record stays
    DELETE_CALL = "delete_call"  # the record and any file left


def verdict(call: RetentionCandidate, cutoffs: Cutoffs) -> Verdict:
    """What retention does with ``call`` now. A call not in a final status is live: kept."""
    if call.status not in FINAL_STATUSES:
        return Verdict.KEEP
    ended = call.ended_at or call.created_at  # a final call without an end: it began before then
    if cutoffs.calls_before is not None and ended < cutoffs.calls_before:
        return Verdict.DELETE_CALL
    if cutoffs.recordings_before is not None and ended < cutoffs.recordings_before and call.recordings_removed_at is None:
        return Verdict.REMOVE_RECORDINGS
    return Verdict.KEEP


def files_of(call: RetentionCandidate, recordings_dir: Path) -> list[Path]:
    """Every file that may hold the call's audio: those its RECORDING_SAVED events name, and the
    names the recorder gives in the recordings directory (a call cut short by a crash has files
    but no events; a fetch of the bridged one cut short leaves its ``.part``). A path an event
    names is taken only when its file name begins with the call's id: nothing else is ever deleted."""
    paths = [Path(p) for p in call.recording_paths if Path(p).name.startswith(call.id)]
    for channel in RecordingChannel:
        paths.append(recording_path(recordings_dir, call.id, channel))
    bridged = recording_path(recordings_dir, call.id, RecordingChannel.BRIDGED)
    paths.append(bridged.with_name(bridged.name + ".part"))
    return list(dict.fromkeys(paths))


# ---------------------------------------------------------------------------- the sweep (I/O)


@dataclass
class SweepReport:
    """What one sweep removed (or, in a dry run, would remove)."""

    dry_run: bool = False
    calls_deleted: int = 0
    events_deleted: int = 0
    classifications_deleted: int = 0
    recordings_removed: int = 0  # calls whose recordings went (their records stay)
    files_deleted: int = 0
    bytes_freed: int = 0
    failures: int = 0  # files or batches that could not be deleted: tried again next sweep
    problems: list[str] = field(default_factory=list)

    @property
    def removed_anything(self) -> bool:
        return bool(self.calls_deleted or self.recordings_removed or self.files_deleted)

    def summary(self) -> str:
        if self.dry_run:
            text = f"would delete {self.calls_deleted} calls"
        else:
            text = (
                f"deleted {self.calls_deleted} calls ({self.events_deleted} events, "
                f"{self.classifications_deleted} classification segments)"
            )
        text += (
            f" and the recordings of {self.recordings_removed} more; "
            f"{self.files_deleted} files, {self.bytes_freed / 1e6:.1f} MB"
        )
        if self.failures:
            text += f"; {self.failures} failures (tried again next sweep)"
        return text


class Sweeper:
    """Applies a ``RetentionPolicy`` to a store and its recordings directory: ``sweep`` once (any
    thread), or ``start`` a task that sweeps now and then every ``interval`` seconds."""

    def __init__(
        self,
        store: Store,
        recordings_dir: Path,
        policy: RetentionPolicy,
        *,
        wall: Callable[[], datetime] = utc_now,
        clock: Clock | None = None,
        interval: float = SWEEP_INTERVAL_SECONDS,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.store = store
        self.recordings_dir = Path(recordings_dir)
        self.policy = policy
        self.wall = wall
        self.clock = clock or MonotonicClock()
        self.interval = interval
        self.batch_size = batch_size
        self.totals: Counter[str] = Counter()  # over every sweep of this process
        self.sweeps = 0
        self._stopping = threading.Event()
        self._sweeping = False
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ one sweep

    def sweep(self, *, dry_run: bool = False) -> SweepReport:
        """Remove what the policy says is old. Never raises for a file or a batch that cannot be
        deleted: it is counted in ``failures`` and stays for the next sweep."""
        report = SweepReport(dry_run=dry_run)
        if self.policy.keeps_everything:
            return report
        now = self.wall()
        cutoffs = self.policy.cutoffs(now)
        after = ""
        while not self._stopping.is_set():
            batch = self.store.retention_candidates(
                calls_before=cutoffs.calls_before,
                recordings_before=cutoffs.recordings_before,
                after_id=after,
                limit=self.batch_size,
            )
            if not batch:
                break
            after = batch[-1].id
            self._sweep_batch(batch, cutoffs, now, report)
        return report

    def _sweep_batch(self, batch: list[RetentionCandidate], cutoffs: Cutoffs, now: datetime, report: SweepReport) -> None:
        delete: list[str] = []
        recordings_gone: list[str] = []
        for call in batch:
            decision = verdict(call, cutoffs)
            if decision is Verdict.KEEP:
                continue
            if not self._delete_files(call, report):
                continue  # its record stays until its files are gone
            (delete if decision is Verdict.DELETE_CALL else recordings_gone).append(call.id)
        if report.dry_run:
            report.calls_deleted += len(delete)
            report.recordings_removed += len(recordings_gone)
            return
        try:
            rows = self.store.delete_calls(delete)
            report.calls_deleted += rows.calls
            report.events_deleted += rows.events
            report.classifications_deleted += rows.classifications
            report.recordings_removed += self.store.mark_recordings_removed(recordings_gone, now)
        except Exception as exc:  # noqa: BLE001 - the database may be busy or down: next sweep
            self._failed(report, f"deleting the rows of {len(delete) + len(recordings_gone)} calls: {exc}")

    def _delete_files(self, call: RetentionCandidate, report: SweepReport) -> bool:
        """Delete the call's files (a dry run only counts them); False if one of them stays."""
        complete = True
        for path in files_of(call, self.recordings_dir):
            try:
                size = path.stat().st_size
                if not report.dry_run:
                    path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                complete = False
                self._failed(report, f"call {call.id}: cannot delete {path}: {exc}")
                continue
            report.files_deleted += 1
            report.bytes_freed += size
            if not report.dry_run:
                self._remove_empty_parents(path.parent)
        return complete

    def _remove_empty_parents(self, directory: Path) -> None:
        """Directories under the recordings directory that its deleted files leave empty (never
        the recordings directory itself, nothing outside it)."""
        root = self.recordings_dir.resolve()
        current = directory.resolve()
        while current != root and current.is_relative_to(root):
            try:
                current.rmdir()
            except OSError:
                return  # not empty (or not ours to remove): what is left stays
            current = current.parent

    def _failed(self, report: SweepReport, problem: str) -> None:
        report.failures += 1
        report.problems.append(problem)
        log.warning("retention: %s", problem)

    # ------------------------------------------------------------------ in the background

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Sweep now, then every ``interval`` seconds, until ``stop``."""
        if self._task is None and not self.policy.keeps_everything:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="retention")
            log.info("retention: %s; sweeping every %.0f s", self.policy.describe(), self.interval)

    async def stop(self) -> None:
        """A sweep under way finishes its batch (its thread holds the store); a wait ends at once."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        if not self._sweeping:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._sweeping = True
            try:
                await asyncio.to_thread(self.sweep_and_log)
            finally:
                self._sweeping = False
            if self._stopping.is_set():
                return
            await self.clock.sleep(self.interval)

    def sweep_and_log(self) -> SweepReport:
        """One sweep that never raises: whatever goes wrong is logged and counted, and the next
        sweep tries again."""
        try:
            report = self.sweep()
        except Exception as exc:  # noqa: BLE001 - the app goes on; so does the next sweep
            log.exception("retention: the sweep failed")
            report = SweepReport(failures=1, problems=[f"the sweep failed: {exc}"])
        self.sweeps += 1
        self._count(report)
        if report.removed_anything or report.failures:
            log.info("retention: %s", report.summary())
        return report

    def _count(self, report: SweepReport) -> None:
        for name in _TOTALS:
            self.totals[name] += getattr(report, name)


_TOTALS: Iterable[str] = (
    "calls_deleted",
    "events_deleted",
    "classifications_deleted",
    "recordings_removed",
    "files_deleted",
    "bytes_freed",
    "failures",
)
