"""Loop and stuck detection: repeated menus and selections, invalid input, silence, budgets, recoveries."""

from __future__ import annotations

from app.ivr.loops import RECOVERY_WAIT_SECONDS, LoopDetector, LoopProblem, Recovery
from app.ivr.menu import parse_menu
from app.ivr.navigator import MENU_WAIT_SECONDS, EnterUserData, PressDigits, ReportStuck, Say, Turn, Wait

MAIN = "Press 1 for billing. Press 2 for sales. To return to the main menu, press star."
MAIN_NOISY = "press one for billing press two for sales to return to the main menu press star"
SUBMENU = "Press 1 to pay your bill. Press 2 to hear your balance."
INVALID = "That is not a valid option. Please try again."


def test_nothing_wrong_on_a_normal_path():
    detector = LoopDetector()
    detector.observe(Turn(MAIN, PressDigits("1"), 5.0))
    detector.observe(Turn(SUBMENU, PressDigits("1"), 12.0))
    assert detector.assess(13.0) is None
    assert detector.warnings() == []


def test_the_same_selection_coming_back_escalates_step_by_step():
    detector = LoopDetector()
    detector.observe(Turn(MAIN, PressDigits("2"), 5.0))
    detector.observe_prompt(MAIN_NOISY)  # came back once: a note, not yet a problem
    assert detector.assess(16.0) is None
    assert "'2' was already sent to this menu 1 time and it came back" in detector.warnings()

    detector.observe_action(PressDigits("2"), 16.0)
    detector.observe_prompt(MAIN)
    first = detector.assess(26.0)
    assert (first.problem, first.recovery, first.action) == (
        LoopProblem.SAME_SELECTION,
        Recovery.TRY_OTHER_OPTION,
        None,
    )
    assert detector.assess(27.0) is first  # asking again without news does not escalate

    detector.observe_action(PressDigits("1"), 27.0)
    detector.observe_prompt(MAIN)
    second = detector.assess(36.0)
    assert (second.recovery, second.action) == (Recovery.PRESS_ZERO, PressDigits("0"))

    detector.observe_action(PressDigits("0"), 36.0)
    detector.observe_prompt(MAIN)
    assert detector.assess(46.0).action == Say("agent")

    detector.observe_action(Say("agent"), 46.0)
    detector.observe_prompt(MAIN)
    assert detector.assess(56.0).action == PressDigits("*")  # the menu offers a way back

    detector.observe_action(PressDigits("*"), 56.0)
    detector.observe_prompt(MAIN)
    assert detector.assess(66.0).action == Wait(RECOVERY_WAIT_SECONDS)

    detector.observe_action(Wait(RECOVERY_WAIT_SECONDS), 66.0)
    detector.observe_prompt(MAIN)
    last = detector.assess(77.0)
    assert last.recovery is Recovery.HANG_UP
    assert isinstance(last.action, ReportStuck)


def test_the_same_menu_heard_too_often():
    detector = LoopDetector(same_menu_limit=3)
    detector.observe(Turn(MAIN, Wait(10.0), 5.0))
    detector.observe(Turn(MAIN, Wait(10.0), 20.0))
    detector.observe_prompt(MAIN)
    found = detector.assess(36.0)
    assert found.problem is LoopProblem.SAME_MENU
    assert found.recovery is Recovery.TRY_OTHER_OPTION
    assert detector.hearings(parse_menu(MAIN)) == 3
    assert "this menu has been heard 3 times" in detector.warnings()


def test_invalid_input_notices():
    detector = LoopDetector(invalid_input_limit=2)
    detector.observe_prompt(MAIN)
    detector.observe_action(PressDigits("7"), 5.0)
    detector.observe_prompt(INVALID)
    detector.observe_prompt(INVALID + " " + MAIN)  # the notice, then the menu again: one hearing
    assert detector.assess(10.0) is None
    detector.observe_action(PressDigits("8"), 10.0)
    detector.observe_prompt(INVALID + " " + MAIN)
    found = detector.assess(15.0)
    assert found.problem is LoopProblem.INVALID_INPUT
    assert "rejected" in found.reason


def test_a_prompt_still_being_read_is_one_hearing():
    detector = LoopDetector(same_menu_limit=2)
    detector.observe_prompt("Press 1 for billing.")
    detector.observe_action(Wait(MENU_WAIT_SECONDS), 2.0)  # the navigator listens on
    detector.observe_prompt("Press 1 for billing. Press 2 for sales.")
    detector.observe_action(Wait(MENU_WAIT_SECONDS), 4.0)
    detector.observe_prompt(MAIN)
    assert detector.assess(6.0) is None
    assert detector.hearings(parse_menu(MAIN)) == 1


