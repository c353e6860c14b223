"""The user data vault: values the user lets the agent disclose to a phone menu. Pure, no I/O.

Each value has a permission: ``"dtmf"`` (may be keyed), ``"speech"`` (may be spoken), ``"both"``
or ``"never"``. Some fields are never entered whatever the user gave (``NEVER_ENTER_FIELDS``:
full SSN, full card number, CVV, passwords): the vault refuses to hold them at all.

Navigators only ever see ``available()`` (field -> how it may be disclosed), never the values.
The session turns an ``EnterUserData(field, mode)`` into what to key or say with ``render``:
DTMF digits with the terminator the menu asked for ("12345#"), or a speakable string ("one two
three four five"); dates in the layout the menu wants (MMDDYYYY by default).

Values never appear in ``repr``/``str`` (so not in logs): ``VaultEntry`` and ``UserDataVault``
mask them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

Permission = Literal["dtmf", "speech", "both", "never"]
PERMISSIONS: tuple[str, ...] = ("dtmf", "speech", "both", "never")

# Never keyed or spoken by the agent, even when the user supplied them.
NEVER_ENTER_FIELDS: frozenset[str] = frozenset(
    {"ssn", "full_ssn", "card_number", "full_card_number", "cvv", "card_security_code", "password",
     "online_password"}
)  # fmt: skip

FIELD_DESCRIPTIONS: dict[str, str] = {
    "account_number": "account number",
    "zip_code": "ZIP code",
    "date_of_birth": "date of birth",
    "last_four_ssn": "last four digits of your Social Security number",
    "card_last_four": "last four digits of your card number",
    "callback_number": "phone number (for a callback)",
    "member_id": "member ID",
    "policy_number": "policy number",
    "claim_number": "claim number",
    "order_number": "order number",
    "confirmation_number": "confirmation number",
    "pin": "PIN",
    "name": "full name",
    "ssn": "Social Security number",
    "card_number": "card number",
    "password": "password",
}

# Names users and clients commonly give a field -> the vault's name for it.
FIELD_ALIASES: dict[str, str] = {
    "account": "account_number", "account_no": "account_number", "acct": "account_number",
    "zip": "zip_code", "zipcode": "zip_code", "postal_code": "zip_code", "postcode": "zip_code",
    "dob": "date_of_birth", "birthday": "date_of_birth", "birth_date": "date_of_birth", "birthdate": "date_of_birth",
    "ssn_last4": "last_four_ssn", "ssn_last_four": "last_four_ssn", "last4_ssn": "last_four_ssn",
    "card_last4": "card_last_four", "last4_card": "card_last_four",
    "phone": "callback_number", "phone_number": "callback_number", "callback": "callback_number",
    "member_number": "member_id", "membership_id": "member_id", "full_name": "name",
    "social_security_number": "ssn", "credit_card_number": "card_number",
}  # fmt: skip

# What a field may do when the user gave a value without saying how it may be used.
_DEFAULT_PERMISSIONS: dict[str, Permission] = {"pin": "dtmf", "name": "speech"}
_LAST_FOUR_FIELDS = frozenset({"last_four_ssn", "card_last_four"})
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

DATE_FORMATS: dict[str, str] = {"MMDDYYYY": "%m%d%Y", "MMDDYY": "%m%d%y", "YYYYMMDD": "%Y%m%d", "DDMMYYYY": "%d%m%Y"}
_INPUT_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y", "%m%d%Y", "%B %d %Y", "%b %d %Y", "%d %B %Y")

# ITU E.161 keypad, for letters in IDs keyed as DTMF.
_KEYPAD = {letter: digit for digit, letters in
           {"2": "abc", "3": "def", "4": "ghi", "5": "jkl", "6": "mno", "7": "pqrs", "8": "tuv", "9": "wxyz"}.items()
           for letter in letters}  # fmt: skip
_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_ONES = _DIGIT_NAMES + ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                        "eighteen", "nineteen")  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
             "twelve": "twelfth"}  # fmt: skip
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip


class VaultError(ValueError):
    """Base of the vault's refusals."""


