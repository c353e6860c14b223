"""Phone numbers: one rule for the call request, the call flow and the store."""

import pytest

from app.calls.models import CallRequest
from app.ivr.flow import CallFlow
from app.phone import digits_only, normalize_phone_number


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("(555) 010-0000", "5550100000"), ("+1 555.010.0000", "+15550100000"), ("*72", "*72"), ("12", "12")],
)
def test_separators_go_and_the_digits_stay(raw, normalised):
    assert normalize_phone_number(raw) == normalised


@pytest.mark.parametrize("raw", ["", "1", "555-CALL-NOW", "+", "1" * 33, "55+5"])
def test_what_cannot_be_dialled_is_refused(raw):
    with pytest.raises(ValueError, match="must be a phone number"):
        normalize_phone_number(raw)


def test_a_call_request_and_a_flow_normalise_alike():
    raw = "(555) 010-0000"
    flow = CallFlow(id="acme", name="Acme", phone_number=raw, steps=[{"id": "hold", "type": "HOLD"}])
    assert CallRequest(number=raw).number == flow.phone_number == "5550100000"


def test_digits_only_drops_plus_star_and_hash():
    assert digits_only("+1555*0100#") == "15550100"
