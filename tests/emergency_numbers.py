"""The numbers no trigger may dial: one list for every test that tries them (the unit rule in
tests/unit/test_phone.py, REST and dial-in in tests/e2e/test_e2e_calls.py, MCP in
tests/e2e/test_e2e_mcp.py, the dashboard in tests/browser/test_dashboard.py), so that all of them
try the same numbers. Each maps to the code the app must say it reaches in its refusal.

The forms are those a person or an assistant types: the codes themselves, behind an outside-line
digit or the long-distance 1, with a digit too many, in international form, behind a vertical
service code, with separators. A dial-in gets each as the
phone's keys send it (``keyed``).
"""

from __future__ import annotations

import re

EMERGENCY_NUMBERS: dict[str, str] = {
    "911": "911",
    "112": "112",
    "999": "999",
    "000": "000",
    "110": "110",
    "119": "119",
    "9111": "911",
    "9999": "999",
    "+1 911": "911",
    "9-911": "911",
    "0 112": "112",
    "00 112": "112",
    "9 999": "999",
    "+44 999": "999",
    "+49 112": "112",
    "+61 000": "000",
    "*67 911": "911",
}

# A number the user blocked (``Settings.blocked_numbers``, HOLDSLAYER_BLOCKED_NUMBERS): refused
# as it is written and behind an outside-line digit. No simulated company has it.
USER_BLOCKED = "5550999"
BLOCKED_SETTINGS = {"blocked_numbers": ["555-0999"]}
USER_BLOCKED_NUMBERS: dict[str, str] = {USER_BLOCKED: USER_BLOCKED, "9 555 0999": USER_BLOCKED}

# Everything a stack built with BLOCKED_SETTINGS must refuse.
REFUSED_NUMBERS: dict[str, str] = {**EMERGENCY_NUMBERS, **USER_BLOCKED_NUMBERS}


def keyed(number: str) -> str:
    """The number as a phone's keys send it to the dialplan: no spaces or dashes."""
    return re.sub(r"[\s-]", "", number)


def refusal_problem(number: str, code: str, reason: str) -> str | None:
    """What is wrong with a refusal's reason (None: it says the number reaches ``code`` and that
    Hold Slayer never dials it)."""
    if f"reaches {code}," not in reason or "emergency or blocked number" not in reason or "never dials" not in reason:
        return f"{number!r}: the refusal does not say it reaches {code}: {reason!r}"
    return None
