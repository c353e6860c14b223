"""The call-flow learner: journals of real-looking calls in, flows and replay verdicts out."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from app.ivr.flow import CallFlow, CallFlowStep, StepType
from app.ivr.learner import (
    CallFlowLearner,
    Discovery,
    EnteredUserData,
    HeardOption,
    LearnError,
    Outcome,
    PressedDigits,
    RequestedData,
    SpokeText,
    check_replay,
    discoveries_from_events,
    flow_id_for,
    mask_numbers,
    working_path,
)
from app.ivr.menu import parse_menu

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)

# Asterisk's own IVR prompts (core sounds), as the demo company plays them.
MAIN_MENU = (
    "Thank you for calling Super Awesome Company, Waldo's premier provider of perfect products. "
    "If you know your party's extension, you may dial it at any time. To establish a sales partnership, "
    "press one. To speak with a customer advocate, press two. For accounting and other receivables, "
    "press three. For a company directory, press four. For an operator, press zero."
)
# The same prompt through another speech-to-text pass: digits as figures, a few words heard differently.
MAIN_MENU_AGAIN = (
    "thank you for calling super awesome company waldos premier provider of perfect products. "
    "if you know your parties extension you may dial it at any time. to establish a sales partnership "
    "press 1. to speak with a customer advocates press 2. for accounting and other receivable press 3. "
    "for the company directory press 4. for an operator press 0."
)
# The company moved the advocates from 2 to 3: nearly the same words.
MAIN_MENU_REORDERED = (
    "Thank you for calling Super Awesome Company, Waldo's premier provider of perfect products. "
    "If you know your party's extension, you may dial it at any time. To establish a sales partnership, "
    "press one. For accounting and other receivables, press two. To speak with a customer advocate, "
    "press three. For a company directory, press four. For an operator, press zero."
)
ADVOCATE_MENU = (
    "Press 1 to speak with a representative about your account. Press 0 to reach an operator. "
    "Press star to return to the main menu."
)
# What the simulated Acme Bank plays for its second menu (vm-onefor + queue-callswaiting + ...):
# key 1 has no label a parser can read, and it shares keys 1 and 0 with the main menu.
SIM_ADVOCATE_MENU = (
    "Press 1 for. Waiting to speak with a representative. Press 0 to reach an operator. "
    "Press star to return to the main menu."
)
DIRECTORY_MENU = (
    "Welcome to the company directory. To hear the list of departments, press 1. "
    "Press star to return to the main menu."
)
ACCOUNT_PROMPT = "Please enter your account number followed by the pound key."
READ_BACK = "You entered 4 4 1 2 3 9 8 7. If this is correct, press 1. To enter it again, press 2."
SECRET = "44123987"
OPEN_QUESTION = "Welcome to Globex. In a few words, tell me why you're calling."
QUEUE_ANNOUNCEMENT = (
    "All of our representatives are currently busy. Please stay on the line and your call will be "
    "answered by the next available representative."
)


class Journal:
    """A call's events exactly as the session journals them (CallEvent.to_dict() shapes)."""

    def __init__(self, call_id: str = "c1"):
        self.call_id = call_id
        self.events: list[dict[str, Any]] = []
        self.t = 0.0

    def _add(self, type_: str, **data: Any) -> "Journal":
        at = (T0 + timedelta(seconds=len(self.events))).isoformat(timespec="milliseconds")
        self.events.append({"type": type_, "call_id": self.call_id, "data": data, "at": at, "seq": len(self.events) + 1})
        return self

    def menu(self, step_id: str, transcript: str, seconds: float = 18.0, stt: str = "local") -> "Journal":
        menu = parse_menu(transcript, trailing_silence_seconds=2.0)
        start, self.t = self.t, self.t + seconds
        return self._add(
            "IVR_MENU_DETECTED",
            step_id=step_id,
            transcript=transcript,
            options=[{"key": o.key, "spoken": o.spoken, "label": o.label, "kind": o.kind.value} for o in menu.options],
            data_requests=[
                {"field": r.field, "modes": sorted(r.modes), "terminator": r.terminator, "length": r.length}
                for r in menu.data_requests
            ],
            open_question=menu.open_question,
            is_hold_message=menu.is_hold_message,
            t_start=round(start, 3),
            t_end=round(self.t, 3),
            heard_seconds=round(seconds - 2.0, 2),
            listened_seconds=seconds,
            stt=stt,
        )

    def replayed_without_stt(self, step_id: str, seconds: float = 20.0) -> "Journal":
        start, self.t = self.t, self.t + seconds
        return self._add(
            "IVR_MENU_DETECTED", step_id=step_id, transcript="", options=[], heard_seconds=seconds - 2,
            listened_seconds=seconds, t_start=start, t_end=self.t, stt="none",
        )  # fmt: skip

    def press(self, step_id: str, digits: str, purpose: str = "selection") -> "Journal":
        navigator = "flow" if purpose == "flow" else "offline"
        return self._add("IVR_DTMF_SENT", step_id=step_id, digits=digits, purpose=purpose, navigator=navigator)

    def say(self, step_id: str, text: str, purpose: str = "answer") -> "Journal":
        return self._add("IVR_SPEECH_SENT", step_id=step_id, text=text, purpose=purpose, seconds=1.8)

    def waited(self, step_id: str) -> "Journal":
        return self._add("IVR_STEP", step_id=step_id, step_type="LISTEN", action={"action": "wait", "seconds": 5.0})

    def enter_from_vault(self, step_id: str, field: str, value: str) -> "Journal":
        self._add("USER_DATA_REQUESTED", step_id=step_id, request_id="r1", field=field,
                  question=f"What is your {field}?", transcript=ACCOUNT_PROMPT, timeout_seconds=120.0)  # fmt: skip
        self._add("USER_DATA_RECEIVED", field=field, requested=True)
        # The session masks vault digits: the value never reaches the journal.
        return self._add("IVR_DTMF_SENT", step_id=step_id, digits="*" * len(value + "#"), purpose="user_data",
                         field=field, masked=True, navigator="offline")  # fmt: skip

    def hold(self) -> "Journal":
        return self._add("HOLD_DETECTED", t=self.t + 3, confidence=0.91, evidence={"music": 0.9})

    def human(self) -> "Journal":
        return self._add("HUMAN_DETECTED", t=self.t + 60, confidence=0.88, evidence={}, hold_seconds=57.0)

    def ended(self, status: str = "completed", reason: str = "bridged") -> "Journal":
        return self._add("CALL_ENDED", status=status, reason=reason, detail="")


