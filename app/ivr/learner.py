"""Learning a call flow from a call that found its own way, and checking a learned step on replay.

A call journals every menu it heard and how it answered (IVR_MENU_DETECTED, then IVR_DTMF_SENT /
IVR_SPEECH_SENT). ``discoveries_from_events`` reads that journal back into ``Discovery`` values
and an ``Outcome`` (did the call reach hold or a person, did it end connected).
``CallFlowLearner`` turns the menus on the path that worked into LISTEN steps (expected
transcript, options, the answer) followed by HOLD and TRANSFER, or folds a later call into an
existing flow. ``check_replay`` tells a replaying call whether the menu it hears is still the one
a learned step expects.

Pure: no I/O. Vault values never reach a flow: a menu answered with user data becomes
``metadata.user_data`` (which field, how to enter it), and long numbers in a transcript (an IVR
reading back what was entered) are masked before a transcript is stored or compared.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.clock import utc_now
from app.ivr.flow import CallFlow, CallFlowStep, StepType
from app.ivr.menu import Menu, normalize_text, parse_menu, same_menu, text_similarity

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "Answer",
    "CallFlowLearner",
    "Discovery",
    "EnteredUserData",
    "HeardOption",
    "LearnError",
    "Outcome",
    "PressedDigits",
    "ReplayCheck",
    "RequestedData",
    "SpokeText",
    "check_replay",
    "discoveries_from_events",
    "flow_id_for",
    "mask_numbers",
    "working_path",
]

DEFAULT_MIN_SIMILARITY = 0.6
_SAME_MENU_MIN_SIMILARITY = 0.5  # a menu heard again, maybe cut short or after "that is not a valid option"
_MIN_LISTEN_TIMEOUT = 30.0
_HOLD_STEP_ID = "hold"
_TRANSFER_STEP_ID = "transfer"
_LEARNED_TAG = "learned"


class LearnError(ValueError):
    """The call teaches nothing usable; the message says why."""


# ---------------------------------------------------------------------------- what a call did


@dataclass(frozen=True)
class HeardOption:
    key: str | None  # None: a spoken-only choice
    label: str
    spoken: str | None = None  # what to say to choose it ("say billing")


@dataclass(frozen=True)
class RequestedData:
    field: str
    modes: tuple[str, ...]
    terminator: str | None = None
    length: int | None = None


@dataclass(frozen=True)
class PressedDigits:
    digits: str


@dataclass(frozen=True)
class SpokeText:
    text: str


@dataclass(frozen=True)
class EnteredUserData:
    """A vault value entered into the menu: which one and how, never the value."""

    field: str
    mode: str  # "dtmf" or "speech"
    terminator: str | None = None
    length: int | None = None


Answer = PressedDigits | SpokeText | EnteredUserData


@dataclass(frozen=True)
class Discovery:
    """One menu heard and how it was answered (``action`` None: nothing was sent)."""

    step_id: str
    transcript: str  # "" when the step was replayed without speech-to-text
    options: tuple[HeardOption, ...] = ()
    data_requests: tuple[RequestedData, ...] = ()
    open_question: bool = False
    is_hold_message: bool = False
    t_start: float = 0.0
    t_end: float = 0.0
    listened_seconds: float = 0.0
    action: Answer | None = None
    purpose: str | None = None  # of the action: "selection", "user_data", "recovery", "flow", "answer"

    def option_for_key(self, key: str) -> HeardOption | None:
        return next((option for option in self.options if option.key == key), None)


@dataclass(frozen=True)
class Outcome:
    reached_hold: bool  # hold music or a queue announcement after the last menu
    reached_human: bool  # a live person after the last menu
    completed: bool  # the call ended "completed" (the user was bridged)


def discoveries_from_events(events: list[dict[str, Any]]) -> tuple[list[Discovery], Outcome]:
    """The menus a call heard, each with its answer, and how the call ended.

    ``events``: a call's journal (``CallEvent.to_dict()`` shapes). An action answers the last
    menu heard by the same step; an action of a step that heard no menu (a DTMF step, a step
    replayed without speech-to-text) is a discovery with an empty transcript. Digits pressed in a
    row join up; of other actions in a row the last one counts.
    """
    discoveries: list[Discovery] = []
    current: Discovery | None = None
    reached_hold = reached_human = completed = False
    for event in sorted(events, key=lambda e: e.get("seq", 0)):
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "IVR_MENU_DETECTED":
            if current is not None:
                discoveries.append(current)
            current = _discovery_from_menu(data)
            if current.is_hold_message:
                reached_hold = True
            else:
                reached_hold = reached_human = False  # only what follows the last menu counts
        elif kind in ("IVR_DTMF_SENT", "IVR_SPEECH_SENT"):
            step_id = str(data.get("step_id", ""))
            if current is None or current.step_id != step_id:
                if current is not None:
                    discoveries.append(current)
                current = Discovery(step_id=step_id, transcript="")
            current = _answered(current, kind, data)
        elif kind == "HOLD_DETECTED":
            reached_hold = True
        elif kind == "HUMAN_DETECTED":
            reached_human = True
        elif kind == "CALL_ENDED":
            completed = data.get("status") == "completed"
    if current is not None:
        discoveries.append(current)
    return discoveries, Outcome(reached_hold=reached_hold, reached_human=reached_human, completed=completed)


def _discovery_from_menu(data: dict[str, Any]) -> Discovery:
    options = []
    for option in data.get("options") or []:
        if isinstance(option, dict):
            options.append(HeardOption(option.get("key"), str(option.get("label") or ""), option.get("spoken")))
        else:  # older journals list the keys only
            options.append(HeardOption(str(option), ""))
    requests = tuple(
        RequestedData(
            field=str(request["field"]),
            modes=tuple(request.get("modes") or ("dtmf",)),
            terminator=request.get("terminator"),
            length=request.get("length"),
        )
        for request in data.get("data_requests") or []
        if request.get("field")
    )
    return Discovery(
        step_id=str(data.get("step_id", "")),
        transcript=str(data.get("transcript") or ""),
        options=tuple(options),
        data_requests=requests,
        open_question=bool(data.get("open_question", False)),
        is_hold_message=bool(data.get("is_hold_message", False)),
        t_start=float(data.get("t_start") or 0.0),
        t_end=float(data.get("t_end") or 0.0),
        listened_seconds=float(data.get("listened_seconds") or 0.0),
    )


def _answered(discovery: Discovery, kind: str, data: dict[str, Any]) -> Discovery:
    purpose = data.get("purpose")
    field = data.get("field")
    action: Answer
    if purpose == "user_data":
        if not field:
            return discovery  # an entry that does not say what was entered cannot be replayed
        request = next((r for r in discovery.data_requests if r.field == field), None)
        action = EnteredUserData(
            field=str(field),
            mode="dtmf" if kind == "IVR_DTMF_SENT" else "speech",
            terminator=request.terminator if request else None,
            length=request.length if request else None,
        )
    elif kind == "IVR_DTMF_SENT":
        digits = str(data.get("digits") or "")
        if not digits:
            return discovery
        if isinstance(discovery.action, PressedDigits):
            digits = discovery.action.digits + digits
        action = PressedDigits(digits)
    else:
        text = str(data.get("text") or "").strip()
        if not text:
            return discovery
        action = SpokeText(text)
    return replace(discovery, action=action, purpose=purpose)


# ---------------------------------------------------------------------------- the path that worked


def working_path(discoveries: Sequence[Discovery]) -> list[Discovery]:
    """The answered menus that led on, in order: a menu heard again cuts off the detour taken
    since its earlier hearing (its last answer is the one that worked); unanswered menus and
    queue announcements are not steps."""
    path: list[Discovery] = []
    for discovery in discoveries:
        if discovery.is_hold_message and discovery.action is None:
            continue
        earlier = next((index for index, seen in enumerate(path) if _same_menu(seen, discovery)), None)
        if earlier is not None:
            del path[earlier:]
        path.append(discovery)
    return [discovery for discovery in path if discovery.action is not None]


def _same_menu(a: Discovery, b: Discovery) -> bool:
    if not a.transcript.strip() or not b.transcript.strip():
        # Without words, only a step run again is known to be the same menu.
        return not a.transcript.strip() and not b.transcript.strip() and a.step_id == b.step_id
    # same_menu alone pairs two menus that share keys when one label was not caught ("press 1
    # for ... press 0 for an operator"), and cutting a wrong "detour" loses steps that worked.
    similarity = text_similarity(_comparable(a.transcript), _comparable(b.transcript))
    return similarity >= _SAME_MENU_MIN_SIMILARITY and same_menu(parse_menu(a.transcript), parse_menu(b.transcript))


# ---------------------------------------------------------------------------- replay check


@dataclass(frozen=True)
class ReplayCheck:
    ok: bool
    similarity: float
    reason: str


def check_replay(step: CallFlowStep, heard_transcript: str, heard_menu: Menu | None = None) -> ReplayCheck:
    """May a learned step be replayed on what was just heard?

    Yes while the prompt's words are close to the expected ones (``metadata.min_similarity``,
    default 0.6) and, when the heard menu offers options, the step's choice is still offered
    under the same key with a matching label (a reordered menu fails however similar its words).
    ``heard_menu`` defaults to ``parse_menu(heard_transcript)``. A step with no
    ``expected_transcript`` (hand-written) always passes.
    """
    expected = step.metadata.get("expected_transcript")
    if not expected:
        return ReplayCheck(True, 1.0, "no expectation")
    minimum = float(step.metadata.get("min_similarity", DEFAULT_MIN_SIMILARITY))
    similarity = text_similarity(_comparable(str(expected)), _comparable(heard_transcript))
    if similarity < minimum:
        return ReplayCheck(False, similarity, f"heard a different prompt (similarity {similarity:.2f} < {minimum:.2f})")
    menu = heard_menu if heard_menu is not None else parse_menu(heard_transcript)
    problem = _choice_problem(step, menu)
    if problem:
        return ReplayCheck(False, similarity, problem)
    return ReplayCheck(True, similarity, f"matches (similarity {similarity:.2f})")


def _choice_problem(step: CallFlowStep, menu: Menu) -> str | None:
    chosen = step.metadata.get("chosen")
    if isinstance(chosen, dict) and menu.options:
        key, label = chosen.get("key"), str(chosen.get("label") or "")
        if key is not None:
            offered = menu.option_for_key(str(key))
            was_offered = any(o.get("key") == key for o in step.metadata.get("expected_options") or [])
            if offered is None and was_offered:
                return f"option {key} ({label or 'no label'}) is no longer offered"
            if offered is not None and label and not _labels_match(label, offered.label):
                return f"option {key} is now {offered.label!r}, not {label!r}"
        elif label and not any(_labels_match(label, o.label) for o in menu.options):
            return f"{label!r} is no longer offered"
    entry = step.metadata.get("user_data")
    if isinstance(entry, dict) and menu.data_requests:
        if entry.get("field") not in {request.field for request in menu.data_requests}:
            asked = ", ".join(request.field for request in menu.data_requests)
            return f"the menu asks for {asked}, not {entry.get('field')}"
    return None


def _labels_match(a: str, b: str) -> bool:
    """Tolerant of STT variants ("customer advocates") and of a label heard shorter or longer."""
    a, b = normalize_text(a).strip(" ."), normalize_text(b).strip(" .")
    if not a or not b:
        return False
    return a in b or b in a or difflib.SequenceMatcher(None, a, b).ratio() >= 0.75


_DIGIT_TOKEN = r"(?:\d+|zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_NUMBER_RUN = re.compile(rf"\b{_DIGIT_TOKEN}(?:[\s,.-]+{_DIGIT_TOKEN})*\b", re.IGNORECASE)
_MASKED_DIGITS = 4  # a key ("press 600") stays; an account number read back does not


def mask_numbers(text: str) -> str:
    """``you entered 4 5 6 7 8`` -> ``you entered [number]``: numbers of four digits or more
    (figures or digit words) are the caller's data or a phone number, never a menu key."""

    def mask(match: re.Match[str]) -> str:
        tokens = re.findall(_DIGIT_TOKEN, match.group(), re.IGNORECASE)
        digits = sum(len(token) if token.isdigit() else 1 for token in tokens)
        return "[number]" if digits >= _MASKED_DIGITS else match.group()

    return _NUMBER_RUN.sub(mask, text)


