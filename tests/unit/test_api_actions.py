"""The pure parts of what REST and MCP share: hold time so far, the hold clock, DTMF keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.api.actions import DTMF_KEYS, hold_seconds_so_far
from app.api.mcp import format_hold
from app.calls.models import CallStatus
from app.store.repository import CallRecord

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)


def _record(**fields) -> CallRecord:
    base = dict(
        id="c1", number="5550001", intent="", device="sip_phone", flow_id=None, company=None,
        status=CallStatus.ON_HOLD, reason=None, detail=None, created_at=T0, answered_at=None,
        hold_started_at=None, human_detected_at=None, connected_at=None, ended_at=None,
        recording_path=None, hold_seconds=None,
    )  # fmt: skip
    return CallRecord(**(base | fields))


def test_hold_time_runs_until_a_person_the_end_or_now():
    now = T0 + timedelta(seconds=100)
    assert hold_seconds_so_far(_record(), now) is None, "never on hold"
    assert hold_seconds_so_far(_record(hold_started_at=T0 + timedelta(seconds=10)), now) == 90.0
    person = _record(hold_started_at=T0, human_detected_at=T0 + timedelta(seconds=42))
    assert hold_seconds_so_far(person, now) == 42.0
    assert hold_seconds_so_far(_record(hold_started_at=T0, ended_at=T0 + timedelta(seconds=7)), now) == 7.0
    assert hold_seconds_so_far(_record(hold_started_at=T0, hold_seconds=41.5), now) == 41.5, "the detector's own count"


def test_the_hold_clock_and_the_keys_a_person_may_press():
    assert [format_hold(s) for s in (0, 59.9, 60, 3725)] == ["0:00", "0:59", "1:00", "62:05"]
    assert all(DTMF_KEYS.match(d) for d in ("1", "0#", "*9A", "1" * 32))
    assert not any(DTMF_KEYS.match(d) for d in ("", "1x", "w1", "1" * 33))