def two_menu_call(call_id: str = "c1") -> Journal:
    return (
        Journal(call_id)
        .menu("explore", MAIN_MENU, seconds=21.4)
        .press("explore", "2")
        .menu("explore", ADVOCATE_MENU, seconds=9.0)
        .press("explore", "1")
        .hold()
        .human()
        .ended()
    )


def learn(journal: Journal, company: str = "Acme Bank", **kwargs: Any) -> CallFlow:
    discoveries, outcome = discoveries_from_events(journal.events)
    return CallFlowLearner().build_flow(
        discoveries, "8005550100", company, "talk to a customer advocate", outcome=outcome, **kwargs
    )


# ---------------------------------------------------------------------------- discoveries_from_events


def test_discoveries_carry_each_menu_and_its_answer():
    discoveries, outcome = discoveries_from_events(two_menu_call().events)
    main, advocates = discoveries
    assert main.step_id == "explore" and main.transcript == MAIN_MENU
    assert HeardOption("2", "speak with a customer advocate") in main.options
    assert main.option_for_key("0") == HeardOption("0", "operator")
    assert (main.t_start, main.t_end, main.listened_seconds) == (0.0, 21.4, 21.4)
    assert main.action == PressedDigits("2") and main.purpose == "selection"
    assert advocates.action == PressedDigits("1") and advocates.t_start == 21.4
    assert outcome == Outcome(reached_hold=True, reached_human=True, completed=True)


def test_vault_entry_names_the_field_and_its_terminator_never_the_digits():
    journal = Journal().menu("explore", ACCOUNT_PROMPT, seconds=5).enter_from_vault("explore", "account_number", SECRET)
    (discovery,), _ = discoveries_from_events(journal.events)
    assert discovery.data_requests == (RequestedData("account_number", ("dtmf",), "#", None),)
    assert discovery.action == EnteredUserData("account_number", "dtmf", "#") and discovery.purpose == "user_data"


