"""The API against its own OpenAPI document (schemathesis): generated requests to every operation
of the running app (its PBX simulated) find no 5xx and no response outside its declared schema."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import REPO, ApiServer


class RunningApp:
    """The app, its REST API and a simulated PBX on their own event loop in a thread, so that a
    synchronous client (schemathesis) can call them over real HTTP."""

    def __init__(self, tmp_path: Path, corpus, database_url: str) -> None:
        self.tmp_path, self.corpus, self.database_url = tmp_path, corpus, database_url
        self.loop = asyncio.new_event_loop()
        self.base_url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        from app.api.app import create_api
        from app.config import Settings
        from app.runtime import HoldSlayer
        from app.sim import SimConfig, SimulatedPBX

        self._stop = asyncio.Event()
        pbx = SimulatedPBX(SimConfig(scenarios={}, corpus=self.corpus))
        await pbx.start()
        holdslayer = HoldSlayer(
            Settings(
                ari_url=pbx.ari_url,
                database_url=self.database_url,
                recordings_dir=self.tmp_path / "rec",
                flows_dir=REPO / "flows",
                dial_timeout=5,
            )
        )
        server = ApiServer(create_api(holdslayer))
        await holdslayer.start()
        await server.start()
        self.base_url = server.base_url
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.stop()
            await holdslayer.stop()
            await pbx.stop()

    def __enter__(self) -> RunningApp:
        self._thread.start()
        assert self._ready.wait(30), "the app did not start"
        return self

    def __exit__(self, *exc) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def running_app(tmp_path_factory, corpus, module_database_url) -> Iterator[RunningApp]:
    with RunningApp(tmp_path_factory.mktemp("schema"), corpus, module_database_url) as app:
        yield app


def _openapi() -> dict:
    from app.api.app import create_api
    from app.config import Settings

    return create_api(settings=Settings()).openapi()  # the document the app serves at /openapi.json


schema = schemathesis.openapi.from_dict(_openapi())


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))  # the same cases every run
def test_no_server_error_and_no_response_outside_the_schema(case, running_app):
    case.call_and_validate(base_url=running_app.base_url, checks=[not_a_server_error, response_schema_conformance])


def test_the_document_tested_is_the_one_served(running_app):
    import json
    import urllib.request

    with urllib.request.urlopen(running_app.base_url + "/openapi.json") as resp:
        assert json.load(resp) == _openapi()
