"""/api/devices against the real app and the test's database (SQLite, or PostgreSQL with
HOLDSLAYER_TEST_DATABASE): the settings' devices at the first start, every change, every refusal
with its reason, and calls placed with a device from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import api_without_calls

SIP_PHONE = {"name": "sip_phone", "dial_string": "PJSIP/userphone", "label": "", "default": True}
CELL = {"name": "cell", "dial_string": "PJSIP/+15551234@trunk", "label": "mobile", "default": False}


@pytest.fixture
async def api(tmp_path: Path, corpus, http, database_url):
    async with api_without_calls(tmp_path, http, corpus, database_url) as (call, _):
        yield call


def field_of(body) -> list:
    return [error["loc"] for error in body["detail"]]


async def test_the_settings_devices_are_there_from_the_first_start(api):
    assert await api("GET", "/api/devices") == (200, [SIP_PHONE])
    assert await api("GET", "/api/devices/sip_phone") == (200, SIP_PHONE)


async def test_create_read_replace_change_and_delete(api):
    status, created = await api("POST", "/api/devices", {k: v for k, v in CELL.items() if k != "default"})
    assert (status, created) == (201, CELL)
    assert await api("GET", "/api/devices") == (200, [CELL, SIP_PHONE])

    replaced = {"dial_string": "PJSIP/+15559999@trunk", "label": "new mobile"}
    assert await api("PUT", "/api/devices/cell", replaced) == (200, {**CELL, **replaced})
    assert await api("PUT", "/api/devices/cell", {"name": "cell", "dial_string": "PJSIP/x"}) == (
        200, {**CELL, "dial_string": "PJSIP/x", "label": ""},
    )  # fmt: skip
    status, cell = await api("PATCH", "/api/devices/cell", {"default": True})
    assert (status, cell["default"], cell["dial_string"]) == (200, True, "PJSIP/x")
    assert (await api("GET", "/api/devices/sip_phone"))[1]["default"] is False

    assert await api("DELETE", "/api/devices/sip_phone") == (204, None)
    assert [d["name"] for d in (await api("GET", "/api/devices"))[1]] == ["cell"]


async def test_a_new_device_can_be_made_the_default_as_it_is_created(api):
    status, desk = await api("POST", "/api/devices", {"name": "desk", "dial_string": "PJSIP/desk", "default": True})
    assert (status, desk["default"]) == (201, True)
    assert (await api("GET", "/api/devices/sip_phone"))[1]["default"] is False


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "desk/2", "dial_string": "PJSIP/desk"}, "name"),
        ({"name": "my desk", "dial_string": "PJSIP/desk"}, "name"),
        ({"name": "desk", "dial_string": "desk"}, "dial_string"),
        ({"name": "desk", "dial_string": "PJSIP/my desk"}, "dial_string"),
        ({"name": "desk"}, "dial_string"),
        ({"name": "desk", "dial_string": "PJSIP/desk", "label": "two\nlines"}, "label"),
        ({"name": "desk", "dial_string": "PJSIP/desk", "colour": "red"}, "colour"),
    ],
)
async def test_a_bad_new_device_is_422_naming_the_field(api, body, field):
    status, error = await api("POST", "/api/devices", body)
    assert status == 422
    assert ["body", field] in field_of(error), error
    assert [d["name"] for d in (await api("GET", "/api/devices"))[1]] == ["sip_phone"]


async def test_a_taken_name_is_409(api):
    status, error = await api("POST", "/api/devices", {"name": "sip_phone", "dial_string": "PJSIP/other"})
    assert (status, error["detail"]) == (409, "a device named 'sip_phone' exists; PUT /api/devices/sip_phone changes it")
    assert await api("GET", "/api/devices/sip_phone") == (200, SIP_PHONE)


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/api/devices/fax", None),
        ("PUT", "/api/devices/fax", {"dial_string": "PJSIP/fax"}),
        ("PATCH", "/api/devices/fax", {"label": "x"}),
        ("DELETE", "/api/devices/fax", None),
    ],
)
async def test_an_unknown_device_is_404(api, method, path, body):
    assert await api(method, path, body) == (404, {"detail": "no device named 'fax'"})


async def test_replacing_with_another_name_or_bad_fields_is_422(api):
    status, error = await api("PUT", "/api/devices/sip_phone", {"name": "cell", "dial_string": "PJSIP/userphone"})
    assert status == 422 and field_of(error) == [["body", "name"]]
    assert "a rename is a delete and a create" in error["detail"][0]["msg"]
    status, error = await api("PUT", "/api/devices/sip_phone", {"dial_string": "nope"})
    assert status == 422 and ["body", "dial_string"] in field_of(error)
    status, error = await api("PATCH", "/api/devices/sip_phone", {"name": "cell"})  # a rename is not a change
    assert status == 422 and ["body", "name"] in field_of(error)
    status, error = await api("PATCH", "/api/devices/sip_phone", {"label": "x" * 101})
    assert status == 422 and ["body", "label"] in field_of(error)
    assert await api("GET", "/api/devices/sip_phone") == (200, SIP_PHONE)


async def test_the_default_device_stays_the_default_until_another_is_made_it(api):
    message = "'sip_phone' is the default device: make another device the default instead"
    assert await api("PATCH", "/api/devices/sip_phone", {"default": False}) == (409, {"detail": message})
    assert await api("PUT", "/api/devices/sip_phone", {"dial_string": "PJSIP/userphone", "default": False}) == (
        409, {"detail": message},
    )  # fmt: skip
    status, kept = await api("PUT", "/api/devices/sip_phone", {"dial_string": "PJSIP/desk"})  # default omitted: kept
    assert (status, kept["default"], kept["dial_string"]) == (200, True, "PJSIP/desk")


async def test_the_only_device_and_the_default_device_are_not_deleted(api):
    assert await api("DELETE", "/api/devices/sip_phone") == (
        409, {"detail": "'sip_phone' is the only device: calls need one to ring; add another first"},
    )  # fmt: skip
    await api("POST", "/api/devices", {"name": "cell", "dial_string": "PJSIP/cell"})
    assert await api("DELETE", "/api/devices/sip_phone") == (
        409, {"detail": "'sip_phone' is the default device: make another device the default first"},
    )  # fmt: skip
    assert await api("DELETE", "/api/devices/cell") == (204, None)
    assert await api("GET", "/api/devices") == (200, [SIP_PHONE])


async def test_a_call_names_a_stored_device_or_rings_the_default(api):
    await api("POST", "/api/devices", {"name": "cell", "dial_string": "PJSIP/cell"})
    status, placed = await api("POST", "/api/calls", {"number": "5550199", "device": "cell"})
    assert status == 201
    assert (await api("GET", placed["url"]))[1]["device"] == "cell"
    await api("PATCH", "/api/devices/cell", {"default": True})
    status, placed = await api("POST", "/api/calls", {"number": "5550198"})
    assert status == 201
    assert (await api("GET", placed["url"]))[1]["device"] == "cell"


async def test_a_call_with_an_unknown_device_is_422_with_the_devices_there_are(api):
    status, error = await api("POST", "/api/calls", {"number": "5550199", "device": "fax"})
    assert (status, error["detail"]) == (
        422, [{"loc": ["body", "device"], "msg": "unknown device 'fax'; devices: sip_phone", "type": "value_error"}],
    )  # fmt: skip
    assert await api("GET", "/api/calls") == (200, [])


async def test_devices_made_through_the_api_outlive_a_restart(tmp_path: Path, corpus, http, database_url):
    async with api_without_calls(tmp_path, http, corpus, database_url) as (api, _):
        await api("POST", "/api/devices", {"name": "cell", "dial_string": "PJSIP/cell", "default": True})
        await api("PATCH", "/api/devices/sip_phone", {"dial_string": "PJSIP/desk"})
        before = (await api("GET", "/api/devices"))[1]
    async with api_without_calls(tmp_path, http, corpus, database_url) as (api, _):  # same settings
        assert await api("GET", "/api/devices") == (200, before)
    changed = {"user_devices": {"sip_phone": "PJSIP/userphone", "tablet": "PJSIP/tablet"}}
    async with api_without_calls(tmp_path, http, corpus, database_url, **changed) as (api, _):
        devices = {d["name"]: d for d in (await api("GET", "/api/devices"))[1]}
    # The settings changed: their new device is added; the one they did not change is left as the API made it.
    assert devices["tablet"]["dial_string"] == "PJSIP/tablet"
    assert devices["sip_phone"]["dial_string"] == "PJSIP/desk" and devices["cell"]["default"] is True