def test_hold_counts_only_after_the_last_menu():
    journal = (
        Journal()
        .menu("explore", MAIN_MENU).hold().press("explore", "2")  # a moment of music is not the queue
        .menu("explore", ADVOCATE_MENU).press("explore", "1")
    )  # fmt: skip
    _, outcome = discoveries_from_events(journal.ended("failed", "company_hangup").events)
    assert outcome == Outcome(reached_hold=False, reached_human=False, completed=False)


def test_a_queue_announcement_heard_as_a_menu_means_hold():
    journal = Journal().menu("explore", MAIN_MENU).press("explore", "2").menu("explore", QUEUE_ANNOUNCEMENT)
    discoveries, outcome = discoveries_from_events(journal.ended("failed", "max_hold_time").events)
    assert discoveries[-1].is_hold_message and discoveries[-1].action is None
    assert outcome.reached_hold and not outcome.completed


def test_a_step_that_heard_no_menu_is_a_discovery_without_words():
    journal = Journal().menu("main_menu", MAIN_MENU).press("main_menu", "2").press("skip_intro", "1", purpose="flow")
    first, second = discoveries_from_events(journal.events)[0]
    assert first.action == PressedDigits("2")
    assert second == Discovery(step_id="skip_intro", transcript="", action=PressedDigits("1"), purpose="flow")


def test_digits_pressed_in_a_row_join_up_and_events_are_read_in_seq_order():
    journal = Journal().menu("explore", MAIN_MENU).press("explore", "4").press("explore", "12")
    events = list(reversed(journal.events))
    (discovery,), _ = discoveries_from_events(events)
    assert discovery.action == PressedDigits("412")


# ---------------------------------------------------------------------------- build_flow


def test_a_two_menu_call_becomes_listen_listen_hold_transfer():
    flow = learn(two_menu_call(), device="sip_phone")
    assert [(s.id, s.type) for s in flow.steps] == [
        ("menu_1", StepType.LISTEN), ("menu_2", StepType.LISTEN), ("hold", StepType.HOLD), ("transfer", StepType.TRANSFER),
    ]  # fmt: skip
    first, second, hold, transfer = flow.steps
    assert first.dtmf == "2" and second.dtmf == "1"
    assert first.metadata["expected_transcript"] == MAIN_MENU
    assert second.metadata["expected_transcript"] == ADVOCATE_MENU
    assert first.metadata["chosen"] == {"key": "2", "label": "speak with a customer advocate"}
    assert {"key": "0", "label": "operator"} in first.metadata["expected_options"]
    assert first.metadata["min_similarity"] == 0.6 and first.metadata["learned"] is True
    assert first.description == "speak with a customer advocate (press 2)"
    assert first.timeout == 42.8 and second.timeout == 30.0  # twice what was listened to, at least 30 s
    assert first.conditions == {"on_hold": "hold", "on_human": "transfer"}
    assert hold.conditions == {"on_human": "transfer"}
    assert transfer.metadata == {"device": "sip_phone"}
    assert (flow.id, flow.company, flow.phone_number, flow.version) == ("acme-bank", "Acme Bank", "8005550100", 1)
    assert "learned" in flow.tags and (flow.success_count, flow.fail_count) == (0, 0)


def test_without_a_device_the_transfer_names_none():
    assert learn(two_menu_call()).steps[-1].metadata == {}


def test_a_detour_that_came_back_is_dropped():
    journal = (
        Journal()
        .menu("explore", MAIN_MENU.replace("For a company directory, press four.", "For a company directory, press nine."))
        .press("explore", "9")
        .menu("explore", DIRECTORY_MENU, seconds=8)
        .press("explore", "*", purpose="recovery")
        .menu("explore", MAIN_MENU_AGAIN.replace("directory press 4", "directory press 9"))
        .press("explore", "2")
        .menu("explore", ADVOCATE_MENU, seconds=9)
        .press("explore", "1")
        .hold()
        .ended()
    )
    discoveries, _ = discoveries_from_events(journal.events)
    assert len(discoveries) == 4 and discoveries[1].purpose == "recovery"  # the detour is kept as a discovery
    flow = learn(journal)
    listens = [s for s in flow.steps if s.type is StepType.LISTEN]
    assert [s.dtmf for s in listens] == ["2", "1"]
    assert "directory" not in listens[1].metadata["expected_transcript"]
    assert "9" not in {s.dtmf for s in flow.steps}


