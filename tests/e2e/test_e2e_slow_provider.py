"""A menu-reading call whose LLM provider hangs (a server that accepts and never answers): each
decision times out within ``HOLDSLAYER_LLM_TIMEOUT`` and the offline navigator answers the menu,
so the call still navigates, holds and bridges the user. Against the simulated PBX, real
HTTP/WebSocket/UDP, local speech-to-text. (A failing speech-to-text provider handing over to the
local one is tests/component/test_stt.py; the LLM fallback's rules are test_llm_navigator.py.)"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.e2e.test_e2e_calls import event_types, events_of, journal, running_stack

pytestmark = pytest.mark.e2e

LLM_TIMEOUT = 1.0

# A simulated company with one spoken menu (app/sim/scenarios/nav-operator.yaml): rentals are 1.
REALTY = "5551011"
INTENT = "I am looking for a rental apartment"


class HangingServer:
    """Accepts TCP connections, reads whatever comes, never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> HangingServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        while await reader.read(65536):
            pass


@pytest.mark.timeout(150)
async def test_a_hanging_llm_times_out_and_the_offline_navigator_finishes_the_call(
    tmp_path: Path, corpus, http, database_url, caplog
):
    caplog.set_level(logging.WARNING, logger="app.ivr.llm_navigator")
    async with HangingServer() as llm, running_stack(
        tmp_path, http, corpus, database_url,
        navigator="openai", openai_api_key="sk-test", openai_base_url=llm.base_url, llm_timeout=LLM_TIMEOUT,
        stt_provider="local",
    ) as stack:  # fmt: skip
        status, body = await stack.post("/api/calls", {"number": REALTY, "intent": INTENT})  # no flow: explore
        assert status == 201, body
        call = await stack.wait_final(body["call_id"], timeout=120)

    assert (call["status"], call["reason"]) == ("completed", "bridged"), journal(call)
    assert llm.connections >= 1, "the provider was asked first"
    sent = events_of(call, "IVR_DTMF_SENT")
    assert [d["digits"] for d in sent] == ["1"]
    assert {d["navigator"] for d in sent} == {"offline"}, "the offline navigator decided every menu"
    assert "HUMAN_DETECTED" in event_types(call)
    fell_back = [r.getMessage() for r in caplog.records if "using the offline navigator" in r.getMessage()]
    assert fell_back and all(f"no answer within {LLM_TIMEOUT:g} s" in m for m in fell_back), fell_back
