"""The user's devices as pure rules (app/devices.py): names, dial strings, labels, and which
device a call rings."""

from __future__ import annotations

import pytest

from app.devices import (
    Device,
    InvalidDevice,
    UnknownDevice,
    check_device,
    choose,
    device_for_endpoint,
    dial_string_problem,
    label_problem,
    name_problem,
)

PHONE = Device("sip_phone", "PJSIP/userphone", "desk", is_default=True)
CELL = Device("cell", "PJSIP/+15551234@trunk")


@pytest.mark.parametrize("name", ["sip_phone", "cell", "desk-2", "Phone.1", "a", "x" * 100])
def test_names_a_request_a_flow_and_a_url_can_carry(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "desk/2", "-desk", "my phone", "phone\x00", "phone\n", "téléphone", "x" * 101, "_x"])
def test_names_that_are_refused(name):
    assert name_problem(name) is not None


@pytest.mark.parametrize(
    "dial_string", ["PJSIP/userphone", "PJSIP/+15551234@trunk", "Local/100@internal", "SIP/desk", "IAX2/peer/100"]
)
def test_asterisk_dial_strings(dial_string):
    assert dial_string_problem(dial_string) is None


@pytest.mark.parametrize(
    "dial_string",
    ["userphone", "/userphone", "PJSIP/", "PJSIP/user phone", "9PJSIP/x", "PJSIP/x\x00", "PJSIP/x\n", "PJSIP/" + "1" * 200],
)
def test_what_is_no_dial_string(dial_string):
    assert dial_string_problem(dial_string) is not None


def test_labels_are_printable_text_of_limited_length():
    assert label_problem("") is None and label_problem("Alex's desk phone ☎") is None
    assert label_problem("two\nlines") and label_problem("nul\x00") and label_problem("x" * 101)


def test_the_first_bad_field_is_named():
    with pytest.raises(InvalidDevice) as bad:
        check_device("desk", "nodialstring", "fine")
    assert bad.value.field == "dial_string" and "TECH/resource" in bad.value.message
    with pytest.raises(InvalidDevice) as bad:
        check_device("desk/2", "also bad")
    assert bad.value.field == "name"
    check_device("desk", None, None)  # only what is given is checked


def test_a_call_rings_the_device_it_names_or_the_default():
    assert choose([CELL, PHONE], None) is PHONE
    assert choose([CELL, PHONE], "cell") is CELL
    with pytest.raises(UnknownDevice) as unknown:
        choose([CELL, PHONE], "fax")
    assert unknown.value.field == "device"
    assert unknown.value.message == "unknown device 'fax'; devices: cell, sip_phone"
    with pytest.raises(UnknownDevice, match="no device to ring"):
        choose([], None)
    with pytest.raises(UnknownDevice, match="no default device"):
        choose([CELL], None)


def test_the_device_a_call_came_from():
    assert device_for_endpoint([CELL, PHONE], "PJSIP/userphone") is PHONE
    assert device_for_endpoint([CELL, PHONE], "PJSIP/stranger") is None