def test_a_second_menu_sharing_keys_with_the_first_is_not_a_detour():
    journal = (
        Journal()
        .menu("explore", MAIN_MENU).press("explore", "2")
        .menu("explore", SIM_ADVOCATE_MENU).press("explore", "0")
        .hold().human().ended()
    )  # fmt: skip
    assert [s.dtmf for s in learn(journal).steps] == ["2", "0", None, None]


def test_a_menu_heard_again_after_an_invalid_choice_keeps_only_the_choice_that_worked():
    journal = (
        Journal()
        .menu("explore", MAIN_MENU).press("explore", "7")
        .menu("explore", "That is not a valid option. " + MAIN_MENU_AGAIN).press("explore", "2")
        .menu("explore", ADVOCATE_MENU).press("explore", "1")
        .hold().ended()
    )  # fmt: skip
    assert [s.dtmf for s in learn(journal).steps] == ["2", "1", None, None]


def test_a_menu_waited_through_is_not_a_step():
    journal = (
        Journal()
        .menu("explore", MAIN_MENU).waited("explore")
        .menu("explore", MAIN_MENU_AGAIN).press("explore", "2")
        .menu("explore", ADVOCATE_MENU).press("explore", "1")
        .hold().ended()
    )  # fmt: skip
    flow = learn(journal)
    assert [s.dtmf for s in flow.steps if s.type is StepType.LISTEN] == ["2", "1"]
    assert flow.steps[0].metadata["expected_transcript"] == MAIN_MENU_AGAIN  # the hearing that was answered


def test_vault_data_entry_becomes_user_data_and_no_digits_reach_the_flow():
    journal = (
        Journal()
        .menu("explore", ACCOUNT_PROMPT, seconds=6)
        .enter_from_vault("explore", "account_number", SECRET)
        .menu("explore", READ_BACK, seconds=9)  # the IVR reads the number back
        .press("explore", "1")
        .menu("explore", MAIN_MENU)
        .press("explore", "2")
        .hold()
        .ended()
    )
    flow = learn(journal)
    entry = flow.steps[0]
    assert entry.dtmf is None
    assert entry.metadata["user_data"] == {"field": "account_number", "mode": "dtmf", "terminator": "#"}
    assert entry.description == "enter the account number (dtmf)"
    assert flow.steps[1].metadata["expected_transcript"] == (
        "You entered [number]. If this is correct, press 1. To enter it again, press 2."
    )
    stored = flow.model_dump_json()
    assert SECRET not in stored and "4 4 1 2" not in stored and "*********" not in stored


def test_an_open_question_answered_by_voice_says_it_again():
    journal = Journal().menu("explore", OPEN_QUESTION, seconds=6).say("explore", "billing question").hold().ended()
    (step, *_rest) = learn(journal, company="Globex").steps
    assert step.dtmf is None and step.metadata["say"] == "billing question"
    assert "chosen" not in step.metadata  # a free answer, not one of the options
    assert step.description == 'say "billing question"'


def test_a_company_that_queues_at_once_learns_hold_and_transfer():
    flow = learn(Journal().hold().human().ended())
    assert [s.type for s in flow.steps] == [StepType.HOLD, StepType.TRANSFER]


def test_a_flow_learned_without_a_company_is_named_by_its_number():
    flow = learn(two_menu_call(), company="")
    assert flow.id == "number-8005550100" and flow.company == ""
    assert flow.name == "Number 8005550100 - talk to a customer advocate"


@pytest.mark.parametrize(
    "journal, reason",
    [
        (Journal(), "nothing to learn"),
        (Journal().menu("explore", MAIN_MENU).waited("explore").ended("failed", "company_hangup"), "nothing to learn"),
        (
            Journal()
            .menu("explore", MAIN_MENU).press("explore", "2")
            .menu("explore", ADVOCATE_MENU).ended("failed", "company_hangup"),
            "never got past the menus",
        ),
    ],
    ids=["no events", "no answer", "no hold"],
)
def test_a_call_that_teaches_nothing_is_refused(journal, reason):
    with pytest.raises(LearnError, match=reason):
        learn(journal)


