"""The user's devices: the phones Hold Slayer rings when a person answers. Pure: what a device is
and the rules for its name and dial string, shared by the settings, the store, the calls and the
API (no I/O here).

A device has a name (what requests and flows say: ``sip_phone``), an Asterisk dial string
(``PJSIP/userphone``, ``PJSIP/+15551234@trunk``, ``Local/100@internal``), a label for people, and
one device is the default: the one rung when a request names none. The store keeps them
(``/api/devices``); the settings seed them (``HOLDSLAYER_USER_DEVICES``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

NAME_MAX = 100
DIAL_STRING_MAX = 200
LABEL_MAX = 100

# Letters, digits and . _ - (it is part of a URL path, a flow file and a JSON setting).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# TECH/resource, as Asterisk originates it: PJSIP/userphone, PJSIP/+15551234@trunk, Local/100@ctx
# (the resource: printable ASCII, no space).
DIAL_STRING_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*/[!-~]+$"
_NAME = re.compile(NAME_PATTERN)
_DIAL_STRING = re.compile(DIAL_STRING_PATTERN)


@dataclass(frozen=True)
class Device:
    name: str
    dial_string: str
    label: str = ""
    is_default: bool = False


class DeviceError(Exception):
    """A device request that cannot be done; ``field`` names the input at fault, when one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidDevice(DeviceError, ValueError):
    """A name, dial string or label that breaks the rules."""


class UnknownDevice(DeviceError, LookupError):
    """No device of that name."""


class DeviceConflict(DeviceError):
    """The change would leave the devices inconsistent: a name taken twice, no default device,
    or no device at all."""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a device, or None."""
    if not name:
        return "must not be empty"
    if len(name) > NAME_MAX:
        return f"must be at most {NAME_MAX} characters"
    if not _NAME.fullmatch(name):
        return "must be letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. sip_phone)"
    return None


def dial_string_problem(dial_string: str) -> str | None:
    """Why ``dial_string`` is not an Asterisk dial string, or None."""
    if len(dial_string) > DIAL_STRING_MAX:
        return f"must be at most {DIAL_STRING_MAX} characters"
    if not _DIAL_STRING.fullmatch(dial_string):
        return f"{dial_string!r} is not an Asterisk dial string (TECH/resource, e.g. PJSIP/userphone)"
    return None


def label_problem(label: str) -> str | None:
    if len(label) > LABEL_MAX:
        return f"must be at most {LABEL_MAX} characters"
    if not label.isprintable():
        return "must be printable text (no control characters)"
    return None


def check_device(name: str, dial_string: str | None = None, label: str | None = None) -> None:
    """Raise ``InvalidDevice`` naming the first field at fault."""
    for field, value, rule in (("name", name, name_problem), ("dial_string", dial_string, dial_string_problem),
                               ("label", label, label_problem)):  # fmt: skip
        problem = None if value is None else rule(value)
        if problem is not None:
            raise InvalidDevice(f"{field}: {problem}", field=field)


def choose(devices: Sequence[Device], name: str | None) -> Device:
    """The device named, or with no name the default one; ``UnknownDevice`` says which exist."""
    if not devices:
        raise UnknownDevice("no device to ring: add one (POST /api/devices, or HOLDSLAYER_USER_DEVICES)", field="device")
    if name is None:
        default = next((d for d in devices if d.is_default), None)
        if default is None:  # the store keeps one; a hand-edited database may not
            raise UnknownDevice("no default device: name one, or make one the default", field="device")
        return default
    for device in devices:
        if device.name == name:
            return device
    known = ", ".join(d.name for d in devices)
    raise UnknownDevice(f"unknown device {name!r}; devices: {known}", field="device")


def device_for_endpoint(devices: Sequence[Device], endpoint: str) -> Device | None:
    """The device whose dial string is ``endpoint`` (where a call from the user came from), or None."""
    return next((d for d in devices if d.dial_string == endpoint), None)
