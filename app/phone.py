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