def test_without_an_outcome_the_answered_menus_are_trusted():
    discoveries, _ = discoveries_from_events(two_menu_call().events[:4])
    flow = CallFlowLearner().build_flow(discoveries, "8005550100", "Acme Bank", "")
    assert [s.dtmf for s in flow.steps[:2]] == ["2", "1"]
    with pytest.raises(LearnError, match="nothing to learn"):
        CallFlowLearner().build_flow([], "8005550100", "Acme Bank", "")


# ---------------------------------------------------------------------------- merge_discoveries


def later(seconds: float = 3600):
    return lambda: T0 + timedelta(seconds=seconds)


def test_a_call_that_confirms_the_flow_keeps_its_steps_and_counts_the_success():
    flow = learn(two_menu_call())
    replay = (
        Journal("c2")
        .menu("menu_1", MAIN_MENU_AGAIN).press("menu_1", "2", purpose="flow")
        .menu("menu_2", ADVOCATE_MENU.lower()).press("menu_2", "1", purpose="flow")
        .hold().human().ended()
    )  # fmt: skip
    discoveries, outcome = discoveries_from_events(replay.events)
    merged = CallFlowLearner(now=later()).merge_discoveries(flow, discoveries, outcome=outcome)
    assert merged.steps == flow.steps
    assert (merged.version, merged.success_count, merged.fail_count) == (2, 1, 0)
    assert merged.updated_at == T0 + timedelta(seconds=3600) and merged.created_at == flow.created_at
    assert (merged.id, merged.name, merged.tags, merged.description) == (flow.id, flow.name, flow.tags, flow.description)


def test_a_changed_menu_replaces_its_step_and_keeps_the_rest():
    flow = learn(two_menu_call())
    call = (
        Journal("c2")
        .menu("menu_1", MAIN_MENU_REORDERED).press("menu_1", "3")
        .menu("explore", ADVOCATE_MENU).press("explore", "1")
        .hold().ended("failed", "max_hold_time")
    )  # fmt: skip
    discoveries, outcome = discoveries_from_events(call.events)
    merged = CallFlowLearner().merge_discoveries(flow, discoveries, outcome=outcome, intent="customer advocate")
    first, second, *_ = merged.steps
    assert first.dtmf == "3" and first.metadata["expected_transcript"] == MAIN_MENU_REORDERED
    assert first.metadata["chosen"] == {"key": "3", "label": "speak with a customer advocate"}
    assert first.metadata["intent"] == "customer advocate"
    assert second == flow.steps[1]
    assert merged.steps[2:] == flow.steps[2:]
    assert (merged.version, merged.success_count, merged.fail_count) == (2, 0, 1)


HAND_WRITTEN = CallFlow.model_validate(
    {
        "id": "acme-bank",
        "name": "Acme Bank - customer advocate",
        "company": "Acme Bank",
        "phone_number": "8005550100",
        "description": "Hand-written",
        "tags": ["bank", "demo"],
        "success_count": 7,
        "fail_count": 2,
        "steps": [
            {"id": "main_menu", "type": "LISTEN", "dtmf": "2", "timeout": 40, "description": "Choose the customer advocate",
             "metadata": {"prompt_contains": "customer advocate"},
             "conditions": {"on_hold": "hold", "on_human": "transfer"}},
            {"id": "advocate_menu", "type": "LISTEN", "dtmf": "1", "timeout": 30, "description": "Then option 1",
             "conditions": {"on_hold": "hold", "on_human": "transfer", "on_timeout": "main_menu"}},
            {"id": "hold", "type": "HOLD", "description": "Wait in the queue", "conditions": {"on_human": "transfer"}},
            {"id": "transfer", "type": "TRANSFER", "metadata": {"device": "sip_phone"}},
        ],
    }
)  # fmt: skip


