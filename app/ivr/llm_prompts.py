"""What the LLM navigators tell the model, and how they read its answer. Pure: no SDK, no I/O.

- ``NAVIGATION_TOOLS``: one provider-neutral definition of the tools (name, description, JSON
  schema of the arguments). ``tools_for(ctx)`` narrows it to the context (``enter_user_data`` only
  offers the fields the vault may disclose); each provider renders the result in its own shape.
- ``SYSTEM_PROMPT`` and ``render_context(ctx)``: the rules, and the call so far as text.
- ``action_from_tool_call(name, arguments, ctx)``: the model's tool call, validated, as an action
  and a reason. Anything the session must not carry out raises ``InvalidToolCall``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.ivr.menu import Menu, MenuOption
from app.ivr.navigator import (
    ENTRY_MODES,
    Action,
    EnterUserData,
    NavigationContext,
    PressDigits,
    ReportHold,
    ReportHuman,
    ReportStuck,
    RequestUserData,
    Say,
    Wait,
    describe_action,
)
from app.ivr.vault import FIELD_DESCRIPTIONS, NEVER_ENTER_FIELDS

MAX_WAIT_SECONDS = 30.0
MAX_SAY_CHARS = 200
_DIGITS = re.compile(r"^[0-9*#]{1,32}$")  # what a phone keypad has; A-D never appear in menus
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class InvalidToolCall(ValueError):
    """The model's tool call cannot be carried out (unknown tool, bad or missing arguments)."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of an object


def _object(properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_REASON = {"type": "string", "description": "One short sentence: why this is the right move."}

NAVIGATION_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "press_digits",
        "Press keys on the phone keypad to choose a menu option.",
        _object(
            {"digits": {"type": "string", "pattern": _DIGITS.pattern, "description": "Keys to press: 0-9, * or #."},
             "reason": _REASON},
            ("digits", "reason"),
        ),
    ),
    ToolSpec(
        "say",
        "Speak a short phrase, for menus that ask you to say something. Never personal data.",
        _object(
            {"text": {"type": "string", "maxLength": MAX_SAY_CHARS, "description": "The words to speak."},
             "reason": _REASON},
            ("text", "reason"),
        ),
    ),
    ToolSpec(
        "wait",
        "Keep listening: the menu is still being read, or nothing needs an answer yet.",
        _object(
            {"seconds": {"type": "number", "minimum": 1, "maximum": MAX_WAIT_SECONDS,
                         "description": "How long to listen before deciding again."},
             "reason": _REASON},
            ("seconds", "reason"),
        ),
    ),
    ToolSpec(
        "request_user_data",
        "Ask the caller for information the menu wants that is not in the list of available user data.",
        _object(
            {"field": {"type": "string", "pattern": _FIELD.pattern,
                       "description": "snake_case name; one of these when it fits: "
                                      + ", ".join(FIELD_DESCRIPTIONS) + "."},
             "question": {"type": "string", "description": "The question to show the caller."}},
            ("field", "question"),
        ),
    ),
    ToolSpec(
        "enter_user_data",
        "Enter one of the available user data fields: the app keys or speaks its value.",
        _object(
            {"field": {"type": "string", "description": "One of the available user data fields."},
             "mode": {"type": "string", "enum": list(ENTRY_MODES),
                      "description": "dtmf to key it, speech to say it, as the menu asks."}},
            ("field", "mode"),
        ),
    ),
    ToolSpec(
        "report_stuck",
        "Navigation cannot go on (no useful option, the same menu keeps coming back).",
        _object({"reason": _REASON}, ("reason",)),
    ),
    ToolSpec("report_hold", "This is a hold queue or wait announcement, not a menu.", _object({}, ())),
    ToolSpec("report_human", "A live person is speaking (not a recording).", _object({}, ())),
)

SYSTEM_PROMPT = """\
You navigate a company's automated phone menu for a caller, to reach the department that serves \
the caller's intent. Each turn you get the latest prompt the menu played (speech-to-text, so \
expect small errors), the options understood from it, and what happened earlier in the call. \
Answer by calling exactly one tool.

Rules:
1. If the menu is still being read, call wait, unless an option already heard clearly matches \
the intent.
2. Prefer the option that matches the intent. If none does, choose the representative, agent or \
operator option; if there is none either, try 0.
3. Do not repeat a selection that already led back to the same menu; read the history and the \
warnings.
4. Never guess or invent personal data, and never key or speak it with press_digits or say. When \
the menu asks for information, call enter_user_data if its field is listed as available (with \
the mode the menu accepts), otherwise request_user_data to ask the caller. Full Social Security \
numbers, full card numbers, CVVs and passwords are never entered: choose another way (a \
representative) instead.
5. A hold queue announcement: report_hold. A live person speaking: report_human.
6. A menu that asks you to say why you are calling: say a few words that describe the intent.
7. Stay in English unless the intent asks otherwise. If nothing sensible is left, report_stuck."""


def tools_for(ctx: NavigationContext) -> tuple[ToolSpec, ...]:
    """The tools that make sense here: ``enter_user_data`` lists the disclosable fields (and is
    left out when there are none, since a JSON schema enum cannot be empty)."""
    tools = []
    for tool in NAVIGATION_TOOLS:
        if tool.name == "enter_user_data":
            if not ctx.available_data:
                continue
            schema = json.loads(json.dumps(tool.parameters))
            schema["properties"]["field"]["enum"] = sorted(ctx.available_data)
            tool = ToolSpec(tool.name, tool.description, schema)
        tools.append(tool)
    return tuple(tools)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _option_line(option: MenuOption) -> str:
    ways = []
    if option.key is not None:
        ways.append(f"press {option.key}")
    if option.spoken is not None:
        ways.append(f'say "{option.spoken}"')
    language = f", language {option.language}" if option.language else ""
    return f"- {' or '.join(ways) or 'no way given'}: {option.label} ({option.kind.value}{language})"


