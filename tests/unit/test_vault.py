"""The user data vault: permissions, the never-enter list, rendering as DTMF or speech, masking."""

from __future__ import annotations

import logging

import pytest

from app.ivr.menu import parse_menu
from app.ivr.vault import (
    NEVER_ENTER_FIELDS,
    DisclosureRefused,
    MissingUserData,
    UserDataVault,
    VaultError,
    describe_field,
    number_words,
    parse_date,
    question_for,
)

SECRETS = {
    "account_number": "8812-3344-01",
    "zip_code": "94107",
    "date_of_birth": "1980-03-05",
    "last_four_ssn": "6789",
    "callback_number": "(415) 555-0199",
    "pin": "4321",
    "name": "Ada Lovelace",
    "member_id": "XJ4471",
}


@pytest.fixture
def vault() -> UserDataVault:
    return UserDataVault(SECRETS, permissions={"zip_code": "speech", "callback_number": "dtmf"})


def test_available_lists_names_and_modes_never_values(vault):
    available = vault.available()
    assert available == {
        "account_number": "both",
        "callback_number": "dtmf",
        "date_of_birth": "both",
        "last_four_ssn": "both",
        "member_id": "both",
        "name": "speech",  # a name cannot be keyed
        "pin": "dtmf",  # a PIN is not spoken aloud unless the user says so
        "zip_code": "speech",
    }
    assert not set(SECRETS.values()) & set(available.values())


def test_permissions(vault):
    assert vault.can_disclose("account_number", "dtmf") and vault.can_disclose("account_number", "speech")
    assert vault.can_disclose("zip_code", "speech") and not vault.can_disclose("zip_code", "dtmf")
    assert vault.can_disclose("pin", "dtmf") and not vault.can_disclose("pin", "speech")
    assert not vault.can_disclose("policy_number", "dtmf")


def test_never_permission_hides_a_value():
    vault = UserDataVault({"member_id": "A1", "zip_code": "94107"}, permissions={"member_id": "never"})
    assert "member_id" not in vault.available()
    assert not vault.can_disclose("member_id", "dtmf")
    with pytest.raises(DisclosureRefused):
        vault.render("member_id", "dtmf")


@pytest.mark.parametrize("field", sorted(NEVER_ENTER_FIELDS))
def test_never_enter_fields_are_refused_even_when_given(field):
    vault = UserDataVault({field: "4111111111111111", "zip_code": "94107"}, permissions={field: "both"})
    assert vault.refused == [field]
    assert field not in vault and field not in vault.available()
    assert not vault.can_disclose(field, "dtmf")
    assert not vault.missing(field)  # never asked of the user either
    with pytest.raises(DisclosureRefused):
        vault.render(field, "dtmf")
    assert vault.put(field, "123") is False


def test_a_custom_never_enter_list():
    vault = UserDataVault({"member_id": "A1"}, never_enter={"member_id"})
    assert vault.refused == ["member_id"]
    assert vault.is_never_enter("member_id") and not vault.is_never_enter("ssn")


def test_last_four_fields_hold_four_digits_only():
    with pytest.raises(ValueError, match="exactly four digits"):
        UserDataVault({"last_four_ssn": "123-45-6789"})
    with pytest.raises(ValueError):
        UserDataVault({"card_last_four": "4111111111111111"})


@pytest.mark.parametrize(
    ("name", "value", "permission"), [("bad!name", "1", None), ("zip_code", "  ", None), ("zip_code", "1", "sometimes")]
)
def test_put_validates(name, value, permission):
    with pytest.raises(ValueError):
        UserDataVault().put(name, value, permission)


def test_aliases_reach_the_vault_names():
    vault = UserDataVault({"ZIP": "94107", "dob": "1980-03-05", "Phone Number": "4155550199"})
    assert sorted(vault.available()) == ["callback_number", "date_of_birth", "zip_code"]
    assert vault.render("zip", "dtmf") == "94107"
    assert "zip_code" in vault and "postal_code" in vault
    refused = UserDataVault({"social_security_number": "123456789", "credit_card_number": "4111111111111111"})
    assert refused.refused == ["ssn", "card_number"] and len(refused) == 0
    assert refused.is_never_enter("Social Security Number")


