"""GET /api/calls against the real API server and the test's database (SQLite, or PostgreSQL with
HOLDSLAYER_TEST_DATABASE): the filters a user looks calls up by (status, company, number, a time
range), the pages with their total and next link, and a reason for every input refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from app.calls.models import CallRequest
from tests.conftest import api_without_calls

# (id, company, number dialled, status, created at): newest last.
CALLS = [
    ("a1", "Acme Bank", "(800) 555-0100", "completed", "2026-03-01T09:00:00+00:00"),
    ("a2", "Acme Bank", "8005550100", "failed", "2026-03-01T15:00:00+00:00"),
    ("a3", "ACME Insurance", "8005550111", "completed", "2026-03-02T09:00:00+00:00"),
    ("g1", "Globex", "8005550199", "completed", "2026-03-02T12:00:00+00:00"),
    ("s1", "Société Générale", "+33144449999", "cancelled", "2026-03-02T18:30:00+00:00"),
    ("n1", None, "5550003", "failed", "2026-03-03T08:00:00+00:00"),
]
NEWEST_FIRST = [c[0] for c in reversed(CALLS)]


@pytest.fixture
async def api(tmp_path: Path, corpus, http, database_url):
    async with api_without_calls(tmp_path, http, corpus, database_url) as (call, holdslayer):
        store = holdslayer.store
        for call_id, company, number, status, created in CALLS:
            store.create_call(call_id, CallRequest(number=number, intent="billing"), "sip_phone", company=company)
            reason = {"failed": "busy", "cancelled": "cancelled"}.get(status, "bridged")
            store.update_call(call_id, created_at=created, status=status, reason=reason, ended_at=created)
        yield call, http


async def listed(api, query: str = "") -> tuple[list[str], int, str | None]:
    """The ids of one page, the X-Total-Count and the Link header."""
    call, http = api
    async with http.get(f"{call.base_url}/api/calls{query}") as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return [c["call_id"] for c in body], int(resp.headers["X-Total-Count"]), resp.headers.get("Link")


async def test_without_filters_every_call_newest_first_with_the_total(api):
    assert await listed(api) == (NEWEST_FIRST, 6, None)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?status=completed", ["g1", "a3", "a1"]),
        ("?company=acme", ["a3", "a2", "a1"]),  # a part of the name, any case
        ("?company=Acme%20Bank", ["a2", "a1"]),
        # Not only ASCII: the same match on SQLite (whose lower() folds ASCII only) as on PostgreSQL.
        ("?company=" + quote("SOCIÉTÉ"), ["s1"]),
        ("?company=initech", []),
        ("?number=" + quote("(800) 555-0100"), ["a2", "a1"]),  # the number as dialled, any spelling
        ("?number=8005550100", ["a2", "a1"]),
        ("?number=" + quote("+33 1 44 44 99 99"), ["s1"]),
        ("?since=2026-03-02T00:00:00Z&until=2026-03-03T00:00:00Z", ["s1", "g1", "a3"]),
        ("?since=2026-03-02", ["n1", "s1", "g1", "a3"]),  # a date: its midnight, UTC
        ("?until=2026-03-02T09:00:00Z", ["a2", "a1"]),  # until: before it, since: at or after it
        ("?since=" + quote("2026-03-02T10:00:00+01:00"), ["n1", "s1", "g1", "a3"]),  # = 09:00 UTC
        ("?since=2026-03-02T09:00:00", ["n1", "s1", "g1", "a3"]),  # no offset: UTC
        ("?company=acme&status=completed", ["a3", "a1"]),
        ("?company=acme&since=2026-03-01T12:00:00Z&status=failed&number=8005550100", ["a2"]),
    ],
)
async def test_each_filter_and_their_combination(api, query, expected):
    ids, total, link = await listed(api, query)
    assert (ids, total, link) == (expected, len(expected), None)


async def test_pages_follow_the_next_link_keeping_the_filters(api):
    seen, query, pages = [], "?limit=2", 0
    while query is not None:
        ids, total, link = await listed(api, query)
        assert total == 6 and len(ids) <= 2
        seen += ids
        pages += 1
        query = None if link is None else link.removeprefix("</api/calls").removesuffix('>; rel="next"')
    assert (seen, pages) == (NEWEST_FIRST, 3)

    ids, total, link = await listed(api, "?company=acme&limit=2")
    assert (ids, total) == (["a3", "a2"], 3)
    assert link is not None and link.endswith('>; rel="next"') and "company=acme" in link and "offset=2" in link
    ids, total, link = await listed(api, link[1 : link.index(">")].removeprefix("/api/calls"))
    assert (ids, total, link) == (["a1"], 3, None)
    assert await listed(api, "?offset=10") == ([], 6, None), "past the end: an empty page, the total still"


@pytest.mark.parametrize(
    "query, field, reason",
    [
        ("?since=yesterday", "since", "datetime"),
        ("?until=2026-13-01T00:00:00Z", "until", "datetime"),
        # An unencoded + in a query string is a space: the offset is lost, and the reason says where.
        ("?since=2026-03-02T10:00:00+01:00", "since", "datetime"),
        ("?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until", "must be after since"),
        ("?since=2026-03-02T00:00:00Z&until=2026-03-02T00:00:00Z", "until", "must be after since"),
        ("?since=" + quote("0001-01-01T00:00:00+01:00"), "since", "out of range"),
        ("?number=acme", "number", "must be a phone number"),
        ("?company=", "company", "at least 1 character"),
        ("?status=lost", "status", "completed"),
        ("?limit=0", "limit", "greater than or equal to 1"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_the_parameter_and_why(api, query, field, reason):
    call, _ = api
    status, body = await call("GET", "/api/calls" + query)
    assert status == 422, body
    (error,) = body["detail"]
    assert error["loc"] == ["query", field] and reason in error["msg"], error


def test_the_store_counts_what_it_lists_with_the_same_filters(tmp_path, database_url):
    from app.store.repository import Store

    store = Store(database_url)
    try:
        for call_id, company, number, status, created in CALLS:
            store.create_call(call_id, CallRequest(number=number, intent="billing"), "sip_phone", company=company)
            store.update_call(call_id, created_at=created, status=status)
        since = datetime.fromisoformat("2026-03-01T12:00:00+00:00")
        for filters in ({}, {"company": "acme"}, {"status": "failed", "since": since}, {"number": "800.555.0199"}):
            listed_ids = [c.id for c in store.list_calls(**filters)]
            assert store.count_calls(**filters) == len(listed_ids), filters
        assert [c.id for c in store.list_calls(company="GÉNÉRALE")] == ["s1"]
        assert [c.id for c in store.list_calls(status="failed", since=since)] == ["n1", "a2"]
        assert store.count_calls(company="nobody") == 0 and store.list_calls(company="nobody") == []
    finally:
        store.close()
