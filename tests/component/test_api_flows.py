"""REST for call flows, against the real API server and a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import api_without_calls


@pytest.fixture
async def api(tmp_path: Path, corpus, http, database_url):
    async with api_without_calls(tmp_path, http, corpus, database_url) as (call, _):
        yield call


FLOW = {
    "id": "globex-support",
    "name": "Globex support",
    "company": "Globex",
    "phone_number": "18005550199",
    "tags": ["utilities"],
    "steps": [
        {"id": "menu", "type": "LISTEN", "dtmf": "3", "timeout": 20},
        {"id": "hold", "type": "HOLD"},
        {"id": "transfer", "type": "TRANSFER"},
    ],
}


async def test_shipped_flows_are_listed_and_filtered(api):
    status, flows = await api("GET", "/api/call-flows")
    assert status == 200 and {"acme-bank", "test-menu"} <= {f["id"] for f in flows}
    status, flows = await api("GET", "/api/call-flows?company=acme%20bank")
    assert [f["id"] for f in flows] == ["acme-bank"]
    status, flows = await api("GET", "/api/call-flows?tag=test")
    assert "acme-bank" not in {f["id"] for f in flows} and "test-menu" in {f["id"] for f in flows}


async def test_create_get_replace_delete(api):
    status, created = await api("POST", "/api/call-flows", FLOW)
    assert status == 201 and created["version"] == 1
    assert (await api("POST", "/api/call-flows", FLOW))[0] == 409

    status, got = await api("GET", "/api/call-flows/globex-support")
    assert status == 200 and got["steps"][0]["dtmf"] == "3"

    edited = {**FLOW, "steps": [{**FLOW["steps"][0], "dtmf": "4"}, *FLOW["steps"][1:]]}
    status, replaced = await api("PUT", "/api/call-flows/globex-support", edited)
    assert status == 200 and replaced["version"] == 2 and replaced["steps"][0]["dtmf"] == "4"
    assert (await api("GET", "/api/call-flows/globex-support"))[1]["version"] == 2

    assert (await api("DELETE", "/api/call-flows/globex-support"))[0] == 204
    assert (await api("GET", "/api/call-flows/globex-support"))[0] == 404
    assert (await api("DELETE", "/api/call-flows/globex-support"))[0] == 404


@pytest.mark.parametrize(
    "change, field",
    [
        ({"steps": []}, "steps"),
        ({"steps": [{"id": "a", "type": "DTMF"}]}, "dtmf"),
        ({"steps": [{"id": "a", "type": "LISTEN", "next_step": "nowhere"}]}, "nowhere"),
        ({"phone_number": "call me"}, "phone_number"),
        # What a database column holds (PostgreSQL refuses more; SQLite would have kept it).
        ({"name": "n" * 201}, "name"),
        ({"company": "c" * 201}, "company"),
        ({"version": 2**31}, "version"),
        ({"success_count": 2**63}, "success_count"),
    ],
)
async def test_invalid_flows_are_rejected_with_the_reason(api, change, field):
    status, body = await api("POST", "/api/call-flows", {**FLOW, **change})
    assert status == 422
    assert field in str(body["detail"])
    assert (await api("GET", "/api/call-flows/globex-support"))[0] == 404


async def test_put_with_a_different_id_is_refused(api):
    status, body = await api("PUT", "/api/call-flows/other-id", FLOW)
    assert status == 422 and "id" in str(body["detail"])