def test_missing_and_answering(vault):
    assert vault.missing("policy_number")
    assert not vault.missing("account_number")
    vault.put("policy_number", "PN-77", "dtmf")
    assert not vault.missing("policy_number")
    assert vault.render("policy_number", "dtmf") == "7677"  # P=7, N=6 on the keypad
    vault.forget("policy_number")
    assert vault.missing("policy_number")
    with pytest.raises(MissingUserData):
        vault.render("policy_number", "dtmf")


# ---------------------------------------------------------------------------- rendering


def test_dtmf_digits_with_the_terminator(vault):
    assert vault.render("account_number", "dtmf") == "8812334401"
    assert vault.render("account_number", "dtmf", terminator="#") == "8812334401#"
    assert vault.render("callback_number", "dtmf") == "4155550199"
    assert vault.render("member_id", "dtmf") == "954471"  # letters on the keypad (E.161)


def test_speech_digits_one_by_one(vault):
    assert vault.render("zip_code", "speech") == "nine four one zero seven"
    assert vault.render("account_number", "speech") == "eight eight one two three three four four zero one"
    assert vault.render("member_id", "speech") == "X J four four seven one"
    assert vault.render("name", "speech") == "Ada Lovelace"


def test_last_digits_when_the_menu_asks_for_a_length():
    vault = UserDataVault({"callback_number": "4155550199"})
    assert vault.render("callback_number", "dtmf", length=4) == "0199"
    assert vault.render("callback_number", "speech", length=4) == "zero one nine nine"


@pytest.mark.parametrize(
    ("layout", "dtmf"),
    [("MMDDYYYY", "03051980"), ("MMDDYY", "030580"), ("YYYYMMDD", "19800305"), ("DDMMYYYY", "05031980")],
)
def test_dates_in_the_layout_the_menu_wants(vault, layout, dtmf):
    assert vault.render("date_of_birth", "dtmf", date_format=layout) == dtmf


def test_dates_default_and_spoken(vault):
    assert vault.render("date_of_birth", "dtmf", terminator="#") == "03051980#"
    assert vault.render("date_of_birth", "speech") == "March fifth, nineteen eighty"
    for value, spoken in (("2005-11-22", "November twenty second, two thousand five"),
                          ("12/31/2012", "December thirty first, twenty twelve"),
                          ("July 4, 1776", "July fourth, seventeen seventy six")):  # fmt: skip
        assert UserDataVault({"date_of_birth": value}).render("date_of_birth", "speech") == spoken


def test_date_input_formats():
    expected = parse_date("1980-03-05")
    for text in ("03/05/1980", "3/5/80", "March 5, 1980", "March 5th 1980", "5 March 1980", "03051980"):
        assert parse_date(text) == expected, text
    with pytest.raises(VaultError):
        parse_date("someday")


def test_render_refuses_a_mode_the_permission_does_not_allow(vault):
    with pytest.raises(DisclosureRefused, match="permission: speech"):
        vault.render("zip_code", "dtmf")
    with pytest.raises(ValueError):
        vault.render("zip_code", "fax")


def test_render_follows_a_parsed_request(vault):
    (request,) = parse_menu(
        "Please enter your date of birth as a six digit number followed by the pound key"
    ).data_requests
    rendered = vault.render(
        request.field, "dtmf", terminator=request.terminator, date_format=request.date_format, length=request.length
    )
    assert rendered == "030580#"


def test_number_words():
    assert [number_words(n) for n in (0, 7, 13, 40, 42, 100, 305, 1999, 2024)] == [
        "zero", "seven", "thirteen", "forty", "forty two", "one hundred", "three hundred five",
        "one thousand nine hundred ninety nine", "two thousand twenty four",
    ]  # fmt: skip


# ---------------------------------------------------------------------------- masking


def test_values_never_appear_in_reprs_or_logs(vault, caplog):
    texts = [repr(vault), str(vault), repr(vault._entries["pin"]), str(list(vault._entries.values()))]
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("vault: %s %r", vault, vault)
    texts.append(caplog.text)
    for text in texts:
        for value in SECRETS.values():
            assert value not in text
    assert "account_number:both" in repr(vault)
    assert "'***'" in repr(vault._entries["pin"])


def test_descriptions_and_questions():
    assert describe_field("zip_code") == "ZIP code"
    assert describe_field("frequent_flyer_number") == "frequent flyer number"
    assert describe_field("ssn") == "Social Security number"
    assert "ZIP code" in question_for("zip_code")