class DisclosureRefused(VaultError):
    """The field may not be disclosed this way (never-enter, or permission does not allow the mode)."""


class MissingUserData(VaultError):
    """The vault holds no value for the field: ask the user."""


def canonical_field(name: str) -> str:
    """The vault's name for a field: ``"ZIP"`` -> ``zip_code``, ``"dob"`` -> ``date_of_birth``."""
    cleaned = re.sub(r"[\s-]+", "_", name.strip().lower())
    return FIELD_ALIASES.get(cleaned, cleaned)


def describe_field(name: str) -> str:
    """Human words for a field: ``zip_code`` -> ``ZIP code``."""
    return FIELD_DESCRIPTIONS.get(name, name.replace("_", " "))


def question_for(name: str) -> str:
    """What to ask the user when a menu wants ``name`` and the vault lacks it."""
    return f"The phone menu is asking for your {describe_field(name)}. What should I enter?"


@dataclass(frozen=True, repr=False)
class VaultEntry:
    field: str
    value: str
    permission: Permission

    def __repr__(self) -> str:
        return f"VaultEntry(field={self.field!r}, value='***', permission={self.permission!r})"

    __str__ = __repr__

    def allows(self, mode: str) -> bool:
        return self.permission == "both" or self.permission == mode


class UserDataVault:
    """Values the user lets the agent disclose, with how each may be disclosed."""

    def __init__(
        self,
        values: Mapping[str, str] | None = None,
        permissions: Mapping[str, Permission] | None = None,
        never_enter: Iterable[str] = NEVER_ENTER_FIELDS,
    ) -> None:
        self._never = frozenset(canonical_field(name) for name in never_enter)
        self._entries: dict[str, VaultEntry] = {}
        self.refused: list[str] = []  # fields given but never entered (for the user to see, not the values)
        permissions = dict(permissions or {})
        for name, value in (values or {}).items():
            self.put(name, value, permissions.get(name))

    def put(self, field: str, value: str, permission: Permission | None = None) -> bool:
        """Store (or replace) a value; False when the field is on the never-enter list (not stored).

        ``field`` may be an alias (``zip``, ``dob``, ``phone``): it is stored under the vault's name.
        Raises ValueError for a malformed field name, an unknown permission or an empty value, and
        for a ``last_four`` field whose value is not exactly four digits (a full number by mistake).
        """
        field = canonical_field(field)
        if not _FIELD_NAME.match(field):
            raise ValueError(f"bad field name {field!r}: lower-case letters, digits and _")
        if permission is not None and permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {PERMISSIONS}, not {permission!r}")
        value = value.strip()
        if not value:
            raise ValueError(f"empty value for {field}")
        if field in self._never:
            if field not in self.refused:
                self.refused.append(field)
            self._entries.pop(field, None)
            return False
        if field in _LAST_FOUR_FIELDS and not re.fullmatch(r"\d{4}", value):
            raise ValueError(f"{field} must be exactly four digits (never the full number)")
        self._entries[field] = VaultEntry(field, value, permission or _DEFAULT_PERMISSIONS.get(field, "both"))
        return True

    def forget(self, field: str) -> None:
        self._entries.pop(canonical_field(field), None)

    def is_never_enter(self, field: str) -> bool:
        return canonical_field(field) in self._never

    def can_disclose(self, field: str, mode: str) -> bool:
        entry = self._entries.get(canonical_field(field))
        return entry is not None and entry.allows(mode)

    def missing(self, field: str) -> bool:
        """No value to give, and the user may be asked for one (never-enter fields: False)."""
        field = canonical_field(field)
        return field not in self._never and field not in self._entries

    def permission(self, field: str) -> Permission | None:
        entry = self._entries.get(canonical_field(field))
        return entry.permission if entry else None

    def available(self) -> dict[str, str]:
        """Field -> ``"dtmf" | "speech" | "both"`` for what may be disclosed. Never values."""
        return {
            field: entry.permission for field, entry in sorted(self._entries.items()) if entry.permission != "never"
        }

    def render(
        self,
        field: str,
        mode: str,
        *,
        terminator: str | None = None,
        date_format: str | None = None,
        length: int | None = None,
    ) -> str:
        """What to key (``mode="dtmf"``) or say (``mode="speech"``) for ``field``.

        Raises MissingUserData when there is no value, DisclosureRefused when the field is
        never-entered or its permission does not allow ``mode``, VaultError when the value cannot
        be rendered that way (e.g. a date that is not a date).
        """
        if mode not in ("dtmf", "speech"):
            raise ValueError(f"mode must be dtmf or speech, not {mode!r}")
        field = canonical_field(field)
        if field in self._never:
            raise DisclosureRefused(f"{field} is never entered")
        entry = self._entries.get(field)
        if entry is None:
            raise MissingUserData(f"no value for {field}")
        if not entry.allows(mode):
            raise DisclosureRefused(f"{field} may not be disclosed by {mode} (permission: {entry.permission})")
        if date_format is not None or field == "date_of_birth":
            return _render_date(entry.value, mode, date_format or "MMDDYYYY", terminator)
        if mode == "dtmf":
            digits = _as_dtmf(entry.value)
            if length is not None and len(digits) > length:
                digits = digits[-length:]  # "last four digits"
            return digits + (terminator or "")
        return _speakable(entry.value, length)

    def __contains__(self, field: object) -> bool:
        return isinstance(field, str) and canonical_field(field) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}:{entry.permission}" for name, entry in sorted(self._entries.items()))
        return f"UserDataVault({fields})"

    __str__ = __repr__


