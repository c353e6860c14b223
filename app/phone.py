"""Phone numbers as the app dials, stores and looks them up: one rule, no I/O."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"^\+?[0-9*#]{2,32}$")
_SEPARATORS = re.compile(r"[\s().-]")


def normalize_phone_number(value: str) -> str:
    """The number without separators (spaces, dots, dashes, brackets); raises ``ValueError``.

    A call request, a call flow and a store lookup all pass through here, so "(555) 010-0000"
    and "5550100000" find the same flow.
    """
    cleaned = _SEPARATORS.sub("", value)
    if not _NUMBER.match(cleaned):
        raise ValueError("must be a phone number: 2-32 digits, optionally with a leading +")
    return cleaned


def digits_only(number: str) -> str:
    """The digits of a number (no +, * or #), e.g. to name something after it."""
    return "".join(ch for ch in number if ch.isdigit())


# Emergency and special service numbers around the world: 911 (North America), 112 (Europe,
# GSM everywhere), 999 (UK and others), 000 (Australia), 110 and 119 (police and fire/ambulance
# in Japan, China, Korea, Taiwan and others). Never dialled by the app: a person in an emergency
# must call them from their own phone, and a line held there would block a real emergency.
EMERGENCY_NUMBERS: tuple[str, ...] = ("911", "112", "999", "000", "110", "119")
# How a dialled string still reaches them: behind an outside-line digit ("9 911", "0 112"), the
# North American long-distance 1 ("1 911"), or with a digit too many ("9111", "9999"), which
# exchanges route to the emergency service rather than risk a missed call. Each code only with
# the prefixes used where it is dialled, so that an extension such as 1000 stays callable.
_PREFIXES: dict[str, tuple[str, ...]] = {
    "911": ("", "9", "8", "1", "91", "81", "99"),
    "112": ("", "9", "8", "0", "00"),
    "999": ("", "9", "8", "0"),
    "000": ("", "0"),
    "110": ("", "9", "0"),
    "119": ("", "9", "0"),
}
_EXTRA_DIGIT_CODES = frozenset({"911", "999"})
_USER_PREFIXES = ("", "9", "8", "0", "1")
# Dialled in international form, a code still reaches the emergency service of that country
# ("+44 999", "00 49 112", "011 61 000"): an international prefix, a country code of 1-3 digits,
# perhaps the national trunk 0, then the code. Every real subscriber number is longer.
_INTERNATIONAL = re.compile(r"^(?:\+|00|011)(\d{1,3}?)0?(\d{3,4})$")
# Vertical service codes before the number change how it is placed, not where it goes:
# "*67 911" (caller ID withheld) still reaches 911, as does "#31# 112".
_SERVICE_CODE = re.compile(r"^(?:\*\d{2}|#\d{2}#)")


def emergency_code(number: str, extra: tuple[str, ...] | list[str] = ()) -> str | None:
    """The emergency or blocked code ``number`` would reach, or None.

    ``extra``: numbers the user has blocked too (reached exactly or behind an outside-line digit).
    """
    dialled = _SEPARATORS.sub("", number)
    while (service := _SERVICE_CODE.match(dialled)) and len(dialled) > service.end():
        dialled = dialled[service.end() :]
    digits = digits_only(dialled)
    candidates = [digits, *_international_splits(dialled)]
    # The code itself behind a prefix before a code with a digit too many: "9 112" is 112.
    for extra_digit in (False, True):
        for candidate in candidates:
            if (code := _emergency_code_of_digits(candidate, extra_digit)) is not None:
                return code
    for blocked in filter(None, (digits_only(b) for b in extra)):
        if any(digits == prefix + blocked for prefix in _USER_PREFIXES):
            return blocked
    return None


def _international_splits(dialled: str) -> list[str]:
    """What may follow the country code of a short number in international form (every split
    of a 1-3 digit country code, the trunk 0 dropped)."""
    if not _INTERNATIONAL.match(dialled):
        return []
    national = dialled[1:] if dialled.startswith("+") else dialled[3:] if dialled.startswith("011") else dialled[2:]
    rests = []
    for country_digits in (1, 2, 3):
        rest = national[country_digits:]
        rests.append(rest)
        if rest.startswith("0") and len(rest) > 3:
            rests.append(rest[1:])
    return rests


def _emergency_code_of_digits(digits: str, extra_digit: bool) -> str | None:
    """The code ``digits`` reach behind one of its prefixes: exactly, or (``extra_digit``) with
    one digit more where exchanges route that to the emergency service too."""
    for code in EMERGENCY_NUMBERS:
        for prefix in _PREFIXES[code]:
            if not digits.startswith(prefix):
                continue
            rest = digits[len(prefix) :]
            if extra_digit:
                reached = code in _EXTRA_DIGIT_CODES and len(rest) == 4 and rest.startswith(code)
            else:
                reached = rest == code
            if reached:
                return code
    return None