def test_a_hand_written_flow_replayed_without_speech_to_text_is_confirmed():
    replay = (
        Journal()
        .replayed_without_stt("main_menu").press("main_menu", "2", purpose="flow")
        .replayed_without_stt("advocate_menu").press("advocate_menu", "1", purpose="flow")
        .hold().human().ended("failed", "user_no_answer")
    )  # fmt: skip
    discoveries, outcome = discoveries_from_events(replay.events)
    merged = CallFlowLearner().merge_discoveries(HAND_WRITTEN, discoveries, outcome=outcome)
    assert merged.steps == HAND_WRITTEN.steps
    assert (merged.version, merged.success_count, merged.fail_count) == (2, 7, 3)


def test_a_hand_written_step_the_call_confirms_keeps_its_own_fields():
    call = (
        Journal()
        .menu("main_menu", MAIN_MENU).press("main_menu", "2", purpose="flow")
        .menu("advocate_menu", DIRECTORY_MENU).press("advocate_menu", "1*")
        .hold().ended()
    )  # fmt: skip
    discoveries, outcome = discoveries_from_events(call.events)
    merged = CallFlowLearner().merge_discoveries(HAND_WRITTEN, discoveries, outcome=outcome)
    ids = [s.id for s in merged.steps]
    assert ids == ["main_menu", "menu_2", "hold", "transfer"]
    assert merged.steps[0] == HAND_WRITTEN.steps[0]  # description and prompt_contains kept
    assert merged.steps[1].metadata["expected_transcript"] == DIRECTORY_MENU and merged.steps[1].dtmf == "1*"
    assert merged.steps[2:] == HAND_WRITTEN.steps[2:]
    assert (merged.tags, merged.description, merged.success_count) == (["bank", "demo"], "Hand-written", 8)


def test_kept_steps_lose_only_the_jumps_to_steps_that_are_gone():
    first, *rest = HAND_WRITTEN.steps
    flow = CallFlow.model_validate(
        {
            **HAND_WRITTEN.model_dump(),
            "steps": [
                {**first.model_dump(), "conditions": {"on_hold": "hold", "on_timeout": "intro"}},
                {"id": "intro", "type": "WAIT", "timeout": 2},
                *[step.model_dump() for step in rest],
            ],
        }
    )
    call = Journal().menu("main_menu", MAIN_MENU).press("main_menu", "2").menu("x", DIRECTORY_MENU).press("x", "*").hold()
    discoveries, outcome = discoveries_from_events(call.events)
    merged = CallFlowLearner().merge_discoveries(flow, discoveries, outcome=outcome)
    assert [s.id for s in merged.steps] == ["main_menu", "menu_2", "hold", "transfer"]
    assert merged.steps[0].conditions == {"on_hold": "hold"}  # the WAIT step "intro" is gone


def test_merging_a_call_that_teaches_nothing_is_refused():
    call = Journal().menu("menu_1", MAIN_MENU).press("menu_1", "2").ended("failed", "company_hangup")
    discoveries, outcome = discoveries_from_events(call.events)
    with pytest.raises(LearnError, match="never got past the menus"):
        CallFlowLearner().merge_discoveries(learn(two_menu_call()), discoveries, outcome=outcome)


# ---------------------------------------------------------------------------- check_replay


@pytest.fixture(scope="module")
def main_step() -> CallFlowStep:
    return learn(two_menu_call()).steps[0]


def test_replay_passes_on_a_new_transcription_of_the_same_menu(main_step):
    check = check_replay(main_step, MAIN_MENU_AGAIN, parse_menu(MAIN_MENU_AGAIN))
    assert check.ok and check.similarity >= 0.6 and check.reason.startswith("matches")


def test_replay_fails_when_the_option_moved_even_with_nearly_the_same_words(main_step):
    check = check_replay(main_step, MAIN_MENU_REORDERED)
    assert check.similarity >= 0.8  # the words alone would pass
    assert not check.ok and "option 2" in check.reason and "speak with a customer advocate" in check.reason


def test_replay_fails_on_a_different_menu(main_step):
    check = check_replay(main_step, DIRECTORY_MENU, parse_menu(DIRECTORY_MENU))
    assert not check.ok and check.similarity < 0.6 and "different prompt" in check.reason


def test_replay_fails_when_the_chosen_key_is_no_longer_offered(main_step):
    shorter = MAIN_MENU.replace(" To speak with a customer advocate, press two.", "")
    check = check_replay(main_step, shorter)
    assert not check.ok and check.reason == "option 2 (speak with a customer advocate) is no longer offered"


