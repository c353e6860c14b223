"""AriClient against a fake ARI server on 127.0.0.1 that answers with captured Asterisk replies."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from app.ari import (
    AriBadRequest,
    AriClient,
    AriConflict,
    AriConnectionError,
    AriError,
    AriNotFound,
    AriPreconditionFailed,
    AriServerError,
    AriUnauthorized,
    AriUnprocessable,
    Bridge,
    Channel,
    LiveRecording,
    Playback,
    StoredRecording,
    ignore_missing,
)
from app.ari.errors import error_for_status, error_message
from tests.ari_fake import FakeAri, capture_lines, captured_reply, captures_dir

from tests.shared_paths import ARI_DOCS_DIR, require

ARI_DOCS = require(ARI_DOCS_DIR)


@pytest.fixture
async def fake():
    server = await FakeAri().start()
    yield server
    await server.close()


@pytest.fixture
async def client(fake: FakeAri):
    async with AriClient(fake.base_url, fake.user, fake.password, fake.app, timeout=2.0) as ari:
        yield ari


@dataclass
class Case:
    call: Callable[[AriClient], Awaitable[Any]]
    method: str
    path: str
    query: dict[str, str]
    reply: tuple[int, Any] = (204, None)
    body: Any = None
    check: Callable[[Any], bool] = field(default=lambda result: result is None)


def captured_query(method: str, path: str) -> dict[str, str]:
    """The query string Asterisk received for this call in the captures (the reference we match)."""
    for _, line in capture_lines(captures_dir()):
        if line["dir"] == "rest" and (line["method"], line["path"]) == (method, path) and line["status"] < 300:
            return line["query"] or {}
    raise LookupError(path)


CASES: dict[str, Case] = {
    "create_channel": Case(
        lambda c: c.create_channel(
            "Local/501@fake-company", "hs-a-company", other_channel_id="hs-a-company-2", app_args="company,a"
        ),
        "POST",
        "/channels/create",
        captured_query("POST", "/channels/create"),
        captured_reply("POST", "/channels/create"),
        check=lambda ch: isinstance(ch, Channel) and ch.id == "hs-a-company" and ch.state == "Down",
    ),
    "create_channel_with_variables": Case(
        lambda c: c.create_channel("Local/1000@fake-company", "x1", variables={"HOLD_SECS": "60"}),
        "POST",
        "/channels/create",
        {"endpoint": "Local/1000@fake-company", "app": "holdslayer", "channelId": "x1", "formats": "ulaw"},
        captured_reply("POST", "/channels/create"),
        body={"variables": {"HOLD_SECS": "60"}},
        check=lambda ch: isinstance(ch, Channel),
    ),
    "dial": Case(
        lambda c: c.dial("hs-a-company", timeout=30),
        "POST",
        "/channels/hs-a-company/dial",
        captured_query("POST", "/channels/hs-a-company/dial"),
    ),
    "dial_with_caller": Case(
        lambda c: c.dial("hs-a-company", caller="hs-in"), "POST", "/channels/hs-a-company/dial", {"caller": "hs-in"}
    ),
    "originate": Case(
        lambda c: c.originate(
            "Local/1001@fake-company",
            "hs-b-company",
            app_args="company,b",
            formats="ulaw",
            timeout=30,
            caller_id="HoldSlayer <5550100>",
            other_channel_id="hs-b-company-2",
            variables={"HOLD_SECS": "8", "AGENT_MODE": "hangup"},
        ),
        "POST",
        "/channels",
        captured_query("POST", "/channels") | {"endpoint": "Local/1001@fake-company"},
        captured_reply("POST", "/channels"),
        body={"variables": {"HOLD_SECS": "8", "AGENT_MODE": "hangup"}},
        check=lambda ch: isinstance(ch, Channel) and ch.caller.number == "5550100",
    ),
    "answer": Case(lambda c: c.answer("1795260917.339"), "POST", "/channels/1795260917.339/answer", {}),
    "hangup": Case(lambda c: c.hangup("hs-a-em"), "DELETE", "/channels/hs-a-em", {"reason": "normal"}),
    "hangup_busy": Case(lambda c: c.hangup("hs-a-em", "busy"), "DELETE", "/channels/hs-a-em", {"reason": "busy"}),
    "send_dtmf": Case(
        lambda c: c.send_dtmf("hs-b-company", "2"),
        "POST",
        "/channels/hs-b-company/dtmf",
        {"dtmf": "2", "before": "0", "between": "100", "duration": "100", "after": "0"},
    ),
    "snoop": Case(
        lambda c: c.snoop("hs-b-company", "hs-b-snoop", spy="in", whisper="out", app_args="snoop,b"),
        "POST",
        "/channels/hs-b-company/snoop",
        captured_query("POST", "/channels/hs-b-company/snoop"),
        captured_reply("POST", "/channels/hs-b-company/snoop"),
        check=lambda ch: ch.id == "hs-b-snoop" and ch.state == "Up",
    ),
    "external_media": Case(
        lambda c: c.external_media("hs-a-em", "127.0.0.1:40110"),
        "POST",
        "/channels/externalMedia",
        captured_query("POST", "/channels/externalMedia"),
        captured_reply("POST", "/channels/externalMedia"),
        check=lambda ch: ch.id == "hs-a-em" and ch.rtp_address() == ("127.0.0.1", 20488),
    ),
    "get_variable": Case(
        lambda c: c.get_variable("hs-h-ulaw", "CHANNEL(audionativeformat)"),
        "GET",
        "/channels/hs-h-ulaw/variable",
        {"variable": "CHANNEL(audionativeformat)"},
        captured_reply("GET", "/channels/hs-h-ulaw/variable"),
        check=lambda value: value == "(ulaw)",
    ),
    "set_variable": Case(
        lambda c: c.set_variable("hs-a-company", "HOLD_SECS", "5"),
        "POST",
        "/channels/hs-a-company/variable",
        {"variable": "HOLD_SECS", "value": "5"},
    ),
    "play": Case(
        lambda c: c.play("1795260917.339", "sound:hello", "hs-d-hello"),
        "POST",
        "/channels/1795260917.339/play",
        captured_query("POST", "/channels/1795260917.339/play"),
        captured_reply("POST", "/channels/1795260917.339/play"),
        check=lambda pb: isinstance(pb, Playback) and pb.id == "hs-d-hello" and pb.target_id() == "1795260917.339",
    ),
    "record": Case(
        lambda c: c.record("hs-b-verify-snoop", "hs-b-verify-farend-heard", max_duration_seconds=180),
        "POST",
        "/channels/hs-b-verify-snoop/record",
        captured_query("POST", "/channels/hs-b-verify-snoop/record") | {"beep": "false", "terminateOn": "none"},
        captured_reply("POST", "/channels/hs-b-verify-snoop/record"),
        check=lambda rec: isinstance(rec, LiveRecording) and rec.state == "queued",
    ),
    "list_channels": Case(
        lambda c: c.list_channels(),
        "GET",
        "/channels",
        {},
        captured_reply("GET", "/channels"),
        check=lambda chs: len(chs) > 1 and all(isinstance(ch, Channel) for ch in chs),
    ),
    "get_channel": Case(
        lambda c: c.get_channel("hs-e-company"),
        "GET",
        "/channels/hs-e-company",
        {},
        captured_reply("GET", "/channels/hs-e-company"),
        check=lambda ch: ch.id == "hs-e-company" and ch.state == "Up",
    ),
    "create_bridge": Case(
        lambda c: c.create_bridge("hs-a-bridge", name="hs-a-bridge"),
        "POST",
        "/bridges",
        captured_query("POST", "/bridges"),
        captured_reply("POST", "/bridges"),
        check=lambda br: isinstance(br, Bridge) and br.id == "hs-a-bridge" and br.channels == [],
    ),
    "create_bridge_without_name": Case(
        lambda c: c.create_bridge("b1", type="mixing"),
        "POST",
        "/bridges",
        {"type": "mixing", "bridgeId": "b1"},
        captured_reply("POST", "/bridges"),
        check=lambda br: isinstance(br, Bridge),
    ),
    "add_channels": Case(
        lambda c: c.add_channel("hs-b-listen", ["hs-b-snoop", "hs-b-em"]),
        "POST",
        "/bridges/hs-b-listen/addChannel",
        captured_query("POST", "/bridges/hs-b-listen/addChannel"),
    ),
    "add_one_channel": Case(
        lambda c: c.add_channel("hs-a-bridge", "hs-a-em"),
        "POST",
        "/bridges/hs-a-bridge/addChannel",
        {"channel": "hs-a-em"},
    ),
    "remove_channel": Case(
        lambda c: c.remove_channel("hs-a-bridge", ("hs-a-em", "hs-a-company")),
        "POST",
        "/bridges/hs-a-bridge/removeChannel",
        {"channel": "hs-a-em,hs-a-company"},
    ),
    "destroy_bridge": Case(lambda c: c.destroy_bridge("hs-a-bridge"), "DELETE", "/bridges/hs-a-bridge", {}),
    "list_bridges": Case(
        lambda c: c.list_bridges(),
        "GET",
        "/bridges",
        {},
        captured_reply("GET", "/bridges"),
        check=lambda brs: [b.id for b in brs] == ["hs-b-listen", "hs-b-main"],
    ),
    "get_bridge": Case(
        lambda c: c.get_bridge("hs-b-main"),
        "GET",
        "/bridges/hs-b-main",
        {},
        captured_reply("GET", "/bridges/hs-b-main"),
        check=lambda br: sorted(br.channels) == ["hs-b-company", "hs-b-user"],
    ),
    "bridge_play": Case(
        lambda c: c.bridge_play("hs-e-bridge", "sound:beep", "hs-e-beep-while-disconnected"),
        "POST",
        "/bridges/hs-e-bridge/play",
        captured_query("POST", "/bridges/hs-e-bridge/play"),
        captured_reply("POST", "/bridges/hs-e-bridge/play"),
        check=lambda pb: pb.target_uri == "bridge:hs-e-bridge" and pb.target_id() == "hs-e-bridge",
    ),
    "bridge_record": Case(
        lambda c: c.bridge_record("hs-g-bridge", "hs-g-bridge-rec", max_duration_seconds=60),
        "POST",
        "/bridges/hs-g-bridge/record",
        captured_query("POST", "/bridges/hs-g-bridge/record"),
        captured_reply("POST", "/bridges/hs-g-bridge/record"),
        check=lambda rec: rec.name == "hs-g-bridge-rec" and rec.target_id() == "hs-g-bridge",
    ),
    "stop_recording": Case(
        lambda c: c.stop_recording("hs-g-bridge-rec"), "POST", "/recordings/live/hs-g-bridge-rec/stop", {}
    ),
    "list_stored_recordings": Case(
        lambda c: c.list_stored_recordings(),
        "GET",
        "/recordings/stored",
        {},
        captured_reply("GET", "/recordings/stored"),
        check=lambda recs: recs == [StoredRecording(name="hs-g-bridge-rec", format="wav")],
    ),
    "get_stored_recording_file": Case(
        lambda c: c.get_stored_recording_file("hs-g-bridge-rec"),
        "GET",
        "/recordings/stored/hs-g-bridge-rec/file",
        {},
        (200, b"RIFF\x24\x00\x00\x00WAVEfmt "),
        check=lambda data: data == b"RIFF\x24\x00\x00\x00WAVEfmt ",
    ),
    "stored_recording_chunks": Case(
        lambda c: _joined_chunks(c.stored_recording_chunks("hs-g-bridge-rec", chunk_bytes=5)),
        "GET",
        "/recordings/stored/hs-g-bridge-rec/file",
        {},
        (200, b"RIFF\x24\x00\x00\x00WAVEfmt " * 100),
        check=lambda data: data == b"RIFF\x24\x00\x00\x00WAVEfmt " * 100,
    ),
    "delete_stored_recording": Case(
        lambda c: c.delete_stored_recording("hs-g-bridge-rec"), "DELETE", "/recordings/stored/hs-g-bridge-rec", {}
    ),
    "asterisk_info": Case(
        lambda c: c.asterisk_info(),
        "GET",
        "/asterisk/info",
        {},
        captured_reply("GET", "/asterisk/info"),
        check=lambda info: info["system"]["version"] == "22.10.1",
    ),
    "get_application": Case(
        lambda c: c.get_application(),
        "GET",
        "/applications/holdslayer",
        {},
        captured_reply("GET", "/applications/holdslayer"),
        check=lambda app: app["bridge_ids"] == ["hs-e-bridge"],
    ),
    "ids_are_escaped_in_paths": Case(
        lambda c: c.delete_stored_recording("calls/2026 x"), "DELETE", "/recordings/stored/calls%2F2026%20x", {}
    ),
}


async def _joined_chunks(chunks) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def _schema_query_params() -> dict[tuple[str, str], set[str]]:
    operations: dict[tuple[str, str], set[str]] = {}
    for spec in ARI_DOCS.glob("*.json"):
        for api in json.loads(spec.read_text()).get("apis", []):
            for op in api.get("operations", []):
                query = {p["name"] for p in op.get("parameters", []) if p["paramType"] == "query"}
                operations[(op["httpMethod"], api["path"])] = query
    return operations


SCHEMA_QUERY_PARAMS = _schema_query_params()


def schema_params(method: str, path: str) -> set[str]:
    """The query parameters the ARI schema defines for the operation that serves this path."""
    if (method, path) in SCHEMA_QUERY_PARAMS:  # /channels/create before /channels/{channelId}
        return SCHEMA_QUERY_PARAMS[(method, path)]
    parts = path.split("/")
    for (op_method, template), query in SCHEMA_QUERY_PARAMS.items():
        template_parts = template.split("/")
        same_shape = op_method == method and len(template_parts) == len(parts)
        if same_shape and all(p == t or t.startswith("{") for p, t in zip(parts, template_parts, strict=True)):
            return query
    raise LookupError(f"{method} {path} is not in the schema")


@pytest.mark.parametrize("name", CASES)
async def test_request_is_built_as_asterisk_expects(name: str, fake: FakeAri, client: AriClient) -> None:
    case = CASES[name]
    fake.reply(case.method, case.path, *case.reply)

    result = await case.call(client)

    [received] = fake.requests
    assert (received.method, received.path) == (case.method, case.path)
    assert received.query == case.query
    assert set(received.query) <= schema_params(case.method, case.path), "a parameter Asterisk does not know"
    assert received.body == case.body
    assert case.check(result), result


# --- errors ---

ERROR_CASES = [
    (400, captured_reply("POST", "/bridges/hs-f-bridge/addChannel", 400)[1], AriBadRequest, "Channel not found"),
    (404, captured_reply("GET", "/channels/does-not-exist", 404)[1], AriNotFound, "Channel not found"),
    (
        409,
        captured_reply("POST", "/channels/hs-f-company-2/dtmf", 409)[1],
        AriConflict,
        "Channel not in Stasis application",
    ),
    (412, {"message": "Channel in invalid state"}, AriPreconditionFailed, "Channel in invalid state"),
    (
        422,
        captured_reply("POST", "/bridges/hs-f-bridge/addChannel", 422)[1],
        AriUnprocessable,
        "Channel not in Stasis application",
    ),
    (500, captured_reply("POST", "/channels", 500)[1], AriServerError, "Allocation failed"),
    (503, None, AriServerError, "Service Unavailable"),
    (405, {"message": "Invalid method"}, AriError, "Invalid method"),
]


@pytest.mark.parametrize(("status", "body", "error_type", "message"), ERROR_CASES)
async def test_error_status_raises_typed_error_with_asterisk_message(
    status: int, body: Any, error_type: type[AriError], message: str, fake: FakeAri, client: AriClient
) -> None:
    fake.reply("POST", "/bridges/hs-f-bridge/addChannel", status, body)

    with pytest.raises(error_type) as caught:
        await client.add_channel("hs-f-bridge", "hs-f-em")

    assert type(caught.value) is error_type
    assert caught.value.status == status
    assert caught.value.message == message
    assert (caught.value.method, caught.value.path) == ("POST", "/bridges/hs-f-bridge/addChannel")


async def test_wrong_password_raises_unauthorized(fake: FakeAri) -> None:
    async with AriClient(fake.base_url, fake.user, "wrong", fake.app) as ari:
        with pytest.raises(AriUnauthorized) as caught:
            await ari.list_channels()
    assert caught.value.message == "Authentication required"


def test_every_captured_error_maps_to_its_type_and_message() -> None:
    probes = [line for _, line in capture_lines(captures_dir()) if line["dir"] == "rest" and line["status"] >= 400]
    assert len(probes) >= 20
    expected_type = {
        400: AriBadRequest,
        401: AriUnauthorized,
        404: AriNotFound,
        409: AriConflict,
        422: AriUnprocessable,
    }
    for probe in probes:
        error = error_for_status(probe["status"], error_message(probe["response"], "?"), probe["method"], probe["path"])
        assert type(error) is expected_type.get(probe["status"], AriServerError if probe["status"] >= 500 else AriError)
        assert error.message == probe["response"].get("message", probe["response"].get("error"))


async def test_unreachable_server_raises_connection_error(fake: FakeAri) -> None:
    url = fake.base_url
    await fake.close()
    async with AriClient(url, "u", "p", "holdslayer", timeout=2.0) as ari:
        with pytest.raises(AriConnectionError) as caught:
            await ari.get_channel("hs-a")
    assert caught.value.status == 0
    assert (caught.value.method, caught.value.path) == ("GET", "/channels/hs-a")


async def test_slow_server_raises_connection_error_after_timeout(fake: FakeAri) -> None:
    fake.rest_delay = 2.0
    fake.reply("GET", "/channels", 200, [])
    async with AriClient(fake.base_url, fake.user, fake.password, fake.app, timeout=0.2) as ari:
        with pytest.raises(AriConnectionError, match=r"no reply after 0\.2 s"):
            await ari.list_channels()


async def test_unexpected_reply_shape_raises_ari_error(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/channels/x", 200, {"name": "no id"})
    with pytest.raises(AriError, match="unexpected reply"):
        await client.get_channel("x")


# --- idempotent cleanup ---


async def test_missing_ok_makes_cleanup_idempotent(fake: FakeAri, client: AriClient) -> None:
    fake.reply("DELETE", "/channels/hs-f-company", *captured_reply("DELETE", "/channels/hs-f-company", 404))
    fake.reply("DELETE", "/bridges/hs-f-bridge", *captured_reply("DELETE", "/bridges/hs-f-bridge", 404))

    await client.hangup("hs-f-company", missing_ok=True)
    await client.destroy_bridge("hs-f-bridge", missing_ok=True)
    with pytest.raises(AriNotFound):
        await client.hangup("hs-f-company")
    with pytest.raises(AriNotFound):
        await client.destroy_bridge("hs-f-bridge")
    assert len(fake.requests) == 4


async def test_ignore_missing_swallows_only_not_found(fake: FakeAri, client: AriClient) -> None:
    fake.reply("POST", "/recordings/live/gone/stop", 404, {"message": "Recording not found"})
    fake.reply("POST", "/recordings/live/busy/stop", 409, {"message": "conflict"})

    assert await ignore_missing(client.stop_recording("gone")) is None
    with pytest.raises(AriConflict):
        await ignore_missing(client.stop_recording("busy"))


async def test_a_missing_recording_file_is_not_found_before_any_chunk(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/recordings/stored/gone/file", 404, {"message": "Recording not found"})
    chunks = []
    with pytest.raises(AriNotFound, match="Recording not found"):
        async for chunk in client.stored_recording_chunks("gone"):
            chunks.append(chunk)
    assert chunks == []


# --- sessions and models ---


async def test_a_given_session_is_used_and_left_open(fake: FakeAri) -> None:
    fake.reply("GET", "/channels", 200, [])
    async with aiohttp.ClientSession() as session:
        async with AriClient(fake.base_url, fake.user, fake.password, fake.app, session=session) as ari:
            assert await ari.list_channels() == []
        assert not session.closed
        async with session.get(f"{fake.base_url}/channels") as reply:  # still usable after the client closed
            assert reply.status == 401


def test_events_url_targets_our_app_only() -> None:
    ari = AriClient("https://pbx.example:8089/ari/", "hs", "p&ss", "holdslayer")
    url = ari.events_url
    assert url.scheme == "wss"
    assert url.path == "/ari/events"
    assert dict(url.query) == {"app": "holdslayer", "api_key": "hs:p&ss"}


def test_every_captured_rest_reply_parses_into_its_model() -> None:
    parsed = 0
    for _, line in capture_lines(captures_dir()):
        if line["dir"] != "rest" or line["status"] >= 300 or not isinstance(line["response"], (dict, list)):
            continue
        if isinstance(line["response"], dict) and line["response"].get("_binary"):
            continue
        response, path = line["response"], line["path"]
        if path.startswith("/channels") and "/variable" not in path and line["method"] in ("GET", "POST"):
            model = Playback if path.endswith("/play") else LiveRecording if path.endswith("/record") else Channel
        elif path.startswith("/bridges"):
            model = Playback if path.endswith("/play") else LiveRecording if path.endswith("/record") else Bridge
        elif path.startswith("/recordings/stored"):
            model = StoredRecording
        elif path.startswith("/recordings/live"):
            model = LiveRecording
        else:
            continue
        for item in response if isinstance(response, list) else [response]:
            model.model_validate(item)
            parsed += 1
    assert parsed >= 60


def test_rtp_address_needs_both_variables() -> None:
    base = {"id": "em", "name": "UnicastRTP/x", "state": "Down"}
    assert Channel.model_validate(base).rtp_address() is None
    assert (
        Channel.model_validate(base | {"channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "10.0.0.2"}}).rtp_address() is None
    )
    vars_ok = {"UNICASTRTP_LOCAL_ADDRESS": "10.0.0.2", "UNICASTRTP_LOCAL_PORT": "20000"}
    assert Channel.model_validate(base | {"channelvars": vars_ok}).rtp_address() == ("10.0.0.2", 20000)


def test_models_keep_fields_a_newer_asterisk_adds() -> None:
    channel = Channel.model_validate({"id": "c", "name": "n", "state": "Up", "future_field": 7})
    assert channel.model_extra == {"future_field": 7}
