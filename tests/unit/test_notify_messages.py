"""Which events become notifications, and what they say; the webhook's signature."""

from __future__ import annotations

import pytest

from app.calls import events as ev
from app.calls.events import CallEvent
from app.notify.messages import CallNames, notification_for
from app.notify.webhook import sign, verify_signature


def names_with(call_id: str = "c1", company: str | None = "Acme Bank") -> CallNames:
    names = CallNames()
    names.learn(CallEvent(call_id, ev.CallCreated(number="8005550100", company=company)))
    return names


def test_a_person_on_the_line_names_the_company_and_the_hold_time():
    event = CallEvent("c1", ev.HumanDetected(t=600.0, confidence=0.9, evidence={}, hold_seconds=754.2))
    note = notification_for(event, names_with())
    assert note is not None and note.kind == "person_on_the_line"
    assert note.title == "A person is on the line: Acme Bank"
    assert "12 min 34 s" in note.body and note.event["type"] == "HUMAN_DETECTED"


def test_a_call_without_a_company_is_named_by_its_number():
    event = CallEvent("c1", ev.TransferComplete(device="sip_phone"))
    note = notification_for(event, names_with(company=None))
    assert note is not None and note.title == "Connected: 8005550100"


def test_a_question_from_the_menu_tells_where_to_answer():
    event = CallEvent(
        "c1",
        ev.UserDataRequested(step_id="m", request_id="r", field="zip_code", question="What is your ZIP code?",
                             transcript="Enter your ZIP code.", timeout_seconds=120.0),
    )  # fmt: skip
    note = notification_for(event, names_with())
    assert note is not None and note.title == "Acme Bank asks for your zip code"
    assert "/api/calls/c1/user-data" in note.body and "120 s" in note.body


def test_only_failures_end_in_a_notification():
    names = names_with()
    failed = notification_for(CallEvent("c1", ev.CallEnded(status="failed", reason="no_answer", detail="never answered")), names)
    assert failed is not None and failed.title == "The call to Acme Bank failed: no answer" and failed.body == "never answered"
    assert notification_for(CallEvent("c1", ev.CallEnded(status="completed", reason="bridged")), names) is None
    assert notification_for(CallEvent("c1", ev.CallEnded(status="cancelled", reason="cancelled")), names) is None


@pytest.mark.parametrize(
    "data",
    [ev.HoldProgress(hold_seconds=3.0), ev.CallStatusChanged(status="on_hold", previous="navigating"), ev.CallAnswered()],
)
def test_the_rest_is_for_the_dashboard_not_a_ping(data):
    assert notification_for(CallEvent("c1", data), names_with()) is None


def test_the_signature_holds_for_the_body_and_time_it_was_made_for():
    body = b'{"kind": "connected"}'
    signature = sign("s3cret", "1790000000", body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature("s3cret", "1790000000", body, signature, now=1790000010)
    assert not verify_signature("s3cret", "1790000000", body + b" ", signature, now=1790000010)  # body changed
    assert not verify_signature("other", "1790000000", body, signature, now=1790000010)  # wrong key
    assert not verify_signature("s3cret", "1790000000", body, signature, now=1790009999)  # replayed later
    assert not verify_signature("s3cret", "soon", body, signature)