def test_silence_after_a_key_press():
    detector = LoopDetector(silence_after_input_seconds=8.0)
    detector.observe_prompt(MAIN)
    detector.observe_action(PressDigits("1"), 2.0)
    assert detector.assess(9.0) is None
    found = detector.assess(10.5)
    assert (found.problem, found.recovery) == (LoopProblem.SILENCE_AFTER_INPUT, Recovery.WAIT)
    assert found.reason == "nothing heard 8 s after we pressed 1"


def test_music_or_tones_are_not_silence():
    detector = LoopDetector(silence_after_input_seconds=8.0)
    detector.observe_prompt(MAIN)
    detector.observe_action(PressDigits("1"), 2.0)
    detector.observe_activity(4.0)
    assert detector.assess(30.0) is None


def test_silence_after_an_entry_first_tries_to_finish_it():
    detector = LoopDetector(silence_after_input_seconds=8.0)
    detector.observe_prompt("Please enter your account number.")
    detector.observe_action(EnterUserData("account_number", "dtmf"), 3.0)
    first = detector.assess(12.0)
    assert (first.recovery, first.action) == (Recovery.FINISH_ENTRY, PressDigits("#"))
    detector.observe_action(PressDigits("#"), 12.0)
    second = detector.assess(21.0)
    assert second.recovery is Recovery.WAIT
    detector.observe_action(second.action, 21.0)
    # the wait is allowed to run its course before silence counts again
    assert detector.assess(21.0 + RECOVERY_WAIT_SECONDS - 1) is None
    third = detector.assess(21.0 + RECOVERY_WAIT_SECONDS + 0.5)
    assert third.action == PressDigits("0")


def test_a_new_prompt_ends_the_silence():
    detector = LoopDetector(silence_after_input_seconds=8.0)
    detector.observe_prompt(MAIN)
    detector.observe_action(PressDigits("1"), 2.0)
    detector.observe_prompt(SUBMENU)
    assert detector.assess(60.0) is None


def test_budget():
    detector = LoopDetector(budget_seconds=300.0, started_at=100.0)
    detector.observe_prompt(MAIN)
    assert detector.assess(399.0) is None
    found = detector.assess(400.0)
    assert (found.problem, found.recovery) == (LoopProblem.BUDGET, Recovery.HANG_UP)
    assert found.action == ReportStuck("still navigating after 300 s")


def test_too_many_recoveries_is_a_budget_problem():
    detector = LoopDetector(max_recoveries=2, silence_after_input_seconds=5.0)
    detector.observe_prompt(MAIN)
    detector.observe_action(PressDigits("1"), 1.0)
    assert detector.assess(7.0).recovery is Recovery.WAIT
    detector.observe_action(Wait(RECOVERY_WAIT_SECONDS), 7.0)
    assert detector.assess(18.0).recovery is Recovery.PRESS_ZERO
    detector.observe_action(PressDigits("0"), 18.0)
    found = detector.assess(30.0)
    assert found.problem is LoopProblem.BUDGET
    assert isinstance(found.action, ReportStuck)


def test_recoveries_already_done_by_the_navigator_are_skipped():
    detector = LoopDetector()
    for at, digits in ((0.0, "0"), (10.0, "0"), (20.0, "1")):
        detector.observe_prompt(MAIN)
        detector.observe_action(PressDigits(digits), at + 1)
    detector.observe_prompt(MAIN)
    first = detector.assess(31.0)
    assert first.problem is LoopProblem.SAME_SELECTION
    assert first.recovery is Recovery.TRY_OTHER_OPTION
    detector.observe_action(PressDigits("2"), 31.0)
    detector.observe_prompt(MAIN)
    assert detector.assess(41.0).recovery is Recovery.SAY_AGENT  # 0 was pressed here already


def test_no_go_back_when_the_menu_offers_none():
    detector = LoopDetector()
    for at, action in (
        (0.0, PressDigits("1")),
        (10.0, PressDigits("1")),
        (20.0, PressDigits("0")),
        (30.0, Say("agent")),
    ):
        detector.observe_prompt(SUBMENU)
        detector.observe_action(action, at + 1)
    detector.observe_prompt(SUBMENU)
    found = detector.assess(41.0)
    assert found.recovery is Recovery.TRY_OTHER_OPTION
    detector.observe_action(PressDigits("2"), 41.0)
    detector.observe_prompt(SUBMENU)
    assert detector.assess(51.0).recovery is Recovery.WAIT  # no "*" offered: no going back
