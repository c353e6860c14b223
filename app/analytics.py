"""What the user's calls add up to: pure, over stored call records.

Per company and overall: how many calls, how many reached a person and got the user through
(success), how long the hold was (median and 90th percentile), and how long until a person
answered: from the call's start (the request, ``created_at``) to the moment the detector found
the person (``human_detected_at``), so the ringing and the menus count as well as the hold. The
same by hour of the day the call was placed, in UTC (``HOUR_TIMEZONE``; the settings name no
timezone, the dashboard shows local hours), to show when to call.
Only finished calls count; a call without a company is counted under its number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np

_FINISHED = {"completed", "failed", "cancelled"}
HOUR_TIMEZONE = "UTC"  # of ``by_hour_utc``


class CallFacts(Protocol):
    number: str
    company: str | None
    status: Any  # CallStatus or its value
    created_at: datetime
    human_detected_at: datetime | None
    hold_seconds: float | None


@dataclass(frozen=True)
class Summary:
    calls: int
    succeeded: int
    success_rate: float | None
    hold_median_seconds: float | None
    hold_p90_seconds: float | None
    time_to_person_median_seconds: float | None
    time_to_person_p90_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def summarize(calls: list[CallFacts]) -> Summary:
    held = [c.hold_seconds for c in calls if c.hold_seconds is not None]
    to_person = [seconds for seconds in map(time_to_person, calls) if seconds is not None]
    succeeded = sum(1 for c in calls if _status(c) == "completed")
    return Summary(
        calls=len(calls),
        succeeded=succeeded,
        success_rate=round(succeeded / len(calls), 3) if calls else None,
        hold_median_seconds=_percentile(held, 50),
        hold_p90_seconds=_percentile(held, 90),
        time_to_person_median_seconds=_percentile(to_person, 50),
        time_to_person_p90_seconds=_percentile(to_person, 90),
    )


def time_to_person(call: CallFacts) -> float | None:
    """Seconds from the call's start to the person found; None when none was."""
    if call.human_detected_at is None:
        return None
    seconds = (call.human_detected_at - call.created_at).total_seconds()
    return seconds if seconds >= 0 else None


def analytics(records: Iterable[CallFacts]) -> dict[str, Any]:
    finished = [r for r in records if _status(r) in _FINISHED]
    by_company: dict[str, list[CallFacts]] = defaultdict(list)
    by_hour: dict[int, list[CallFacts]] = defaultdict(list)
    for record in finished:
        by_company[record.company or record.number].append(record)
        by_hour[_utc_hour(record.created_at)].append(record)
    return {
        "hour_timezone": HOUR_TIMEZONE,
        "overall": summarize(finished).to_dict(),
        "by_company": [
            {"company": company, **summarize(calls).to_dict()}
            for company, calls in sorted(by_company.items(), key=lambda item: (-len(item[1]), item[0]))
        ],
        "by_hour_utc": [{"hour": hour, **summarize(calls).to_dict()} for hour, calls in sorted(by_hour.items())],
    }


def _utc_hour(moment: datetime) -> int:
    """The hour in UTC (the store's times are aware; a naive one is taken as UTC)."""
    return moment.hour if moment.tzinfo is None else moment.astimezone(timezone.utc).hour


def _status(record: CallFacts) -> str:
    return getattr(record.status, "value", record.status)
