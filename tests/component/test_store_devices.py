"""The user's devices in the store, on the test's database (SQLite, or PostgreSQL with
HOLDSLAYER_TEST_DATABASE): one default always, the rules of a change, and the settings applied at
each start without undoing what the API did."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from app.clock import utc_now
from app.devices import Device, DeviceConflict, InvalidDevice, UnknownDevice
from app.store import Store
from app.store.models import DeviceRow

SETTINGS = {"sip_phone": "PJSIP/userphone", "cell": "PJSIP/+15551234@trunk"}


@pytest.fixture
def store(database_url):
    store = Store(database_url)
    yield store
    store.close()


def names(store: Store) -> list[str]:
    return [d.name for d in store.list_devices()]


def default_of(store: Store) -> str:
    (default,) = [d.name for d in store.list_devices() if d.is_default]
    return default


def test_the_first_device_is_the_default_and_devices_list_by_name(store):
    assert store.list_devices() == []
    first = store.create_device("sip_phone", "PJSIP/userphone", label="Alex's desk phone")
    assert first == Device("sip_phone", "PJSIP/userphone", "Alex's desk phone", is_default=True)
    store.create_device("Cell", "PJSIP/+15551234@trunk")
    store.create_device("attic", "Local/100@internal")
    assert names(store) == ["Cell", "attic", "sip_phone"]  # code point order on every backend
    assert default_of(store) == "sip_phone"
    assert store.get_device("attic") == Device("attic", "Local/100@internal")
    assert store.get_device("nobody") is None and store.get_device("bad/name\x00") is None


def test_a_new_default_takes_over_from_the_old_one(store):
    store.create_device("sip_phone", "PJSIP/userphone")
    store.create_device("cell", "PJSIP/+15551234@trunk", default=True)
    assert default_of(store) == "cell"
    store.update_device("sip_phone", default=True)
    assert default_of(store) == "sip_phone"
    store.update_device("sip_phone", default=True)  # already: nothing changes
    assert default_of(store) == "sip_phone"


def test_creating_refuses_a_taken_name_and_bad_fields(store):
    store.create_device("sip_phone", "PJSIP/userphone")
    with pytest.raises(DeviceConflict) as taken:
        store.create_device("sip_phone", "PJSIP/other")
    assert taken.value.field == "name"
    for fields, field in [(("desk/2", "PJSIP/desk"), "name"), (("desk", "desk"), "dial_string")]:
        with pytest.raises(InvalidDevice) as bad:
            store.create_device(*fields)
        assert bad.value.field == field
    with pytest.raises(InvalidDevice) as bad:
        store.create_device("desk", "PJSIP/desk", label="line\nbreak")
    assert bad.value.field == "label"
    assert names(store) == ["sip_phone"]
    assert store.get_device("sip_phone").dial_string == "PJSIP/userphone"


def test_updating_changes_only_what_is_given(store):
    store.create_device("sip_phone", "PJSIP/userphone", label="desk")
    store.create_device("cell", "PJSIP/+15551234@trunk")
    assert store.update_device("cell", dial_string="PJSIP/+15559999@trunk") == Device("cell", "PJSIP/+15559999@trunk")
    assert store.update_device("cell", label="mobile").dial_string == "PJSIP/+15559999@trunk"
    assert store.get_device("sip_phone") == Device("sip_phone", "PJSIP/userphone", "desk", is_default=True)
    with pytest.raises(UnknownDevice):
        store.update_device("fax", label="x")
    with pytest.raises(UnknownDevice):
        store.update_device("not a name", label="x")
    with pytest.raises(InvalidDevice):
        store.update_device("cell", dial_string="nope")
    with pytest.raises(DeviceConflict, match="default device"):
        store.update_device("sip_phone", default=False)
    assert default_of(store) == "sip_phone"
    assert store.update_device("cell", default=False).is_default is False  # not the default: nothing to undo


def test_the_default_and_the_last_device_cannot_be_deleted(store):
    store.create_device("sip_phone", "PJSIP/userphone")
    with pytest.raises(DeviceConflict, match="only device"):
        store.delete_device("sip_phone")
    store.create_device("cell", "PJSIP/+15551234@trunk")
    with pytest.raises(DeviceConflict, match="default device"):
        store.delete_device("sip_phone")
    with pytest.raises(UnknownDevice):
        store.delete_device("fax")
    store.delete_device("cell")
    assert names(store) == ["sip_phone"]
    store.create_device("cell", "PJSIP/+15551234@trunk", default=True)
    store.delete_device("sip_phone")
    assert names(store) == ["cell"] and default_of(store) == "cell"


def test_the_database_itself_allows_one_default_only(store):
    store.create_device("sip_phone", "PJSIP/userphone")
    now = utc_now()
    with store.engine.begin() as connection, pytest.raises(IntegrityError):
        connection.execute(
            insert(DeviceRow).values(
                name="cell", dial_string="PJSIP/cell", label="", is_default=True, created_at=now, updated_at=now
            )
        )
    assert names(store) == ["sip_phone"]


def test_devices_outlive_the_process(database_url):
    first = Store(database_url)
    first.create_device("sip_phone", "PJSIP/userphone")
    first.create_device("cell", "PJSIP/+15551234@trunk", label="mobile", default=True)
    first.close()
    again = Store(database_url)
    try:
        assert again.list_devices() == [
            Device("cell", "PJSIP/+15551234@trunk", "mobile", is_default=True),
            Device("sip_phone", "PJSIP/userphone"),
        ]
    finally:
        again.close()


# ---------------------------------------------------------------------------- the settings, at every start


def test_the_first_start_stores_the_settings_devices(store):
    changes = store.apply_device_settings(SETTINGS, "sip_phone")
    assert (sorted(changes.added), changes.default) == (["cell", "sip_phone"], "sip_phone")
    assert store.list_devices() == [
        Device("cell", "PJSIP/+15551234@trunk"),
        Device("sip_phone", "PJSIP/userphone", is_default=True),
    ]


def test_unchanged_settings_leave_what_the_api_did(store):
    store.apply_device_settings(SETTINGS, "sip_phone")
    store.update_device("sip_phone", dial_string="PJSIP/newdesk")
    store.create_device("desk", "PJSIP/desk", default=True)
    store.delete_device("cell")
    before = store.list_devices()

    changes = store.apply_device_settings(SETTINGS, "sip_phone")  # the next start, same settings
    assert not changes
    assert store.list_devices() == before


def test_what_changed_in_the_settings_is_applied_at_the_next_start(store):
    store.apply_device_settings(SETTINGS, "sip_phone")
    store.create_device("desk", "PJSIP/desk", label="from the API")
    changed = {"sip_phone": "PJSIP/userphone2", "tablet": "PJSIP/tablet"}  # cell removed, tablet added

    changes = store.apply_device_settings(changed, "tablet")
    assert (changes.added, changes.changed, changes.removed, changes.default) == (["tablet"], ["sip_phone"], ["cell"], "tablet")
    assert store.list_devices() == [
        Device("desk", "PJSIP/desk", "from the API"),  # not the settings': untouched
        Device("sip_phone", "PJSIP/userphone2"),
        Device("tablet", "PJSIP/tablet", is_default=True),
    ]


def test_a_device_removed_from_the_settings_stays_while_it_is_the_default(store):
    store.apply_device_settings(SETTINGS, "sip_phone")
    store.update_device("cell", default=True)  # through the API
    changes = store.apply_device_settings({"sip_phone": "PJSIP/userphone"}, "sip_phone")
    assert changes.kept == ["cell"] and changes.removed == []
    assert default_of(store) == "cell"


def test_settings_that_newly_name_a_deleted_device_the_default_bring_it_back(store):
    store.apply_device_settings(SETTINGS, "sip_phone")
    store.delete_device("cell")  # through the API
    changes = store.apply_device_settings(SETTINGS, "cell")
    assert changes.added == ["cell"] and changes.default == "cell"
    assert store.get_device("cell") == Device("cell", "PJSIP/+15551234@trunk", is_default=True)


def test_bad_settings_change_nothing(store):
    with pytest.raises(InvalidDevice):
        store.apply_device_settings({"sip_phone": "nodialstring"}, "sip_phone")
    with pytest.raises(DeviceConflict):
        store.apply_device_settings(SETTINGS, "pager")
    assert store.list_devices() == []
