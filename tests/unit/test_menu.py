"""Menu understanding: options, data requests, completeness, hold messages and repeats from transcripts."""

from __future__ import annotations

import gzip

import pytest

from app.ivr.menu import (
    GIVE_UP_SILENCE_SECONDS,
    SETTLED_SILENCE_SECONDS,
    Menu,
    OptionKind,
    clean_label,
    key_symbol,
    normalize_text,
    parse_menu,
    same_menu,
)

SETTLED = SETTLED_SILENCE_SECONDS + 0.5


def keys_and_labels(menu: Menu) -> list[tuple[str | None, str]]:
    return [(option.key, option.label) for option in menu.options]


@pytest.fixture(scope="module")
def prompts(corpus) -> dict[str, str]:
    """The published transcripts of the Asterisk prompts (name -> text)."""
    texts: dict[str, str] = {}
    with gzip.open(corpus.transcripts_file, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            name, sep, text = line.partition(":")
            if sep:
                texts[name.strip()] = text.strip()
    return texts


# ---------------------------------------------------------------------------- option shapes


@pytest.mark.parametrize(
    ("transcript", "expected"),
    [
        ("Press 1 for billing.", [("1", "billing")]),
        ("For billing, press 1.", [("1", "billing")]),
        ("for billing press one", [("1", "billing")]),
        ("press one for billing press two for technical support", [("1", "billing"), ("2", "technical support")]),
        ("for billing press one for technical support press two", [("1", "billing"), ("2", "technical support")]),
        ("Press 1, for billing. Press 2, for sales.", [("1", "billing"), ("2", "sales")]),
        ("To speak with a representative press 0", [("0", "speak with a representative")]),
        ("If you are calling about an existing order, press 2.", [("2", "existing order")]),
        ("if you're calling about your bill press 3", [("3", "bill")]),
        ("If you'd like to make a payment, press 4.", [("4", "make a payment")]),
        (
            "To pay your bill, press 1, to report an outage, press 2",
            [("1", "pay your bill"), ("2", "report an outage")],
        ),
        (
            "Press 1 to send this message, or 2 to add another recipient.",
            [("1", "send this message"), ("2", "add another recipient")],
        ),
        ("PRESS 5 FOR CLAIMS", [("5", "claims")]),
        ("Thank you for calling Acme press 1 for billing press 2 for sales", [("1", "billing"), ("2", "sales")]),
        ("Dial 2 now for the front desk.", [("2", "front desk")]),
        ("Please select 3 for pharmacy", [("3", "pharmacy")]),
        ("For the pharmacy, press the number 3 on your keypad now.", [("3", "pharmacy")]),
        ("To hear your balance press nine", [("9", "hear your balance")]),
        ("press seven for store hours", [("7", "store hours")]),
    ],
)
def test_option_shapes(transcript, expected):
    assert keys_and_labels(parse_menu(transcript)) == expected


@pytest.mark.parametrize(
    ("transcript", "key"),
    [
        ("to repeat these options press star", "*"),
        ("to repeat these options press the star key", "*"),
        ("to repeat this menu press asterisk", "*"),
        ("when you are finished press pound", "#"),
        ("to finish press the pound key", "#"),
        ("to finish press hash", "#"),
        ("to finish press #", "#"),
        ("to finish press the number sign", "#"),
        ("for an operator press zero", "0"),
        ("for an operator press oh", "0"),
        ("para espanol oprima nueve", "9"),
        ("para español, marque el 9", "9"),
        ("to execute an echo test dial 600", "600"),
        ("for the demo dial five hundred", "500"),
    ],
)
def test_key_words_become_keys(transcript, key):
    assert parse_menu(transcript).keys == (key,)


def test_key_symbol():
    assert [key_symbol(word) for word in ("one", "zero", "nueve", "pound", "hash", "star", "six hundred", "12")] == [
        "1", "0", "9", "#", "#", "*", "600", "12",
    ]  # fmt: skip


def test_stt_noise_no_punctuation_lowercase_digits_and_words_mixed():
    menu = parse_menu("thank you for calling northwind energy for billing press 1 to report an outage press two "
                      "for new service press 3 to speak with a customer service representative press zero")  # fmt: skip
    assert keys_and_labels(menu) == [
        ("1", "billing"),
        ("2", "report an outage"),
        ("3", "new service"),
        ("0", "speak with a customer service representative"),
    ]
    assert [o.kind for o in menu.options] == [OptionKind.TOPIC] * 3 + [OptionKind.OPERATOR]


def test_accents_and_curly_quotes_are_normalised():
    assert normalize_text("Para Español, “oprima” 9…") == "para espanol, oprima 9"


def test_english_and_spanish_without_punctuation():
    menu = parse_menu("press 1 for english para espanol oprima 2")
    assert [(o.key, o.label, o.language) for o in menu.options] == [("1", "english", "en"), ("2", "espanol", "es")]


def test_at_any_time_does_not_hide_the_label():
    (option,) = parse_menu("You can also press 0 at any time to speak to an agent.").options
    assert (option.key, option.label, option.kind) == ("0", "speak to an agent", OptionKind.OPERATOR)


def test_emergency_numbers_are_never_options():
    menu = parse_menu("If this is a medical emergency, hang up and dial 911. For billing press 3.")
    assert menu.keys == ("3",)
    assert parse_menu("if you have an emergency please hang up and dial 9 1 1").options == ()


def test_mixed_styles_in_one_menu():
    menu = parse_menu("Press 1 for billing. For technical support, press 2. Press 3 to hear our hours.")
    assert keys_and_labels(menu) == [("1", "billing"), ("2", "technical support"), ("3", "hear our hours")]


def test_menu_read_twice_in_one_transcript_keeps_one_option_per_key():
    once = "press 1 for billing. press 2 for sales. "
    menu = parse_menu(once + "to repeat these options press 9. " + once)
    assert keys_and_labels(menu) == [("1", "billing"), ("2", "sales"), ("9", "repeat these options")]


def test_label_cleaning():
    assert clean_label("for billing, say billing or") == "billing"
    assert clean_label("if you would like to make a payment") == "make a payment"
    assert clean_label("if you have a question about your bill") == "bill"
    assert clean_label("to speak with a representative now") == "speak with a representative"


# ---------------------------------------------------------------------------- spoken options


def test_say_or_press():
    menu = parse_menu("Say billing or press 1. Say technical support or press 2.")
    assert [(o.key, o.spoken, o.label) for o in menu.options] == [
        ("1", "billing", "billing"),
        ("2", "technical support", "technical support"),
    ]


def test_label_say_or_press():
    menu = parse_menu("For billing, say billing or press 1. For sales, say sales or press 2.")
    assert [(o.key, o.spoken, o.label) for o in menu.options] == [("1", "billing", "billing"), ("2", "sales", "sales")]


def test_press_or_say():
    menu = parse_menu("For claims press 1 or say claims. For anything else press 2 or say other.")
    assert [(o.key, o.spoken, o.label) for o in menu.options] == [
        ("1", "claims", "claims"),
        ("2", "other", "anything else"),
    ]
    assert menu.options[1].kind is OptionKind.OTHER


def test_speech_only_menu_lists_spoken_options():
    menu = parse_menu(
        "Please tell me the reason for your call. You can say things like billing, technical support, or new service."
    )
    assert [(o.key, o.spoken) for o in menu.options] == [
        (None, "billing"),
        (None, "technical support"),
        (None, "new service"),
    ]
    assert menu.open_question


def test_say_agent_at_any_time_is_an_operator_option():
    menu = parse_menu("Press 1 for billing. You can say agent at any time.")
    assert (None, "agent", OptionKind.OPERATOR) in [(o.key, o.spoken, o.kind) for o in menu.options]


def test_what_you_say_is_not_an_option():
    assert parse_menu("In this mode everything you say will be repeated back to you.").options == ()


# ---------------------------------------------------------------------------- kinds and languages


@pytest.mark.parametrize(
    ("transcript", "kind", "language"),
    [
        ("para espanol oprima nueve", OptionKind.LANGUAGE, "es"),
        ("for service in spanish press 9", OptionKind.LANGUAGE, "es"),
        ("pour le francais, appuyez sur le 8", OptionKind.LANGUAGE, "fr"),
        ("for english press 1", OptionKind.LANGUAGE, "en"),
        ("press 1 for a callback", OptionKind.CALLBACK, None),
        ("to have us call you back when an agent is available press 1", OptionKind.CALLBACK, None),
        ("to repeat these options press 9", OptionKind.REPEAT, None),
        ("to hear these options again press star", OptionKind.REPEAT, None),
        ("main menu press star", OptionKind.BACK, None),
        ("to return to the previous menu press pound", OptionKind.BACK, None),
        ("for all other questions press 4", OptionKind.OTHER, None),
        ("for anything else press 5", OptionKind.OTHER, None),
        ("to speak with a customer advocate press two", OptionKind.OPERATOR, None),
        ("for an operator press zero", OptionKind.OPERATOR, None),
        ("to speak with someone in customer service press 0", OptionKind.OPERATOR, None),
        ("to speak with a billing specialist press 2", OptionKind.TOPIC, None),
        ("press 0", OptionKind.OPERATOR, None),
    ],
)
def test_option_kinds(transcript, kind, language):
    (option,) = parse_menu(transcript).options
    assert (option.kind, option.language) == (kind, language)


# ---------------------------------------------------------------------------- data requests


def test_account_number_followed_by_pound():
    (request,) = parse_menu("Please enter your account number followed by the pound key.").data_requests
    assert (request.field, request.modes, request.terminator, request.optional) == (
        "account_number", frozenset({"dtmf"}), "#", False,
    )  # fmt: skip


def test_say_or_enter_zip_code():
    (request,) = parse_menu("please say or enter your ZIP code").data_requests
    assert (request.field, request.modes) == ("zip_code", frozenset({"dtmf", "speech"}))


def test_spoken_request():
    (request,) = parse_menu("Please say your member ID.").data_requests
    assert (request.field, request.modes) == ("member_id", frozenset({"speech"}))


@pytest.mark.parametrize(
    ("transcript", "field", "length"),
    [
        ("Please enter the last four digits of your social security number.", "last_four_ssn", 4),
        ("enter the last 4 of your social", "last_four_ssn", 4),
        ("Please enter the last four digits of the card number.", "card_last_four", 4),
        ("Please enter your five digit zip code", "zip_code", 5),
        ("Enter your ten digit phone number starting with the area code", "callback_number", 10),
        ("Please enter the phone number where we can reach you", "callback_number", None),
        ("Please enter your member ID number", "member_id", None),
        ("Please enter your PIN followed by pound", "pin", None),
        ("Please enter your personal identification number followed by the pound, or hash key.", "pin", None),
        ("please enter your social security number", "ssn", None),
        ("please enter your credit card number", "card_number", None),
        ("Please enter your password followed by the pound key.", "password", None),
        ("What is your date of birth?", "date_of_birth", None),
        ("Please enter your policy number.", "policy_number", None),
        ("At the tone, please say your name.", "name", None),
    ],
)
def test_data_request_fields(transcript, field, length):
    requests = parse_menu(transcript).data_requests
    assert [(r.field, r.length) for r in requests] == [(field, length)]


@pytest.mark.parametrize(
    ("transcript", "layout"),
    [
        ("Please enter your date of birth", "MMDDYYYY"),
        ("Enter your date of birth as a two digit month, two digit day and four digit year.", "MMDDYYYY"),
        ("Enter your date of birth as a six digit number", "MMDDYY"),
        ("Using the keypad, enter your birth date as a four digit year, then a two digit month and day", "YYYYMMDD"),
        ("Enter your date of birth: the day, the month, then the year", "DDMMYYYY"),
    ],
)
def test_date_layouts(transcript, layout):
    (request,) = parse_menu(transcript).data_requests
    assert (request.field, request.date_format) == ("date_of_birth", layout)


def test_optional_request_with_its_way_out():
    menu = parse_menu("If you know your account number, please enter it now. Otherwise, press pound.")
    (request,) = menu.data_requests
    assert (request.field, request.optional) == ("account_number", True)
    assert keys_and_labels(menu) == [("#", "otherwise")]


def test_optional_because_of_the_next_sentence():
    menu = parse_menu("Please enter your ZIP code. If you don't know it, press star.")
    (request,) = menu.data_requests
    assert (request.field, request.optional) == ("zip_code", True)
    assert menu.keys == ("*",)


def test_the_field_named_in_the_sentence_before():
    (request,) = parse_menu("If you have your member ID. Please enter it now.").data_requests
    assert (request.field, request.optional) == ("member_id", True)


def test_an_example_of_an_entry_is_not_a_spoken_option():
    menu = parse_menu(
        "Please enter or say your date of birth. For example, for January 5th, 1980, enter 0 1 0 5 1 9 8 0."
    )
    assert menu.options == ()
    assert [r.field for r in menu.data_requests] == ["date_of_birth"]


def test_an_option_to_enter_a_number_is_not_a_request():
    menu = parse_menu("Press 1 to enter your account number. Press 2 for sales.")
    assert menu.data_requests == ()
    assert menu.keys == ("1", "2")


def test_have_it_ready_is_not_a_request():
    menu = parse_menu("Please have your account number ready. Press 1 for billing.")
    assert menu.data_requests == ()


def test_request_with_an_operator_way_out():
    menu = parse_menu("Enter your account number followed by the pound key, or press 0 for an operator.")
    assert [r.field for r in menu.data_requests] == ["account_number"]
    assert keys_and_labels(menu) == [("0", "operator")]  # the terminator is not an option


# ---------------------------------------------------------------------------- completeness


def test_a_half_read_menu_is_not_complete_even_after_a_pause():
    assert not parse_menu("press 1 for billing. press 2 for", SETTLED).complete
    assert not parse_menu("For billing press 1. For sales", SETTLED).complete


def test_a_half_read_menu_is_complete_once_the_menu_clearly_waits():
    assert parse_menu("press 1 for billing. press 2 for", GIVE_UP_SILENCE_SECONDS).complete


def test_a_finished_option_needs_a_settled_pause():
    transcript = "press 1 for billing. press 2 for sales."
    assert not parse_menu(transcript, 0.4).complete  # the pause between two options
    assert not parse_menu(transcript).complete  # silence unknown
    assert parse_menu(transcript, SETTLED).complete


@pytest.mark.parametrize(
    "transcript",
    [
        "press 1 for billing. to repeat these options press 9.",
        "press 1 for billing. press 2 for sales. or stay on the line for an operator.",
        "press 1 for billing. press 2 for sales. for an operator press zero.",
        "press 1 for billing. press 2 for sales. to return to the main menu press star",
        "for billing press 1. for all other questions press 4",
    ],
)
def test_closing_phrases_complete_the_menu_at_once(transcript):
    assert parse_menu(transcript, 0.0).complete


def test_an_operator_option_in_the_middle_is_not_the_end():
    assert not parse_menu("for an operator press zero. for billing press 1.", 0.3).complete


# ---------------------------------------------------------------------------- hold, invalid, human, speech


@pytest.mark.parametrize(
    "transcript",
    [
        "All of our representatives are currently busy. Please stay on the line.",
        "Your call is important to us. Please continue to hold.",
        "Calls will be answered in the order they were received.",
        "The estimated wait time is 12 minutes.",
        "We are experiencing higher than normal call volume.",
        "You are caller number 4.",
        "Thank you for your patience.",
        "All of our agents are assisting other customers. To receive a callback, press 1.",
    ],
)
def test_hold_messages(transcript):
    menu = parse_menu(transcript, SETTLED)
    assert menu.is_hold_message


def test_a_hold_message_may_offer_a_callback():
    menu = parse_menu(
        "All of our agents are assisting other customers. To receive a callback, press 1. Or stay on the line."
    )
    assert menu.is_hold_message
    assert [(o.key, o.kind) for o in menu.options] == [("1", OptionKind.CALLBACK)]


@pytest.mark.parametrize(
    "transcript",
    [
        "press 1 for billing. or stay on the line to speak with a representative.",
        "please listen carefully as our menu options have changed. press 1 for billing, press 2 for sales.",
        "to speak with the next available representative press 0",
    ],
)
def test_menus_with_hold_words_are_not_hold_messages(transcript):
    assert not parse_menu(transcript, SETTLED).is_hold_message


@pytest.mark.parametrize(
    "transcript",
    [
        "That is not a valid option. Please try again.",
        "I'm sorry, I didn't understand.",
        "Invalid entry.",
        "I am sorry, that's not a valid extension.",
        "We did not receive a response.",
    ],
)
def test_invalid_input_notices(transcript):
    assert parse_menu(transcript).invalid_input


def test_open_question():
    assert parse_menu("Briefly tell me why you're calling.").open_question
    assert parse_menu("In a few words, what are you calling about?").open_question
    assert parse_menu("Welcome to Acme. How can I help you today?").open_question


def test_sounds_human():
    assert parse_menu("Thank you for calling Acme, this is Sarah, how may I help you?").sounds_human
    assert parse_menu("hi my name is dave how can i help").sounds_human
    assert not parse_menu("Hi, this is Ava, Acme's virtual assistant. How can I help you?").sounds_human
    assert not parse_menu("How can I help you today?").sounds_human


# ---------------------------------------------------------------------------- repeats


def test_same_menu_despite_stt_noise():
    a = parse_menu("press 1 for billing. press 2 for technical support. press 3 for sales.")
    b = parse_menu("Press one for billing, press two for tech support, press three for sales")
    assert same_menu(a, b)


def test_a_cut_hearing_is_the_same_menu():
    full = parse_menu("press 1 for billing. press 2 for technical support. press 3 for sales.")
    cut = parse_menu("press 1 for billing. press 2 for technical support")
    assert same_menu(full, cut)


def test_same_menu_after_an_invalid_notice():
    menu = parse_menu("for billing press 1. for sales press 2.")
    again = parse_menu("That is not a valid option. For billing press 1. For sales press 2.")
    assert same_menu(menu, again)


def test_different_menus():
    main = parse_menu("press 1 for billing. press 2 for technical support. press 3 for sales.")
    sub = parse_menu("press 1 to pay your bill. press 2 to hear your balance. press 3 for billing questions.")
    assert not same_menu(main, sub)
    assert not same_menu(parse_menu("Please enter your account number."), parse_menu("Please enter your ZIP code."))


def test_same_prompt_without_options():
    a = parse_menu("Briefly tell me why you're calling.")
    assert same_menu(a, parse_menu("briefly tell me why you are calling"))
    assert not same_menu(a, parse_menu("All of our representatives are busy."))


# ---------------------------------------------------------------------------- the Asterisk prompts


def test_asterisk_basic_pbx_main_menu(prompts):
    menu = parse_menu(prompts["basic-pbx-ivr-main"], SETTLED)
    assert keys_and_labels(menu) == [
        ("1", "establish a sales partnership"),
        ("2", "speak with a customer advocate"),
        ("3", "accounting and other receivables"),
        ("4", "company directory"),
        ("0", "operator"),
    ]
    assert [o.kind for o in menu.options] == [OptionKind.TOPIC, OptionKind.OPERATOR, OptionKind.TOPIC,
                                              OptionKind.TOPIC, OptionKind.OPERATOR]  # fmt: skip
    assert menu.complete and not menu.is_hold_message and menu.data_requests == ()
    # the operator option ends it: complete without waiting for a pause
    assert parse_menu(prompts["basic-pbx-ivr-main"], 0.0).complete


def test_asterisk_demo_instructions(prompts):
    menu = parse_menu(prompts["demo-instruct"])
    found = dict(keys_and_labels(menu))
    assert found["2"] == "learn more technical information about asterisk"
    assert found["500"].startswith("attempt an inter asterisk exchange")
    assert found["600"] == "execute an echo test"
    assert found["#"] == "disconnect from the pbx"


def test_asterisk_directory_and_voicemail_menus(prompts):
    assert keys_and_labels(parse_menu(prompts["dir-instr"])) == [
        ("1", "this is the person you are looking for"),
        ("*", "otherwise"),
    ]
    assert keys_and_labels(parse_menu(prompts["vm-msginstruct"])) == [
        ("6", "hear the next message"),
        ("5", "repeat this message"),
        ("4", "hear the previous message"),
        ("0", "delete or undelete this message"),
        ("#", "quit voicemail"),
    ]
    options = parse_menu(prompts["vm-options"]).options
    assert [o.key for o in options] == ["1", "2", "3", "4", "5", "*"]
    assert options[-1].kind is OptionKind.BACK
    assert keys_and_labels(parse_menu(prompts["vm-helpexit"])) == [("*", "help"), ("#", "exit")]
    assert keys_and_labels(parse_menu(prompts["vm-saveoper"])) == [("1", "accept this recording")]
    assert parse_menu(prompts["vm-reachoper"]).options[0].kind is OptionKind.OPERATOR


def test_asterisk_list_menu(prompts):
    menu = parse_menu(prompts["conf-adminmenu"])
    assert [o.key for o in menu.options] == ["1", "2", "3", "4", "7", "8"]
    assert menu.option_for_key("8").label == "exit"


def test_asterisk_cut_prompts_are_incomplete(prompts):
    assert not parse_menu(prompts["vm-onefor"], SETTLED).complete  # "Press 1 for"
    assert not parse_menu(prompts["vm-onefor-full"], SETTLED).complete  # "Press one to listen to ..."


def test_asterisk_data_requests(prompts):
    expected = {
        "agent-user": ("agent_number", None),
        "vm-newpassword": ("password", "#"),
        "confbridge-pin": ("pin", "#"),
        "conf-getpin": ("pin", None),
        "privacy-prompt": ("callback_number", None),
        "priv-recordintro": ("name", None),
    }
    for name, (field, terminator) in expected.items():
        requests = parse_menu(prompts[name]).data_requests
        if field == "agent_number":
            assert requests == (), name  # not a field the vault knows
            continue
        assert [(r.field, r.terminator) for r in requests] == [(field, terminator)], name


def test_asterisk_hold_and_invalid_prompts(prompts):
    for name in ("queue-periodic-announce", "queue-youarenext", "queue-thankyou", "tt-allbusy", "pls-hold-while-try"):
        assert parse_menu(prompts[name], SETTLED).is_hold_message, name
    for name in ("pbx-invalid", "pm-invalid-option", "vm-sorry", "conf-errormenu", "confbridge-invalid"):
        assert parse_menu(prompts[name]).invalid_input, name
    assert not parse_menu(prompts["basic-pbx-ivr-main"]).invalid_input


def test_speech_menu_with_examples():
    menu = parse_menu(
        "Welcome to Skyway Airlines. In a few words, tell me why you're calling. "
        "For example, you can say book a flight, baggage, or flight status."
    )
    assert menu.open_question
    assert [(o.key, o.spoken) for o in menu.options] == [
        (None, "book a flight"),
        (None, "baggage"),
        (None, "flight status"),
    ]


def test_menu_helpers():
    menu = parse_menu("Press 1 for billing. For an operator press 0. To repeat press 9.")
    assert menu.keys == ("1", "0", "9")
    assert menu.option_for_key("0").kind is OptionKind.OPERATOR
    assert menu.option_for_key("5") is None
    assert [o.key for o in menu.options_of_kind(OptionKind.REPEAT)] == ["9"]
    assert not menu.is_empty
    empty = parse_menu("", 10.0)
    assert empty.is_empty and empty.options == () and not empty.is_hold_message


# Speech-to-text punctuates where the voice pauses: the same label-first menu, as Whisper wrote it
# on two calls, must read the same.
WHISPER_ACME = (
    "Thank you for calling Super Awesome Company, Waldo's Premier Provider of the Perfect Products. If you know "
    "your party's extension, you may dial it at any time, to establish a sales partnership, Press 1, to speak with "
    "a customer advocate, Press 2, for accounting, and other receivables. Press 3. For a company directory, press 4. "
    "For an operator, press 0."
)


@pytest.mark.parametrize(
    "transcript",
    [WHISPER_ACME, WHISPER_ACME.replace(", Press 1, to", ". Press 1. To").replace(", Press 2, for", ". Press 2. For")],
    ids=["commas", "full stops"],
)
def test_label_first_menu_with_pauses_punctuated_anywhere(transcript):
    assert keys_and_labels(parse_menu(transcript, 2.0)) == [
        ("1", "establish a sales partnership"),
        ("2", "speak with a customer advocate"),
        ("3", "accounting and other receivables"),
        ("4", "company directory"),
        ("0", "operator"),
    ]


def test_otherwise_after_a_callback_offer_is_not_its_label():
    # as Whisper wrote it: no comma before "Otherwise", so it reads like "press one otherwise ..."
    menu = parse_menu(
        "All of our representatives are currently busy. to receive a call back instead of waiting press one "
        "Otherwise, please stay on the line.",
        2.0,
    )
    assert keys_and_labels(menu) == [("1", "receive a call back instead of waiting")]
    assert menu.options[0].kind is OptionKind.CALLBACK and menu.is_hold_message


@pytest.mark.parametrize(
    ("transcript", "stays"),
    [
        ("To pay your bill, press 1. For anything else, please stay on the line.", True),
        ("For billing, press 1. For all other questions, please hold for the next available agent.", True),
        ("Please enter your account number. If you don't know it, please hold.", True),
        ("For billing, press 1. For repairs, press 2.", False),
        ("For billing, press 1. Please hold while we connect you.", False),
        ("All of our agents are busy. Please stay on the line.", False),  # a hold message, not a menu
    ],
)
def test_a_menu_that_reaches_a_person_by_waiting_says_so(transcript, stays):
    assert parse_menu(transcript, trailing_silence_seconds=4.0).stay_on_line is stays


@pytest.mark.parametrize(
    ("heard", "keys"),
    [
        # flite and espeak voices through Whisper (bench/navigation/spoken_menus.py)
        ("press want to pay your bill, press to to set up a payment plan, press for for questions", ["1", "2", "4"]),
        ("Prep one to report an emergency. Prep two for billing and payments.", ["1", "2"]),
        ("Press free to check in or get a boarding pass.", ["3"]),
        ("Say air points or press by for our loyalty program.", ["5"]),
        # a lost key is not invented: "for our routing number" is the label
        ("Press for our routing number and branch hours.", []),
    ],
)
def test_keys_that_speech_to_text_turned_into_look_alike_words_are_read(heard, keys):
    assert [o.key for o in parse_menu(heard, trailing_silence_seconds=4.0).options] == keys