def _comparable(text: str) -> str:
    return mask_numbers(normalize_text(text))


# ---------------------------------------------------------------------------- ids


def flow_id_for(company: str, phone_number: str) -> str:
    """``Acme Bank`` -> ``acme-bank``; with no company, ``number-18005550100``."""
    ascii_name = unicodedata.normalize("NFKD", company).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:100].rstrip("-")
    if slug:
        return slug
    digits = re.sub(r"\D", "", phone_number)
    return f"number-{digits or 'unknown'}"


# ---------------------------------------------------------------------------- the learner


class CallFlowLearner:
    def __init__(self, *, min_similarity: float = DEFAULT_MIN_SIMILARITY, now: Callable[[], datetime] = utc_now):
        self.min_similarity = min_similarity
        self.now = now

    def build_flow(
        self,
        discoveries: Sequence[Discovery],
        phone_number: str,
        company: str,
        intent: str,
        *,
        device: str | None = None,
        outcome: Outcome | None = None,
        flow_id: str | None = None,
    ) -> CallFlow:
        """A new flow (version 1): one LISTEN step per menu on the working path, then HOLD and
        TRANSFER. ``flow_id`` defaults to ``flow_id_for(company, phone_number)``; ``outcome``
        None trusts the discoveries to lead somewhere. Raises LearnError when the call teaches
        nothing."""
        path = _learnable_path(discoveries, outcome)
        ids = [f"menu_{index}" for index in range(1, len(path) + 1)]
        steps = [
            self._listen_step(step_id, discovery, intent, _HOLD_STEP_ID, _TRANSFER_STEP_ID)
            for step_id, discovery in zip(ids, path)
        ]
        steps += [_hold_step(_HOLD_STEP_ID, _TRANSFER_STEP_ID), _transfer_step(_TRANSFER_STEP_ID, device)]
        now = self.now()
        name = company.strip() or f"Number {phone_number}"
        return CallFlow(
            id=flow_id or flow_id_for(company, phone_number),
            name=f"{name} - {_short(intent)}" if intent.strip() else name,
            company=company.strip(),
            phone_number=phone_number,
            description=f"Learned from a call: {_short(intent, 200)}" if intent.strip() else "Learned from a call",
            steps=steps,
            created_at=now,
            updated_at=now,
            version=1,
            tags=[_LEARNED_TAG],
        )

    def merge_discoveries(
        self,
        existing_flow: CallFlow,
        new_discoveries: Sequence[Discovery],
        *,
        outcome: Outcome | None = None,
        intent: str = "",
    ) -> CallFlow:
        """The next version of ``existing_flow`` after another call to its number.

        The flow's answering steps (LISTEN and DTMF) are paired in order with the menus on the
        call's working path. When every one is confirmed (same answer, and what was heard passes
        ``check_replay``) the steps stay as they are. Otherwise the menu part follows the new
        call: a confirmed step is kept as written, any other menu becomes a learned step, and the
        flow's HOLD and TRANSFER steps (and whatever follows the first of them) are kept. Counts:
        +1 success for a completed call, +1 failure for one that was not (unchanged without an
        outcome). Raises LearnError when the call teaches nothing.
        """
        path = _learnable_path(new_discoveries, outcome)
        answering = [step for step in existing_flow.steps if step.type in _ANSWERING_STEPS]
        confirmed = {index for index, (old, new) in enumerate(zip(answering, path)) if _confirms(old, new)}
        unchanged = len(answering) == len(path) == len(confirmed)
        steps = (
            existing_flow.steps if unchanged else self._relearned_steps(existing_flow, answering, confirmed, path, intent)
        )
        success, fail = existing_flow.success_count, existing_flow.fail_count
        if outcome is not None:
            success, fail = (success + 1, fail) if outcome.completed else (success, fail + 1)
        return CallFlow.model_validate(
            {
                **existing_flow.model_dump(),
                "steps": [step.model_dump() for step in steps],
                "version": existing_flow.version + 1,
                "updated_at": self.now(),
                "success_count": success,
                "fail_count": fail,
            }
        )

    def _relearned_steps(
        self,
        flow: CallFlow,
        answering: list[CallFlowStep],
        confirmed: set[int],
        path: list[Discovery],
        intent: str,
    ) -> list[CallFlowStep]:
        menus_end = next((i for i, step in enumerate(flow.steps) if step.type in _TAIL_STEPS), len(flow.steps))
        tail = list(flow.steps[menus_end:])
        used = {step.id for step in tail} | {answering[index].id for index in confirmed}
        transfer = next((step for step in tail if step.type is StepType.TRANSFER), None)
        if transfer is None:
            transfer = _transfer_step(_unique_id(_TRANSFER_STEP_ID, used), None)
            tail.append(transfer)
            used.add(transfer.id)
        hold = next((step for step in tail if step.type is StepType.HOLD), None)
        if hold is None:
            hold = _hold_step(_unique_id(_HOLD_STEP_ID, used), transfer.id)
            tail.insert(0, hold)
            used.add(hold.id)
        head: list[CallFlowStep] = []
        for index, discovery in enumerate(path):
            if index in confirmed:
                head.append(answering[index])
                continue
            step_id = _unique_id(f"menu_{index + 1}", used)
            used.add(step_id)
            head.append(self._listen_step(step_id, discovery, intent, hold.id, transfer.id))
        # Kept steps may still name steps of the old flow that are gone.
        return [_without_dangling(step, used) for step in head + tail]

    def _listen_step(self, step_id: str, discovery: Discovery, intent: str, hold_id: str, transfer_id: str) -> CallFlowStep:
        action = discovery.action
        assert action is not None, "an unanswered menu is not on the working path"
        metadata: dict[str, Any] = {}
        if discovery.transcript.strip():
            metadata["expected_transcript"] = mask_numbers(discovery.transcript)
            metadata["expected_options"] = [{"key": o.key, "label": mask_numbers(o.label)} for o in discovery.options]
            metadata["min_similarity"] = self.min_similarity
        dtmf: str | None = None
        match action:
            case PressedDigits(digits=digits):
                dtmf = digits
                label = option.label if (option := discovery.option_for_key(digits)) else ""
                metadata["chosen"] = {"key": digits, "label": label}
                description = f"{label} (press {digits})" if label else f"press {digits}"
            case SpokeText(text=text):
                metadata["say"] = text
                description = f'say "{text}"'
                option = next((o for o in discovery.options if o.spoken and _labels_match(o.spoken, text)), None)
                if option is not None:
                    metadata["chosen"] = {"key": None, "label": option.label}
                    description = f'{option.label} (say "{text}")'
            case EnteredUserData(field=field, mode=mode, terminator=terminator, length=length):
                entry: dict[str, Any] = {"field": field, "mode": mode, "terminator": terminator}
                if length is not None:
                    entry["length"] = length
                metadata["user_data"] = entry
                description = f"enter the {field.replace('_', ' ')} ({mode})"
        metadata["learned"] = True
        if intent.strip():
            metadata["intent"] = _short(intent, 200)
        return CallFlowStep(
            id=step_id,
            type=StepType.LISTEN,
            dtmf=dtmf,
            timeout=round(max(_MIN_LISTEN_TIMEOUT, 2 * discovery.listened_seconds), 1),
            description=description,
            conditions={"on_hold": hold_id, "on_human": transfer_id},
            metadata=metadata,
        )


