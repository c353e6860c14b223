"""Loop and stuck detection while navigating a phone menu, with recovery strategies. Pure.

The session feeds a ``LoopDetector`` what happens, with times from its clock:

- ``observe_prompt(transcript)`` for each prompt heard (the same growing prompt may be fed
  again: with no action in between it is one hearing);
- ``observe_action(action, at)`` for each action carried out, ``Wait`` included (a short ``Wait``
  that only listens on to the rest of a prompt does not end the hearing);
- ``observe_activity(at)`` when anything else is heard (music, tones), so that it is not
  mistaken for silence.

``assess(now)`` then names the problem, if any, and a recovery:

===========================  ====================================================================
problem                      when
===========================  ====================================================================
``SAME_SELECTION``           the same digits (or words) were sent to the same menu N times and it
                             came back each time
``SAME_MENU``                the same menu has been heard N times
``INVALID_INPUT``            the menu said N times that the input was not valid
``SILENCE_AFTER_INPUT``      nothing was heard T seconds after a key press or an answer
``BUDGET``                   navigation took too long, or too many recoveries were needed
===========================  ====================================================================

Recoveries escalate, each used at most once per menu: ask the navigator for a different option
(it is told what failed through ``warnings()``), press 0, say "agent", go back (``*``, when the
menu offers it), finish an entry with ``#`` (silence after typing digits), let the menu time out,
and finally hang up and report stuck. ``assess`` is idempotent: until something new is observed
it returns the same recommendation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from app.ivr.menu import Menu, OptionKind, parse_menu, same_menu
from app.ivr.navigator import (
    Action,
    EnterUserData,
    PressDigits,
    ReportStuck,
    Say,
    Turn,
    Wait,
    describe_action,
    ends_hearing,
    selection_of,
)

SAME_MENU_LIMIT = 3
SAME_SELECTION_LIMIT = 2
INVALID_INPUT_LIMIT = 2
SILENCE_AFTER_INPUT_SECONDS = 8.0
RECOVERY_WAIT_SECONDS = 10.0
MAX_RECOVERIES = 6
NAVIGATION_BUDGET_SECONDS = 600.0


class LoopProblem(str, Enum):
    SAME_SELECTION = "same_selection"
    SAME_MENU = "same_menu"
    INVALID_INPUT = "invalid_input"
    SILENCE_AFTER_INPUT = "silence_after_input"
    BUDGET = "budget"


class Recovery(str, Enum):
    TRY_OTHER_OPTION = "try_other_option"  # ask the navigator again; it avoids what failed
    PRESS_ZERO = "press_zero"
    SAY_AGENT = "say_agent"
    GO_BACK = "go_back"  # "*": the menu's way back
    FINISH_ENTRY = "finish_entry"  # "#": the menu may be waiting for the end of an entry
    WAIT = "wait"  # let the menu time out: many send callers to an operator
    HANG_UP = "hang_up"  # report stuck


_LADDERS: dict[LoopProblem, tuple[Recovery, ...]] = {
    LoopProblem.SAME_SELECTION: (Recovery.TRY_OTHER_OPTION, Recovery.PRESS_ZERO, Recovery.SAY_AGENT, Recovery.GO_BACK,
                                 Recovery.WAIT, Recovery.HANG_UP),
    LoopProblem.SAME_MENU: (Recovery.TRY_OTHER_OPTION, Recovery.PRESS_ZERO, Recovery.SAY_AGENT, Recovery.GO_BACK,
                            Recovery.WAIT, Recovery.HANG_UP),
    LoopProblem.INVALID_INPUT: (Recovery.TRY_OTHER_OPTION, Recovery.PRESS_ZERO, Recovery.SAY_AGENT, Recovery.GO_BACK,
                                Recovery.HANG_UP),
    LoopProblem.SILENCE_AFTER_INPUT: (Recovery.FINISH_ENTRY, Recovery.WAIT, Recovery.PRESS_ZERO, Recovery.HANG_UP),
    LoopProblem.BUDGET: (Recovery.HANG_UP,),
}  # fmt: skip


@dataclass(frozen=True)
class LoopAssessment:
    problem: LoopProblem
    recovery: Recovery
    action: Action | None  # what to do; None for TRY_OTHER_OPTION (ask the navigator)
    reason: str


@dataclass
class _Hearing:
    """One hearing of a prompt, and what was done in answer to it."""

    menu: Menu
    invalid: bool
    actions: list[Action] = field(default_factory=list)


class LoopDetector:
    def __init__(
        self,
        *,
        same_menu_limit: int = SAME_MENU_LIMIT,
        same_selection_limit: int = SAME_SELECTION_LIMIT,
        invalid_input_limit: int = INVALID_INPUT_LIMIT,
        silence_after_input_seconds: float = SILENCE_AFTER_INPUT_SECONDS,
        max_recoveries: int = MAX_RECOVERIES,
        budget_seconds: float = NAVIGATION_BUDGET_SECONDS,
        started_at: float = 0.0,
    ) -> None:
        self.same_menu_limit = same_menu_limit
        self.same_selection_limit = same_selection_limit
        self.invalid_input_limit = invalid_input_limit
        self.silence_after_input_seconds = silence_after_input_seconds
        self.max_recoveries = max_recoveries
        self.budget_seconds = budget_seconds
        self.started_at = started_at
        self._hearings: list[_Hearing] = []
        self._last_input_at: float | None = None  # a selection or entry not yet followed by anything heard
        self._last_input: Action | None = None
        self._last_input_sent_at = 0.0
        self._version = 0  # bumped on every observation: a new state may need a new recommendation
        self._assessed: tuple[int, LoopAssessment] | None = None
        self._used: list[tuple[int, Recovery]] = []  # (index of the menu's first hearing, recovery)

    # ---------------------------------------------------------------- feeding

    def observe_prompt(self, transcript: str, menu: Menu | None = None) -> None:
        menu = menu or parse_menu(transcript)
        self._version += 1
        self._last_input_at = None
        last = self._hearings[-1] if self._hearings else None
        if last is not None and not last.actions:
            # the same prompt still being read (or an "invalid" notice, then the menu again)
            last.invalid = last.invalid or menu.invalid_input
            if menu.options or menu.data_requests or menu.open_question or not last.menu.options:
                last.menu = menu
            return
        self._hearings.append(_Hearing(menu, menu.invalid_input))

    def observe_action(self, action: Action, at: float) -> None:
        self._version += 1
        if self._hearings and ends_hearing(action):
            self._hearings[-1].actions.append(action)
        if isinstance(action, (PressDigits, Say, EnterUserData)):
            self._last_input_at, self._last_input, self._last_input_sent_at = at, action, at
        elif isinstance(action, Wait) and self._last_input_at is not None:
            # waiting on purpose: silence counts as a problem again only once the wait is over
            self._last_input_at = at + action.seconds - self.silence_after_input_seconds

    def observe_activity(self, at: float) -> None:
        if self._last_input_at is not None:
            self._version += 1
            self._last_input_at = None

    def observe(self, turn: Turn) -> None:
        """A whole turn: the prompt, then what was done (at ``turn.elapsed_seconds``)."""
        self.observe_prompt(turn.transcript)
        if turn.action is not None:
            self.observe_action(turn.action, turn.elapsed_seconds)

    # ---------------------------------------------------------------- reading

    def hearings(self, menu: Menu) -> int:
        """How many times this menu has been heard, the current hearing included once observed
        (for ``NavigationContext.attempt``)."""
        return sum(1 for hearing in self._hearings if same_menu(hearing.menu, menu))

    def warnings(self) -> list[str]:
        """What went wrong at the current menu, in words, for ``NavigationContext.warnings``."""
        if not self._hearings:
            return []
        current = self._hearings[-1]
        same = [h for h in self._hearings[:-1] if same_menu(h.menu, current.menu)]
        notes: list[str] = []
        if same:
            notes.append(f"this menu has been heard {len(same) + 1} times")
        tried = [selection_of(a) for h in same for a in h.actions if selection_of(a) is not None]
        for selection in dict.fromkeys(tried):
            count = tried.count(selection)
            times = f"{count} time{'s' * (count > 1)}"
            notes.append(f"{selection!r} was already sent to this menu {times} and it came back")
        invalid = sum(1 for h in self._hearings[-4:] if h.invalid)
        if invalid:
            notes.append(f"the menu rejected the last input ({invalid} time{'s' * (invalid > 1)} recently)")
        return notes

    def assess(self, now: float) -> LoopAssessment | None:
        # a recommendation stands until something new is observed (asking twice must not escalate)
        if self._assessed is not None and self._assessed[0] == self._version:
            return self._assessed[1]
        found = self._find_problem(now)
        if found is None:
            return None
        result = self._recommend(*found)
        self._assessed = (self._version, result)
        return result

    # ---------------------------------------------------------------- internals

    def _find_problem(self, now: float) -> tuple[LoopProblem, str] | None:
        if now - self.started_at >= self.budget_seconds:
            return LoopProblem.BUDGET, f"still navigating after {now - self.started_at:.0f} s"
        if len(self._used) >= self.max_recoveries:
            return LoopProblem.BUDGET, f"{len(self._used)} recoveries and still no way through"
        if self._last_input_at is not None and now - self._last_input_at >= self.silence_after_input_seconds:
            return (
                LoopProblem.SILENCE_AFTER_INPUT,
                f"nothing heard {now - self._last_input_sent_at:.0f} s after we {describe_action(self._last_input)}",
            )
        if not self._hearings:
            return None
        current = self._hearings[-1]
        if current.actions:
            return None  # we already answered this hearing; judge when the next prompt comes
        same = [h for h in self._hearings[:-1] if same_menu(h.menu, current.menu)]
        selections = [selection_of(a) for h in same for a in h.actions if selection_of(a) is not None]
        for selection in dict.fromkeys(selections):
            count = selections.count(selection)
            if count >= self.same_selection_limit:
                return LoopProblem.SAME_SELECTION, f"sent {selection!r} to this menu {count} times and it came back"
        recent_invalid = sum(1 for h in self._hearings[-4:] if h.invalid)
        if current.invalid and recent_invalid >= self.invalid_input_limit:
            return LoopProblem.INVALID_INPUT, f"the menu rejected our input {recent_invalid} times"
        if len(same) + 1 >= self.same_menu_limit:
            return LoopProblem.SAME_MENU, f"heard this menu {len(same) + 1} times"
        return None

    def _menu_id(self) -> int:
        """Index of the first hearing of the current menu: recoveries are counted per menu."""
        if not self._hearings:
            return -1
        current = self._hearings[-1].menu
        return next(i for i, h in enumerate(self._hearings) if same_menu(h.menu, current))

    def _recommend(self, problem: LoopProblem, reason: str) -> LoopAssessment:
        menu_id = self._menu_id()
        used_here = {recovery for where, recovery in self._used if where == menu_id}
        sent_here = {
            selection_of(action)
            for hearing in self._hearings
            if menu_id >= 0 and same_menu(hearing.menu, self._hearings[menu_id].menu)
            for action in hearing.actions
        }
        for recovery in _LADDERS[problem]:
            if recovery in used_here or not self._applies(recovery, sent_here):
                continue
            if recovery is not Recovery.HANG_UP:
                self._used.append((menu_id, recovery))
            return LoopAssessment(problem, recovery, self._action_for(recovery, reason), reason)
        return LoopAssessment(problem, Recovery.HANG_UP, ReportStuck(reason), reason)

    def _applies(self, recovery: Recovery, sent_here: set[str | None]) -> bool:
        menu = self._hearings[-1].menu if self._hearings else None
        match recovery:
            case Recovery.PRESS_ZERO:
                return "0" not in sent_here
            case Recovery.SAY_AGENT:
                return "agent" not in sent_here
            case Recovery.GO_BACK:
                return menu is not None and any(o.kind is OptionKind.BACK and o.key == "*" for o in menu.options)
            case Recovery.FINISH_ENTRY:
                return isinstance(self._last_input, EnterUserData) or (
                    isinstance(self._last_input, PressDigits)
                    and len(self._last_input.digits) > 1
                    and not self._last_input.digits.endswith("#")
                )
            case Recovery.TRY_OTHER_OPTION:
                return menu is not None and bool(menu.options or menu.open_question)
        return True

    @staticmethod
    def _action_for(recovery: Recovery, reason: str) -> Action | None:
        return {
            Recovery.TRY_OTHER_OPTION: None,
            Recovery.PRESS_ZERO: PressDigits("0"),
            Recovery.SAY_AGENT: Say("agent"),
            Recovery.GO_BACK: PressDigits("*"),
            Recovery.FINISH_ENTRY: PressDigits("#"),
            Recovery.WAIT: Wait(RECOVERY_WAIT_SECONDS),
            Recovery.HANG_UP: ReportStuck(reason),
        }[recovery]