def _as_dtmf(value: str) -> str:
    """Digits to key: separators dropped, letters on the phone keypad (E.161)."""
    keyed = "".join(_KEYPAD.get(ch, ch) for ch in value.lower() if ch.isalnum() or ch in "*#")
    if not keyed or not re.fullmatch(r"[0-9*#]+", keyed):
        raise VaultError("the value cannot be keyed as DTMF")
    return keyed


def _speakable(value: str, length: int | None) -> str:
    """Digits one by one ("one two three"), letters spelled, words as they are."""
    compact = re.sub(r"[\s()./-]", "", value)
    if re.fullmatch(r"[A-Za-z0-9]+", compact) and any(ch.isdigit() for ch in compact):
        if length is not None and compact.isdigit() and len(compact) > length:
            compact = compact[-length:]
        return " ".join(_DIGIT_NAMES[int(ch)] if ch.isdigit() else ch.upper() for ch in compact)
    return value


def parse_date(value: str) -> date:
    cleaned = re.sub(r"\s+", " ", value.replace(",", " ")).strip()
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", cleaned)
    for layout in _INPUT_DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, layout).date()
        except ValueError:
            continue
    raise VaultError("the value is not a date")


def _render_date(value: str, mode: str, date_format: str, terminator: str | None) -> str:
    if date_format not in DATE_FORMATS:
        raise ValueError(f"date_format must be one of {', '.join(DATE_FORMATS)}, not {date_format!r}")
    when = parse_date(value)
    if mode == "dtmf":
        return when.strftime(DATE_FORMATS[date_format]) + (terminator or "")
    return f"{_MONTHS[when.month - 1]} {_ordinal_words(when.day)}, {_year_words(when.year)}"


def number_words(n: int) -> str:
    """0..9999 in words: 42 -> "forty two", 1999 -> "one thousand nine hundred ninety nine"."""
    if not 0 <= n <= 9999:
        raise ValueError("0..9999 only")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    return _ONES[n // 1000] + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))


def _ordinal_words(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    if last in _ORDINALS:
        words[-1] = _ORDINALS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _year_words(year: int) -> str:
    """As people say years: 1980 -> "nineteen eighty", 2005 -> "two thousand five", 2012 -> "twenty twelve"."""
    century, rest = divmod(year, 100)
    if 2000 <= year < 2010 or rest == 0 and year % 1000 == 0:
        return number_words(year)
    if rest == 0:
        return number_words(century) + " hundred"
    return number_words(century) + " " + (f"oh {_ONES[rest]}" if rest < 10 else number_words(rest))
