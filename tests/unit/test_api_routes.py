"""The API's routers with their dependencies replaced: no PBX, no database, no simulator.

The end-to-end API tests (test_api_*.py, test_e2e_*.py) run the same routes against the real
runtime; these check the wiring (app.state, Depends) and the error shapes in milliseconds.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_api
from app.api.deps import get_store
from app.calls.models import CallStatus
from app.config import Settings
from app.media.health import MediaHealth
from tests.unit.test_learning import FakeFlowStore, _flow


class FakeStore(FakeFlowStore):
    calls: list = []

    recordings: dict = {}  # call id -> its RECORDING_SAVED data

    def get_call(self, call_id):
        return None

    def call_recordings(self, call_id):
        return self.recordings.get(call_id)

    def recordings_removed_at(self, call_id):
        return None

    def list_calls(self, limit=100, offset=0, status=None, **filters):
        return self.calls[offset : offset + limit]

    def count_calls(self, status=None, **filters):
        return len(self.calls)

    def delete_flow(self, flow_id):
        return self.flows.pop(flow_id, None) is not None


HOLDING = MediaHealth(received=250, lost=50, late=3, concealed=55)


def _runtime(store) -> SimpleNamespace:
    connected = asyncio.Event()
    connected.set()
    sessions = {
        "a": SimpleNamespace(call_id="a", status=CallStatus.ON_HOLD, media=SimpleNamespace(health=lambda: HOLDING)),
        "b": SimpleNamespace(call_id="b", status=CallStatus.DIALING, media=SimpleNamespace(health=MediaHealth)),
    }
    return SimpleNamespace(
        stream=SimpleNamespace(connected=connected, reconnects=2),
        manager=SimpleNamespace(
            active_calls=list(sessions),
            session=sessions.get,
            media_totals=lambda: HOLDING + MediaHealth(received=1000, lost=1),
            recording_failures={"bridge_fetch": 1},
        ),
        flow_errors=["flows/bad.yaml: steps[0].dtmf: ..."],
        store=store,
        settings=Settings(),
        loop_lag=SimpleNamespace(lag=SimpleNamespace(latest=0.01234)),
        notifier=SimpleNamespace(tally=lambda: [("apprise", 3, 0), ("webhook", 2, 1)]),
        workers=None,  # one process: the calls are this runtime's own
    )


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(_flow("globex", version=3))


@pytest.fixture
def client(store):
    with TestClient(create_api(_runtime(store))) as client:  # the lifespan puts it on app.state
        yield client


def test_health_reads_the_runtime_on_app_state(client):
    health = client.get("/api/health").json()
    health.pop("provider_errors")  # the process's, shared with other tests
    assert health == {
        "ari_connected": True,
        "ari_reconnects": 2,
        "active_calls": 2,
        "flow_errors": ["flows/bad.yaml: steps[0].dtmf: ..."],
        "recording_failures": {"bridge_fetch": 1},
        "media_totals": {"received": 1250, "lost": 51, "late": 3, "duplicated": 0, "concealed": 55, "malformed": 0, "stray": 0, "dropped": 0},
        "event_loop_lag_seconds": 0.0123,
        "notifications": [{"channel": "apprise", "sent": 3, "failed": 0}, {"channel": "webhook", "sent": 2, "failed": 1}],
        "calls": [
            {"call_id": "a", "status": "on_hold", "media": HOLDING.as_dict()},
            {"call_id": "b", "status": "dialing", "media": MediaHealth().as_dict()},
        ],
    }


def test_a_calls_recordings_are_listed_and_served_by_channel(client, store, tmp_path):
    for name in ("c1.wav", "c1.app.wav", "c1.bridged.wav"):
        (tmp_path / name).write_bytes(b"RIFF" + name.encode())
    store.recordings = {
        "c1": [
            {"path": str(tmp_path / "c1.wav"), "seconds": 61.2},  # journalled before channels existed
            {"path": str(tmp_path / "c1.app.wav"), "seconds": 61.2, "channel": "app"},
            {"path": str(tmp_path / "c1.mixed.wav"), "seconds": 61.2, "channel": "mixed"},  # deleted since
            {"path": str(tmp_path / "c1.bridged.wav"), "seconds": 8.0, "channel": "bridged"},
        ],
        "c2": [],
    }
    assert client.get("/api/calls/c1/recordings").json() == {
        "call_id": "c1",
        "recordings": [
            {"channel": "far_end", "seconds": 61.2, "url": "/api/calls/c1/recordings/far_end", "removed_at": None},
            {"channel": "app", "seconds": 61.2, "url": "/api/calls/c1/recordings/app", "removed_at": None},
            {"channel": "bridged", "seconds": 8.0, "url": "/api/calls/c1/recordings/bridged", "removed_at": None},
        ],
    }
    response = client.get("/api/calls/c1/recordings/bridged")
    assert (response.status_code, response.headers["content-type"], response.content) == (
        200, "audio/wav", b"RIFFc1.bridged.wav"
    )  # fmt: skip
    assert client.get("/api/calls/c1/recordings/far_end").content == b"RIFFc1.wav"
    gone = client.get("/api/calls/c1/recordings/mixed")
    assert gone.status_code == 404 and "no longer on disk" in gone.json()["detail"]
    never = client.get("/api/calls/c2/recordings/bridged")
    assert never.status_code == 404 and "never bridged" in never.json()["detail"]
    assert client.get("/api/calls/c2/recordings").json() == {"call_id": "c2", "recordings": []}
    assert client.get("/api/calls/nope/recordings").json() == {"detail": "no call with id 'nope'"}
    assert client.get("/api/calls/nope/recordings/app").status_code == 404
    assert client.get("/api/calls/c1/recordings/video").status_code == 422


def test_replacing_a_flow_stores_its_next_version(client, store):
    body = _flow("globex", version=1).model_dump(mode="json") | {"name": "Globex billing"}
    response = client.put("/api/call-flows/globex", json=body)
    assert response.status_code == 200
    assert (response.json()["version"], store.flows["globex"].name) == (4, "Globex billing")


def test_a_path_id_that_differs_from_the_body_is_a_field_error(client):
    response = client.put("/api/call-flows/other", json=_flow("globex").model_dump(mode="json"))
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body", "id"], "msg": "must equal the path id 'other'", "type": "value_error"}]
    }


def test_unknown_calls_and_flows_are_404(client, store):
    assert client.post("/api/call-flows/learn", json={"call_id": "nope"}).json() == {"detail": "no call with id 'nope'"}
    assert client.delete("/api/call-flows/missing").status_code == 404
    assert client.delete("/api/call-flows/globex").status_code == 204 and store.flows == {}


def test_the_store_is_a_dependency_a_test_can_replace(store):
    app = create_api(_runtime(store))
    other = FakeStore(_flow("initech"))
    app.dependency_overrides[get_store] = lambda: other
    with TestClient(app) as client:
        assert [f["id"] for f in client.get("/api/call-flows").json()] == ["initech"]


def test_analytics_sum_up_the_stored_calls(client, store):
    from datetime import datetime, timedelta, timezone

    def call(company, status, hold, person_after, hour):
        created = datetime(2026, 12, 1, hour, 0, tzinfo=timezone.utc)
        return SimpleNamespace(
            number="8005550100", company=company, status=status, hold_seconds=hold, created_at=created,
            human_detected_at=None if person_after is None else created + timedelta(seconds=person_after),
        )  # fmt: skip

    # The person came 100 s (menus) and 40 s after the hold started: the time to them counts those.
    store.calls = [call("Acme", "completed", 600.0, 700.0, 9), call("Acme", "failed", 1200.0, None, 9),
                   call("Acme", "completed", 300.0, 340.0, 14), call("Globex", "completed", 60.0, 90.0, 14),
                   call("Globex", "on_hold", 30.0, None, 15)]  # fmt: skip
    body = client.get("/api/analytics").json()
    assert body["overall"]["calls"] == 4, "a call still running is not counted"
    assert body["hour_timezone"] == "UTC"
    acme = next(c for c in body["by_company"] if c["company"] == "Acme")
    assert (acme["calls"], acme["succeeded"], acme["success_rate"]) == (3, 2, 0.667)
    assert acme["hold_median_seconds"] == 600.0 and acme["hold_p90_seconds"] == 1080.0
    assert acme["time_to_person_median_seconds"] == 520.0 and acme["time_to_person_p90_seconds"] == 664.0
    assert [(h["hour"], h["calls"]) for h in body["by_hour_utc"]] == [(9, 2), (14, 2)]
    assert client.get("/api/analytics?limit=0").status_code == 422


def test_the_analytics_and_the_call_list_pages_are_declared_in_the_openapi_document(client):
    doc = client.get("/openapi.json").json()
    analytics_200 = doc["paths"]["/api/analytics"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert analytics_200 == {"$ref": "#/components/schemas/Analytics"}, "not a free-form object"
    schemas = doc["components"]["schemas"]
    assert set(schemas["Analytics"]["required"]) == {"hour_timezone", "overall", "by_company", "by_hour_utc"}
    figures = schemas["CallFigures"]["properties"]
    assert {"hold_median_seconds", "hold_p90_seconds", "time_to_person_median_seconds", "time_to_person_p90_seconds"} <= set(figures)
    assert schemas["HourFigures"]["properties"]["hour"]["maximum"] == 23
    listing = doc["paths"]["/api/calls"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"limit", "offset", "status", "company", "number", "since", "until"}
    assert set(listing["responses"]["200"]["headers"]) == {"X-Total-Count", "Link"}