def _menu_lines(menu: Menu) -> list[str]:
    lines = [f"Menu read to the end: {'yes' if menu.complete else 'no, it is still being read'}"]
    notes = [
        (menu.is_hold_message, "this sounds like a hold queue announcement"),
        (menu.sounds_human, "this sounds like a live person"),
        (menu.open_question, "the menu asks you to say why you are calling"),
        (menu.invalid_input, "the menu says the last input was not valid"),
    ]
    lines += [f"Note: {text}" for flag, text in notes if flag]
    lines.append("Options heard:" if menu.options else "Options heard: none")
    lines += [_option_line(option) for option in menu.options]
    for request in menu.data_requests:
        details = [" or ".join(sorted(request.modes))]
        if request.length:
            details.append(f"{request.length} digits")
        if request.terminator:
            details.append(f"ends with {request.terminator}")
        if request.date_format:
            details.append(f"format {request.date_format}")
        if request.optional:
            details.append("optional")
        lines.append(f"The menu asks for: {request.field} ({', '.join(details)})")
    return lines


def _data_lines(available: dict[str, str]) -> list[str]:
    if not available:
        return ["User data you may enter: none (ask the caller with request_user_data)"]
    how = {"dtmf": "keys only", "speech": "speech only", "both": "keys or speech"}
    return ["User data you may enter (names only; the app fills in the values):"] + [
        f"- {name}: {how.get(mode, mode)}" for name, mode in sorted(available.items())
    ]


def render_context(ctx: NavigationContext) -> str:
    """The call so far, as the model reads it. The ``Intent:`` and ``Transcript:`` lines come first."""
    lines = [
        f"Intent: {_one_line(ctx.intent) or '(none given: reach a person)'}",
        f'Transcript: "{_one_line(ctx.transcript)}"',
    ]
    lines += _menu_lines(ctx.menu)
    lines.append(f"Times this menu has been heard in this call: {ctx.attempt}")
    if ctx.history:
        lines.append("Earlier in this call (oldest first):")
        lines += [
            f'{n}. at {turn.elapsed_seconds:.0f} s heard "{_one_line(turn.transcript)}"'
            f" -> {describe_action(turn.action)}"
            for n, turn in enumerate(ctx.history, 1)
        ]
    lines.append(f"Selections already made: {', '.join(ctx.previous_selections) or 'none'}")
    lines += [f"Warning: {warning}" for warning in ctx.warnings]
    lines += _data_lines(ctx.available_data)
    lines.append(f"Seconds since navigation started: {ctx.elapsed_seconds:.0f}")
    return "\n".join(lines)


# --- reading the answer ------------------------------------------------------------------------


def _text(arguments: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = arguments.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise InvalidToolCall(f"{name!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _parse_arguments(arguments: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise InvalidToolCall(f"arguments are not JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise InvalidToolCall(f"arguments must be a JSON object, got {type(arguments).__name__}")
    return arguments


def action_from_tool_call(name: str, arguments: dict[str, Any] | str, ctx: NavigationContext) -> tuple[Action, str]:
    """Validate one tool call against the schema and the context: (action, reason)."""
    args = _parse_arguments(arguments)
    reason = _text(args, "reason", required=False)
    match name:
        case "press_digits":
            digits = _text(args, "digits").replace(" ", "")
            if not _DIGITS.match(digits):
                raise InvalidToolCall(f"digits must be 1-32 of 0-9 * #, got {digits!r}")
            return PressDigits(digits), reason or f"pressed {digits}"
        case "say":
            text = _text(args, "text")
            if len(text) > MAX_SAY_CHARS:
                raise InvalidToolCall(f"text is longer than {MAX_SAY_CHARS} characters")
            return Say(text), reason or f"said {text!r}"
        case "wait":
            seconds = args.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= MAX_WAIT_SECONDS:
                raise InvalidToolCall(f"seconds must be a number in (0, {MAX_WAIT_SECONDS:g}], got {seconds!r}")
            return Wait(float(seconds)), reason or "listening for the rest of the menu"
        case "request_user_data":
            field, question = _text(args, "field"), _text(args, "question")
            if not _FIELD.match(field):
                raise InvalidToolCall(f"field must be a snake_case name, got {field!r}")
            if field in NEVER_ENTER_FIELDS:
                raise InvalidToolCall(f"{field} is never entered, so it is not asked for either")
            return RequestUserData(field, question), f"the menu asks for {field}, which the vault does not hold"
        case "enter_user_data":
            field, mode = _text(args, "field"), _text(args, "mode")
            allowed = ctx.available_data.get(field)
            if allowed is None:
                known = ", ".join(ctx.available_data) or "none"
                raise InvalidToolCall(f"field {field!r} is not available user data ({known})")
            if mode not in ENTRY_MODES or allowed not in (mode, "both"):
                raise InvalidToolCall(f"{field} may be entered as {allowed}, not {mode!r}")
            return EnterUserData(field, mode), f"the menu asks for {field}"
        case "report_stuck":
            stuck_reason = _text(args, "reason")
            return ReportStuck(stuck_reason), stuck_reason
        case "report_hold":
            return ReportHold(), "this is a hold queue"
        case "report_human":
            return ReportHuman(), "a live person answered"
    raise InvalidToolCall(f"unknown tool {name!r}")