def test_a_key_the_menu_never_announced_is_not_checked():
    journal = Journal().menu("explore", ADVOCATE_MENU).press("explore", "9").hold()
    step = learn(journal).steps[0]
    assert step.metadata["chosen"] == {"key": "9", "label": ""} and step.description == "press 9"
    assert check_replay(step, ADVOCATE_MENU).ok


def test_the_step_sets_how_similar_the_prompt_must_be(main_step):
    strict = main_step.model_copy(update={"metadata": {**main_step.metadata, "min_similarity": 0.99}})
    assert check_replay(main_step, MAIN_MENU_AGAIN).ok and not check_replay(strict, MAIN_MENU_AGAIN).ok


def test_a_hand_written_step_always_replays():
    assert check_replay(HAND_WRITTEN.steps[0], DIRECTORY_MENU) == check_replay(HAND_WRITTEN.steps[0], "")
    assert check_replay(HAND_WRITTEN.steps[0], DIRECTORY_MENU).reason == "no expectation"
    assert check_replay(HAND_WRITTEN.steps[0], DIRECTORY_MENU).ok


def test_a_read_back_of_another_callers_number_still_matches():
    journal = Journal().menu("explore", READ_BACK).press("explore", "1").hold().ended()
    step = learn(journal).steps[0]
    other_caller = "You entered 9 9 0 1 7 7 3 2. If this is correct, press 1. To enter it again, press 2."
    assert check_replay(step, other_caller).similarity == 1.0


def test_a_data_entry_step_fails_when_the_menu_asks_for_something_else():
    journal = Journal().menu("explore", ACCOUNT_PROMPT).enter_from_vault("explore", "account_number", SECRET).hold()
    step = learn(journal).steps[0]
    zip_prompt = "Please enter your zip code followed by the pound key."
    assert check_replay(step, ACCOUNT_PROMPT.lower()).ok
    check = check_replay(step, zip_prompt)
    assert not check.ok  # by words or by the field asked for
    assert "zip_code" in check.reason or "different prompt" in check.reason


# ---------------------------------------------------------------------------- small pieces


@pytest.mark.parametrize(
    "company, number, expected",
    [
        ("Acme Bank", "8005550100", "acme-bank"),
        ("  Café Société & Co. ", "8005550100", "cafe-societe-co"),
        ("", "+1 800 555 0100", "number-18005550100"),
        ("!!!", "5550001", "number-5550001"),
    ],
)
def test_flow_ids_are_slugs_a_flow_accepts(company, number, expected):
    flow_id = flow_id_for(company, number)
    assert flow_id == expected
    assert CallFlow(id=flow_id, name="x", phone_number="5550001", steps=[{"id": "t", "type": "TRANSFER"}]).id == flow_id


@pytest.mark.parametrize(
    "text, expected",
    [
        ("you entered 4 4 1 2 3 9 8 7.", "you entered [number]."),
        ("You entered four four one two, press 1", "You entered [number], press 1"),
        ("call us at 1-800-555-0100 or press 600", "call us at [number] or press 600"),
        ("press one, two or three", "press one, two or three"),
    ],
)
def test_long_numbers_are_masked_and_keys_are_not(text, expected):
    assert mask_numbers(text) == expected


def test_working_path_keeps_the_last_answer_to_a_menu_heard_again():
    first = Discovery("explore", MAIN_MENU, action=PressedDigits("4"))
    directory = Discovery("explore", DIRECTORY_MENU, action=PressedDigits("*"), purpose="recovery")
    again = Discovery("explore", MAIN_MENU_AGAIN, action=PressedDigits("2"))
    spoken = Discovery("explore", OPEN_QUESTION, action=SpokeText("billing"))
    assert working_path([first, directory, again, spoken]) == [again, spoken]
    # Without words only the same step heard again is the same menu.
    assert working_path([Discovery("a", "", action=PressedDigits("1")), Discovery("b", "", action=PressedDigits("2"))]) == [
        Discovery("a", "", action=PressedDigits("1")),
        Discovery("b", "", action=PressedDigits("2")),
    ]


def test_a_learned_flow_is_plain_json():
    flow = learn(two_menu_call())
    assert CallFlow.model_validate(json.loads(flow.model_dump_json())) == flow
