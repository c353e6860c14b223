"""Phone numbers: one rule for the call request, the call flow and the store."""

import pytest

from app.calls.models import CallRequest
from app.ivr.flow import CallFlow
from app.phone import digits_only, emergency_code, normalize_phone_number
from tests.emergency_numbers import BLOCKED_SETTINGS, EMERGENCY_NUMBERS, REFUSED_NUMBERS, keyed


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


EMERGENCY = ["911", "112", "999", "000", "110", "119"]


@pytest.mark.parametrize(
    ("dialled", "code"),
    [
        *[(code, code) for code in EMERGENCY],
        ("9-1-1", "911"), ("+1 911", "911"), ("9 911", "911"), ("9 1 911", "911"), ("9111", "911"), ("1 9111", "911"),
        ("0 112", "112"), ("00 112", "112"), ("9 999", "999"), ("9999", "999"), ("0 000", "000"), ("0 110", "110"),
        ("0 119", "119"), ("9 112", "112"),
        # International form: the code of the country dialled ("+44 999" is the UK's 999).
        ("+44 999", "999"), ("+49 112", "112"), ("+61 000", "000"), ("0044 999", "999"), ("011 61 000", "000"),
        ("+33 0 112", "112"), ("+81 110", "110"), ("+44 9999", "999"),
        # Vertical service codes change how a call is placed, not where it goes.
        ("*67 911", "911"), ("*67 *82 911", "911"), ("#31# 112", "112"),
    ],
)  # fmt: skip
def test_emergency_numbers_are_found_behind_prefixes_and_separators(dialled, code):
    assert emergency_code(dialled) == code


@pytest.mark.parametrize(
    "dialled",
    ["5550112", "8005550911", "18005550100", "1000", "1007", "100", "4110", "+44 20 7946 0999", "+1 212 555 0100",
     "+49 30 1120 0000", "*67 5550100", "+61 2 9999 0000"],
)  # fmt: skip
def test_ordinary_numbers_and_extensions_stay_callable(dialled):
    assert emergency_code(dialled) is None


def test_numbers_the_user_blocks_are_refused_too():
    assert emergency_code("(555) 867-5309", ["5558675309"]) == "5558675309"
    assert emergency_code("9 5558675309", ["555-867-5309"]) == "5558675309"
    assert emergency_code("5558675300", ["5558675309"]) is None


@pytest.mark.parametrize(("dialled", "code"), REFUSED_NUMBERS.items())
def test_every_number_the_triggers_are_tried_with_is_refused_as_typed_and_as_keyed(dialled, code):
    # The list REST, MCP, dial-in and the dashboard are tested with (tests/emergency_numbers.py).
    blocked = BLOCKED_SETTINGS["blocked_numbers"]
    for form in (dialled, keyed(dialled), CallRequest(number=dialled).number):
        assert emergency_code(form, blocked) == code, form
    if dialled in EMERGENCY_NUMBERS:
        assert emergency_code(dialled) == code, "refused whatever the settings"
