"""app/analytics.py over hand-built calls: the time to a person runs from the call's start to the
person found (ringing, menus and hold), the hold time stays the hold alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from app.analytics import analytics, summarize, time_to_person

UTC = timezone.utc
PARIS = timezone(timedelta(hours=1))


@dataclass
class Call:
    number: str
    company: str | None
    status: str
    created_at: datetime
    human_detected_at: datetime | None = None
    hold_seconds: float | None = None


def call(company: str | None, start: datetime, *, menus: float = 0.0, hold: float | None = None, person: bool = True,
         status: str = "completed", number: str = "8005550100") -> Call:  # fmt: skip
    """A call whose menus took ``menus`` s before a hold of ``hold`` s, a person found at its end."""
    found = start + timedelta(seconds=menus + (hold or 0.0)) if person else None
    return Call(number, company, status, start, found, hold)


def test_the_time_to_a_person_counts_the_menus_before_the_hold():
    start = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
    assert time_to_person(call("Acme", start, menus=45.0, hold=120.0)) == 165.0
    assert time_to_person(call("Acme", start, menus=45.0, hold=120.0, person=False, status="failed")) is None
    # The person answered straight away: no hold at all, still a time to them.
    assert time_to_person(call("Acme", start, menus=20.0)) == 20.0


def test_by_company_hold_and_time_to_person_differ():
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    calls = [
        call("Acme", start, menus=60.0, hold=300.0),
        call("Acme", start, menus=100.0, hold=900.0),
        call("Acme", start, menus=30.0, hold=1500.0, person=False, status="failed"),  # ended on hold
        call("Globex", start, menus=10.0, hold=0.0),
        call("Globex", start, menus=5.0, status="cancelled", person=False),  # hung up in the menu
        call("Globex", start, menus=5.0, hold=60.0, status="on_hold", person=False),  # still going: not counted
    ]
    body = analytics(calls)
    acme, globex = body["by_company"]
    assert acme["company"] == "Acme" and globex["company"] == "Globex"
    assert (acme["calls"], acme["succeeded"], acme["success_rate"]) == (3, 2, 0.667)
    assert (acme["hold_median_seconds"], acme["hold_p90_seconds"]) == (900.0, 1380.0)
    # 360 s and 1000 s from the start to the person: not the holds' 300 s and 900 s.
    assert (acme["time_to_person_median_seconds"], acme["time_to_person_p90_seconds"]) == (680.0, 936.0)
    assert (globex["calls"], globex["succeeded"], globex["success_rate"]) == (2, 1, 0.5)
    assert (globex["hold_median_seconds"], globex["time_to_person_median_seconds"]) == (0.0, 10.0)
    overall = body["overall"]
    assert overall["calls"] == 5 and overall["time_to_person_median_seconds"] == 360.0


def test_by_hour_of_the_calls_start_in_utc():
    # 23:50 in Paris is 22:50 UTC: the call counts in hour 22, whatever offset its time carries.
    late = datetime(2026, 5, 4, 23, 50, tzinfo=PARIS)
    calls = [
        call("Acme", late, menus=20.0, hold=600.0),  # the person came at 00:01 UTC: still hour 22
        call("Acme", datetime(2026, 5, 5, 8, 15, tzinfo=UTC), menus=40.0, hold=60.0),
        call("Acme", datetime(2026, 5, 6, 8, 59, tzinfo=UTC), menus=40.0, hold=120.0),
    ]
    body = analytics(calls)
    assert body["hour_timezone"] == "UTC"
    hours = {h["hour"]: h for h in body["by_hour_utc"]}
    assert list(hours) == [8, 22]
    assert (hours[22]["calls"], hours[22]["hold_median_seconds"], hours[22]["time_to_person_median_seconds"]) == (1, 600.0, 620.0)
    assert (hours[8]["calls"], hours[8]["hold_median_seconds"], hours[8]["time_to_person_median_seconds"]) == (2, 90.0, 130.0)


def test_nothing_to_measure_is_none():
    empty = summarize([])
    assert (empty.calls, empty.success_rate, empty.hold_median_seconds, empty.time_to_person_p90_seconds) == (0, None, None, None)
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    busy = summarize([call(None, start, person=False, status="failed")])
    assert (busy.calls, busy.success_rate, busy.hold_p90_seconds, busy.time_to_person_median_seconds) == (1, 0.0, None, None)
