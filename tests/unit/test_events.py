"""Domain events: one typed payload per event type, one JSON form, a published schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from app.calls import events as ev
from app.calls.events import PAYLOADS, CallEvent, EventFormatError, EventType, event_json_schema

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "events.schema.json"

# One example of every event type, with the optional parts filled in where there are any.
EXAMPLES: list[ev.EventData] = [
    ev.CallCreated(number="8005550100", intent="dispute a charge", device="sip_phone", flow_id="acme", company="Acme"),
    ev.CallDialing(number="8005550100", dial_string="PJSIP/8005550100@trunk"),
    ev.CallRinging(),
    ev.CallAnswered(),
    ev.CallStatusChanged(status="on_hold", previous="navigating"),
    ev.CallEnded(status="completed", reason="bridged", detail="the user hung up"),
    ev.IvrStep(step_id="menu", step_type="LISTEN", description="main menu", decision="press 2",
               navigator="offline", reason="billing", confidence=0.8, action={"type": "press", "digits": "2"}),
    ev.IvrDtmfSent(step_id="menu", digits="2", purpose="selection", navigator="offline", reason="billing",
                   confidence=0.8, action={"type": "press", "digits": "2"}),
    ev.IvrSpeechSent(step_id="account", text="<account_number>", seconds=2.1, purpose="user_data", field="account_number"),
    ev.IvrMenuDetected(
        step_id="menu",
        transcript="For billing, press 2.",
        options=[ev.MenuOptionHeard(key="2", spoken=None, label="billing", kind="topic")],
        data_requests=[ev.DataRequestHeard(field="zip_code", modes=["dtmf"], terminator="#", length=5)],
        open_question=False,
        is_hold_message=False,
        t_start=1.0,
        t_end=4.5,
        heard_seconds=3.2,
        listened_seconds=3.5,
        stt="whisper",
        replay=ev.ReplayCheckResult(ok=True, similarity=0.93, reason="same prompt"),
    ),
    ev.IvrStuck(step_id="menu", problem="loop", recovery="press_zero", reason="the same menu three times"),
    ev.UserDataRequested(step_id="menu", request_id="r1", field="zip_code", question="Your ZIP code?",
                         transcript="Enter your ZIP code.", timeout_seconds=120.0),
    ev.UserDataReceived(field="zip_code", requested=True),
    ev.FlowMismatch(step_id="menu", expected_transcript="For billing, press 2.", heard_transcript="Our menu has changed.",
                    similarity=0.2, reason="different words"),
    ev.FlowLearned(flow_id="acme", version=2, steps=["menu", "hold"], merged=True),
    ev.AudioClassified(t_start=0.0, t_end=3.0, audio_class="MUSIC", confidence=0.9, features={"flatness": 0.25}),
    ev.HoldDetected(t=12.5, confidence=0.8, evidence={"rule": "music"}),
    ev.HumanSuspected(t=80.0, confidence=0.6, evidence={"rule": "speech", "cues": []}),
    ev.HumanRetracted(t=84.0, suspected_t=80.0, evidence={"why": "music came back"}),
    ev.HumanDetected(t=95.0, confidence=0.85, evidence={"rule": "reply"}, hold_seconds=60.2),
    ev.HumanProbe(text="Hello? Are you there?", t=99.0, seconds=1.4),
    ev.HoldProgress(hold_seconds=30.0),
    ev.ToneDetected(kind="sit", t=1.2, region="intercept", detail={"cause": "not_in_service"}),
    ev.AgentGreeted(line="greeting", text="Hi, thanks for picking up!", t=95.1, seconds=1.6),
    ev.TransferStarted(device="sip_phone", dial_string="PJSIP/sip_phone"),
    ev.TransferComplete(device="sip_phone"),
    ev.RecordingSaved(path="/var/lib/holdslayer/recordings/c1.bridged.wav", seconds=812.4, channel="bridged"),
    ev.AriReconnected(lost_channels=["hs-c1-company"]),
    ev.MediaHealthReport(received=40_000, lost=52, late=3, duplicated=0, concealed=61, malformed=1, stray=0, dropped=0),
]  # fmt: skip


def test_there_is_one_example_of_every_event_type():
    assert sorted(e.TYPE.value for e in EXAMPLES) == sorted(t.value for t in EventType)
    assert set(PAYLOADS) == set(EventType)


@pytest.mark.parametrize("data", EXAMPLES, ids=lambda d: d.TYPE.value)
def test_every_event_round_trips_through_its_json_form_and_matches_the_schema(data):
    event = CallEvent("c1", data, at="2026-12-06T10:00:00.000+00:00", seq=7)
    wire = json.loads(json.dumps(event.to_dict()))
    assert wire["type"] == data.TYPE.value
    assert CallEvent.from_dict(wire) == event
    jsonschema.validate(wire, event_json_schema())


def test_the_published_schema_is_current():
    published = json.loads(SCHEMA_PATH.read_text())
    assert published == event_json_schema(), "regenerate: python -m app.calls.events > docs/events.schema.json"


def test_the_schema_refuses_an_event_with_another_types_data():
    wire = CallEvent("c1", ev.HoldProgress(hold_seconds=3.0)).to_dict()
    wire["type"] = "CALL_ENDED"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wire, event_json_schema())
    with pytest.raises(EventFormatError):
        CallEvent.from_dict(wire)


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "NO_SUCH_EVENT", "call_id": "c1", "data": {}, "at": "t", "seq": 1},
        {"type": "HOLD_PROGRESS", "call_id": "c1", "data": {"hold_seconds": "long"}, "at": "t", "seq": 1},
        {"type": "HOLD_PROGRESS", "call_id": "c1", "data": {"hold_seconds": 1, "extra": 2}, "at": "t", "seq": 1},
        {"type": "HOLD_PROGRESS", "data": {"hold_seconds": 1}, "at": "t", "seq": 1},
    ],
    ids=["unknown type", "wrong value", "unknown field", "no call id"],
)
def test_a_malformed_json_form_is_refused_with_a_reason(wire):
    with pytest.raises(EventFormatError, match="not an event"):
        CallEvent.from_dict(wire)


def test_the_type_comes_from_the_payload():
    event = CallEvent("c1", ev.HoldProgress(hold_seconds=1.0))
    assert event.type is EventType.HOLD_PROGRESS
    with pytest.raises(Exception):
        event.data.hold_seconds = 2.0  # type: ignore[misc]  # frozen


def test_evidence_from_the_audio_path_becomes_plain_json():
    data = ev.HumanSuspected(
        t=1.0,
        confidence=0.5,
        evidence={"level": np.float32(-31.123456), "frames": np.int64(12), "line": np.bool_(True), "shape": (1, 2),
                  "mean": np.array([0.5, 0.25]), "kind": EventType.HOLD_DETECTED},
    )  # fmt: skip
    assert data.evidence == {
        "level": -31.1235,
        "frames": 12,
        "line": True,
        "shape": [1, 2],
        "mean": [0.5, 0.25],
        "kind": "HOLD_DETECTED",
    }
    json.dumps(CallEvent("c1", data).to_dict())  # raises if anything is not JSON


def test_the_menu_event_has_one_shape_for_a_prompt_only_listened_to():
    # The session's "listen until the prompt ends" and the navigator's transcribed menu are one type.
    listened = ev.IvrMenuDetected(step_id="w", t_start=0.0, t_end=2.0, heard_seconds=1.5, listened_seconds=2.0)
    assert set(listened.model_dump()) == set(next(e for e in EXAMPLES if isinstance(e, ev.IvrMenuDetected)).model_dump())
    assert listened.transcript == "" and listened.options == []