_ANSWERING_STEPS = frozenset({StepType.LISTEN, StepType.DTMF})
_TAIL_STEPS = frozenset({StepType.HOLD, StepType.TRANSFER})


def _learnable_path(discoveries: Sequence[Discovery], outcome: Outcome | None) -> list[Discovery]:
    """The working path, when it is known to lead somewhere. ``outcome`` None: the caller vouches for it."""
    path = working_path(discoveries)
    got_through = outcome is not None and (outcome.reached_hold or outcome.reached_human)
    if not path and not got_through:
        raise LearnError("nothing to learn: no menu was answered and the call never reached hold or a person")
    if outcome is not None and not got_through:
        raise LearnError(
            "the call never got past the menus (no hold or person after the last menu): its answers are not known to work"
        )
    return path


def _confirms(step: CallFlowStep, discovery: Discovery) -> bool:
    """The call did at this menu what the step says, and heard what the step expects."""
    if not _same_answer(step, discovery.action):
        return False
    return not discovery.transcript.strip() or check_replay(step, discovery.transcript).ok


def _same_answer(step: CallFlowStep, action: Answer | None) -> bool:
    match action:
        case PressedDigits(digits=digits):
            return step.dtmf is not None and step.dtmf.replace("w", "").replace("W", "") == digits
        case SpokeText(text=text):
            said = step.metadata.get("say")
            return not step.dtmf and isinstance(said, str) and normalize_text(said) == normalize_text(text)
        case EnteredUserData(field=field, mode=mode):
            entry = step.metadata.get("user_data")
            return (
                not step.dtmf
                and isinstance(entry, dict)
                and entry.get("field") == field
                and entry.get("mode", "dtmf") == mode
            )
    return False


def _hold_step(step_id: str, transfer_id: str) -> CallFlowStep:
    return CallFlowStep(
        id=step_id, type=StepType.HOLD, description="Wait on hold for a live person", conditions={"on_human": transfer_id}
    )


def _transfer_step(step_id: str, device: str | None) -> CallFlowStep:
    return CallFlowStep(
        id=step_id,
        type=StepType.TRANSFER,
        description="Greet the agent and bridge the user's phone",
        metadata={"device": device} if device else {},
    )


def _unique_id(base: str, used: set[str]) -> str:
    if base not in used:
        return base
    suffix = 2
    while f"{base}_{suffix}" in used:
        suffix += 1
    return f"{base}_{suffix}"


def _without_dangling(step: CallFlowStep, known: set[str]) -> CallFlowStep:
    conditions = {key: target for key, target in step.conditions.items() if target in known}
    next_step = step.next_step if step.next_step in known else None
    if conditions == step.conditions and next_step == step.next_step:
        return step
    return step.model_copy(update={"conditions": conditions, "next_step": next_step})


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"
