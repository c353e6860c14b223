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
from app.config import Settings
from tests.unit.test_learning import FakeFlowStore, _flow


class FakeStore(FakeFlowStore):
    def get_call(self, call_id):
        return None

    def delete_flow(self, flow_id):
        return self.flows.pop(flow_id, None) is not None


def _runtime(store) -> SimpleNamespace:
    connected = asyncio.Event()
    connected.set()
    return SimpleNamespace(
        stream=SimpleNamespace(connected=connected, reconnects=2),
        manager=SimpleNamespace(active_calls=["a", "b"]),
        flow_errors=["flows/bad.yaml: steps[0].dtmf: ..."],
        store=store,
        settings=Settings(),
    )


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(_flow("globex", version=3))


@pytest.fixture
def client(store):
    with TestClient(create_api(_runtime(store))) as client:  # the lifespan puts it on app.state
        yield client


def test_health_reads_the_runtime_on_app_state(client):
    assert client.get("/api/health").json() == {
        "ari_connected": True,
        "ari_reconnects": 2,
        "active_calls": 2,
        "flow_errors": ["flows/bad.yaml: steps[0].dtmf: ..."],
    }


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
