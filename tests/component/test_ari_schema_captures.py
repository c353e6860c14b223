"""The ARI validators agree with real Asterisk 22 traffic, and reject what Asterisk would never send."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests import ari_schema
from tests.ari_schema import (
    match_operation,
    operation,
    undocumented_query_params,
    validate_event,
    validate_model,
    validate_response,
)

from tests.shared_paths import CAPTURES_DIR, require

require(CAPTURES_DIR)
CAPTURE_FILES = sorted(CAPTURES_DIR.glob("*.jsonl"))

# Probes in f-error-responses that deliberately leave the documented API.
_DELIBERATELY_UNDOCUMENTED = {("GET", "/no-such-resource"), ("PUT", "/channels")}


def _records(path: Path, direction: str) -> list[dict[str, Any]]:
    with path.open() as lines:
        return [r for r in map(json.loads, lines) if r["dir"] == direction]


def _first_event(event_type: str) -> dict[str, Any]:
    for path in CAPTURE_FILES:
        for record in _records(path, "event"):
            if record["event"]["type"] == event_type:
                return copy.deepcopy(record["event"])
    raise LookupError(event_type)


def test_captures_are_present() -> None:
    names = {p.name for p in CAPTURE_FILES}
    assert {"a-create-dial-early-media.jsonl", "c-unanswered-and-failed.jsonl", "f-error-responses.jsonl"} <= names


@pytest.mark.parametrize("capture", CAPTURE_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_every_captured_event_validates(capture: Path, strict: bool) -> None:
    # Strict passing too is what justifies holding the simulator to strict mode.
    events = [r["event"] for r in _records(capture, "event")]
    assert events, f"{capture.name} has no events"
    failures = {
        f"#{i} {event['type']}": errors
        for i, event in enumerate(events)
        if (errors := validate_event(event, strict=strict))
    }
    assert failures == {}


@pytest.mark.parametrize("capture", CAPTURE_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_every_captured_success_response_validates(capture: Path, strict: bool) -> None:
    successes = [r for r in _records(capture, "rest") if 200 <= r["status"] < 300]
    assert successes, f"{capture.name} has no successful REST responses"
    failures = {
        f"{r['method']} {r['path']} -> {r['status']}": errors
        for r in successes
        if (errors := validate_response(r["method"], r["path"], r["status"], r["response"], strict=strict))
    }
    assert failures == {}


@pytest.mark.parametrize("capture", CAPTURE_FILES, ids=lambda p: p.stem)
def test_every_captured_request_is_a_documented_operation_with_documented_params(capture: Path) -> None:
    problems = []
    for r in _records(capture, "rest"):
        if (r["method"], r["path"]) in _DELIBERATELY_UNDOCUMENTED:
            assert match_operation(r["method"], r["path"]) is None
            continue
        if match_operation(r["method"], r["path"]) is None:
            problems.append(f"no operation for {r['method']} {r['path']}")
        elif unknown := undocumented_query_params(r["method"], r["path"], r["query"]):
            problems.append(f"{r['method']} {r['path']}: undocumented {unknown}")
    assert problems == []


def test_all_documented_event_types_are_known() -> None:
    events_doc = json.loads((ari_schema.docs_dir() / "events.json").read_text())
    documented = set(events_doc["models"]["Event"]["subTypes"])
    assert ari_schema.schema().event_types == documented
    assert ari_schema.schema().message_types == documented | {"MissingParams"}


# --- rejections --------------------------------------------------------------------------------


def test_stasis_start_without_channel_is_rejected() -> None:
    event = _first_event("StasisStart")
    del event["channel"]
    assert validate_event(event) == ["$: 'channel' is a required property"]


def test_channel_with_numeric_state_is_rejected() -> None:
    channel = _first_event("StasisStart")["channel"]
    channel["state"] = 42
    errors = validate_model("Channel", channel)
    assert errors and all(e.startswith("$.state:") for e in errors)


def test_channel_state_outside_the_documented_list_is_rejected_inside_an_event() -> None:
    event = _first_event("ChannelStateChange")
    event["channel"]["state"] = "Answered"
    assert validate_event(event) == [
        "$.channel.state: 'Answered' is not one of ['Down', 'Rsrved', 'OffHook', 'Dialing', 'Ring', "
        "'Ringing', 'Up', 'Busy', 'Dialing Offhook', 'Pre-ring', 'Unknown']"
    ]


@pytest.mark.parametrize("event_type", ["ChannelTeleported", "Event", "Message", "Channel"])
def test_unknown_or_abstract_event_type_is_rejected(event_type: str) -> None:
    event = _first_event("StasisStart")
    event["type"] = event_type
    assert validate_event(event) == [f"$.type: unknown event type {event_type!r}"]


def test_event_without_type_or_not_an_object_is_rejected() -> None:
    assert validate_event({"timestamp": "2026-11-21T11:33:22.235+0000"}) == ["$.type: missing or not a string"]
    assert validate_event(["StasisStart"]) == ["$: event is list, not an object"]  # type: ignore[arg-type]


def test_event_missing_inherited_fields_is_rejected() -> None:
    event = _first_event("Dial")
    del event["application"]  # from Event
    del event["timestamp"]  # from Event
    assert validate_event(event) == [
        "$: 'application' is a required property",
        "$: 'timestamp' is a required property",
    ]


def test_rfc3339_timestamp_is_not_what_asterisk_sends() -> None:
    event = _first_event("ChannelDestroyed")
    event["timestamp"] = "2026-11-21T11:33:22.235+00:00"
    errors = validate_event(event)
    assert len(errors) == 1 and errors[0].startswith("$.timestamp:")


def test_wrong_primitive_types_are_rejected() -> None:
    event = _first_event("ChannelDestroyed")
    event["cause"] = "16"
    event["channel"]["dialplan"]["priority"] = 1.5
    assert validate_event(event) == [
        "$.cause: '16' is not of type 'integer'",
        "$.channel.dialplan.priority: 1.5 is not of type 'integer'",
    ]


def test_extra_fields_pass_leniently_and_fail_strictly() -> None:
    event = _first_event("StasisStart")
    event["channel"]["sim_only"] = True
    assert validate_event(event) == []
    assert validate_event(event, strict=True) == [
        "$.channel: Additional properties are not allowed ('sim_only' was unexpected)"
    ]


def test_polymorphic_model_dispatches_on_type() -> None:
    assert validate_model("Message", {"type": "MissingParams", "params": ["endpoint"]}) == []
    assert validate_model("Message", {"type": "MissingParams"}) == ["$: 'params' is a required property"]
    assert validate_model("Event", {"type": "MissingParams", "params": []}) == [
        "$.type: 'MissingParams' is not a subtype of Event"
    ]


def test_unknown_model_name_is_a_caller_error() -> None:
    with pytest.raises(KeyError):
        validate_model("Telephone", {})


def test_void_operation_with_a_body_is_rejected() -> None:
    assert validate_response("POST", "/channels/c1/dial", 204, None) == []
    assert validate_response("POST", "/channels/c1/dial", 204, {"ok": True}) != []


def test_list_response_reports_the_bad_item() -> None:
    bridge = {
        "id": "b1", "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
        "creator": "Stasis", "name": "b1", "channels": [], "creationtime": "2026-11-21T11:33:22.236+0000",
        "video_mode": "talker",
    }  # fmt: skip
    assert validate_response("GET", "/bridges", 200, [bridge]) == []
    assert validate_response("GET", "/bridges", 200, [bridge, {**bridge, "bridge_type": "mixing,proxy_media"}]) == [
        "[1].bridge_type: 'mixing,proxy_media' is not one of ['mixing', 'holding']"
    ]
    assert validate_response("GET", "/bridges", 200, bridge) == ["$: expected a list of Bridge, got dict"]


def test_response_of_an_undocumented_path_is_reported() -> None:
    errors = validate_response("GET", "/no-such-resource", 200, {})
    assert errors == ["no documented operation for GET /no-such-resource"]


# --- operations --------------------------------------------------------------------------------


def test_operation_lists_documented_parameters() -> None:
    dial = operation("/channels/{channelId}/dial", "post")
    assert dial["nickname"] == "dial"
    assert dial["response_class"] == "void"
    assert set(dial["parameters"]) == {"channelId", "caller", "timeout"}
    assert dial["parameters"]["channelId"]["param_type"] == "path"
    assert dial["error_responses"][409] == "Channel cannot be dialed."

    external = operation("/channels/externalMedia", "POST")
    assert {"app", "external_host", "format", "channelId", "encapsulation", "transport"} <= set(external["parameters"])
    assert external["parameters"]["format"]["required"] is True
    assert external["parameters"]["transport"]["allowable_values"] == {
        "valueType": "LIST",
        "values": ["udp", "tcp", "websocket"],
    }


def test_unknown_operation_raises() -> None:
    with pytest.raises(KeyError):
        operation("/channels/{channelId}/teleport", "POST")


def test_literal_segments_beat_path_parameters() -> None:
    assert match_operation("POST", "/channels/create")["nickname"] == "create"  # type: ignore[index]
    assert match_operation("POST", "/channels/externalMedia")["nickname"] == "externalMedia"  # type: ignore[index]
    assert match_operation("POST", "/channels/create/dial")["nickname"] == "dial"  # type: ignore[index]
    assert match_operation("GET", "/channels/create")["nickname"] == "get"  # type: ignore[index]
    assert match_operation("PATCH", "/channels/c1") is None


def test_undocumented_query_params_are_named() -> None:
    assert undocumented_query_params("POST", "/channels/c1/dial", {"timeout": "30", "api_key": "u:p"}) == []
    assert undocumented_query_params("POST", "/channels/c1/dial", {"timeout": "30", "retries": "3"}) == ["retries"]
    # A path parameter is not a query parameter.
    assert undocumented_query_params("POST", "/channels/c1/dial", {"channelId": "c1"}) == ["channelId"]
