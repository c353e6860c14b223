"""Call flows: the known way through one company's phone menu, and the loader for flow files.

A flow is a list of steps run in order. Each step may jump elsewhere (``next_step``) or on an
outcome (``conditions``). Validation rejects anything that would leave a flow unexecutable, and
names the field at fault (``steps[2].dtmf: ...``) so that a hand-written file is easy to fix.

Condition keys (what happened during a step -> the step id to go to):

- ``on_timeout``: the step's ``timeout`` ran out before it reached its goal (a LISTEN step heard
  no complete prompt, a HOLD step heard no person).
- ``on_failure``: the step could not be carried out (digits not sent, nothing to say, the user's
  phone did not answer the transfer).
- ``on_human``: a live person was detected during the step (usual target: the TRANSFER step).
- ``on_hold``: hold music or a queue announcement was detected during the step (the company
  skipped the rest of its menu; usual target: the HOLD step).

With no matching condition the session applies its own default for that outcome.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.clock import utc_now
from app.phone import normalize_phone_number

CONDITION_KEYS: tuple[str, ...] = ("on_timeout", "on_failure", "on_human", "on_hold")
FLOW_FILE_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")

_DTMF = re.compile(r"^[0-9*#A-DwW]+$")
_STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FLOW_ID = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_DTMF_MAX = 64

Loc = tuple[str | int, ...]


class StepType(str, Enum):
    DTMF = "DTMF"  # send `dtmf` to the company
    WAIT = "WAIT"  # let `timeout` seconds pass, ignoring what is said
    LISTEN = "LISTEN"  # let a menu prompt play to its end, then send `dtmf` if given
    HOLD = "HOLD"  # wait on hold for a live person (`timeout` None: the session's max hold time)
    SPEAK = "SPEAK"  # say metadata.text (TTS) or play metadata.audio (a recording ref)
    TRANSFER = "TRANSFER"  # greet the agent, ring the user's metadata.device and bridge: ends the flow


# Steps where a timeout means something; elsewhere it would be silently ignored, so it is refused.
_TIMED_STEPS = frozenset({StepType.WAIT, StepType.LISTEN, StepType.HOLD})
_DIGIT_STEPS = frozenset({StepType.DTMF, StepType.LISTEN})


def _invalid(problems: list[tuple[Loc, str]]) -> PydanticCustomError:
    """One validation error carrying every problem with the field it belongs to.

    Pydantic gives a model-level error the model's own location only; the problems keep their
    field path so that ``flow_error_lines`` can print ``steps[2].next_step: ...``.
    """
    summary = "; ".join(f"{format_loc(loc)}: {reason}" if loc else reason for loc, reason in problems)
    return PydanticCustomError("invalid_flow", "{summary}", {"summary": summary, "problems": problems})


def _text_not_number(value: Any, what: str) -> Any:
    # YAML reads unquoted digits as a number, and 0-led ones as octal: "0123" would become 83.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"write {what} as a quoted string (e.g. \"{value}\"): unquoted digits are read as a number")
    return value


class CallFlowStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., description="Unique within the flow: letters, digits, _ and -")
    type: StepType
    description: str = ""
    dtmf: str | None = Field(None, description="Digits 0-9 * # A-D; w = 0.5 s pause, W = 1 s pause")
    timeout: float | None = Field(None, gt=0, description="Seconds")
    next_step: str | None = Field(None, description="Step to run next; None: the following step in the list")
    conditions: dict[str, str] = Field(default_factory=dict, description="Outcome (on_timeout, ...) -> step id")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_is_name(cls, value: str) -> str:
        if not _STEP_ID.match(value):
            raise ValueError("must be 1-64 letters, digits, '_' or '-'")
        return value

    @field_validator("type", mode="before")
    @classmethod
    def _type_any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("dtmf", mode="before")
    @classmethod
    def _dtmf_is_text(cls, value: Any) -> Any:
        return _text_not_number(value, "dtmf")

    @field_validator("dtmf")
    @classmethod
    def _dtmf_is_dialable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _DTMF.match(value):
            raise ValueError("only digits 0-9 * # A-D and the pauses w (0.5 s) and W (1 s) are allowed")
        if not value.strip("wW"):
            raise ValueError("has no digit, only pauses: use a WAIT step to pause")
        if len(value) > _DTMF_MAX:
            raise ValueError(f"is longer than {_DTMF_MAX} characters")
        return value

    @model_validator(mode="after")
    def _fits_its_type(self) -> "CallFlowStep":
        problems: list[tuple[Loc, str]] = []
        kind = self.type.value
        if self.type is StepType.DTMF and not self.dtmf:
            problems.append((("dtmf",), "a DTMF step needs the digits to send"))
        if self.dtmf and self.type not in _DIGIT_STEPS:
            problems.append((("dtmf",), f"a {kind} step sends no digits (only DTMF and LISTEN steps do)"))
        if self.timeout is not None and self.type not in _TIMED_STEPS:
            problems.append((("timeout",), f"a {kind} step has no timeout"))
        for key in self.conditions:
            if key not in CONDITION_KEYS:
                problems.append((("conditions", key), f"unknown condition; known: {', '.join(CONDITION_KEYS)}"))
        if self.next_step == self.id:
            problems.append((("next_step",), "a step cannot be followed by itself"))
        if self.type is StepType.SPEAK:
            text, audio = self.metadata.get("text"), self.metadata.get("audio")
            if not (isinstance(text, str) and text.strip()) and not (isinstance(audio, str) and audio.strip()):
                problems.append(
                    (("metadata", "text"), "a SPEAK step needs metadata.text (or metadata.audio, a recording ref)")
                )
        if self.type is StepType.TRANSFER:
            if self.next_step is not None:
                problems.append((("next_step",), "a TRANSFER step ends the flow: nothing runs after it"))
            device = self.metadata.get("device")
            if device is not None and not (isinstance(device, str) and device.strip()):
                problems.append((("metadata", "device"), "must be the name of a user device, e.g. sip_phone"))
        prompt = self.metadata.get("prompt_contains")
        if prompt is not None and not (isinstance(prompt, str) and prompt.strip()):
            problems.append((("metadata", "prompt_contains"), "must be a non-empty phrase"))
        if problems:
            raise _invalid(problems)
        return self


class CallFlow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., description="Slug: lower-case letters and digits, joined by - or _")
    name: str = Field(..., min_length=1, max_length=200)
    company: str = Field("", max_length=200)
    phone_number: str = Field(..., description="Normalised like CallRequest.number")
    description: str = ""
    steps: list[CallFlowStep] = Field(..., min_length=1)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    # Counts within a 32-bit integer: what every database stores.
    version: int = Field(1, ge=1, le=2**31 - 1)
    tags: list[str] = Field(default_factory=list)
    success_count: int = Field(0, ge=0, le=2**31 - 1)
    fail_count: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str) -> str:
        if not _FLOW_ID.match(value) or len(value) > 100:
            raise ValueError("must be a slug such as acme-bank (a-z, 0-9, joined by - or _)")
        return value

    @field_validator("phone_number", mode="before")
    @classmethod
    def _phone_number_is_text(cls, value: Any) -> Any:
        return _text_not_number(value, "phone_number")

    @field_validator("phone_number")
    @classmethod
    def _phone_number_is_dialable(cls, value: str) -> str:
        return normalize_phone_number(value)

    @field_validator("created_at", "updated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # YAML timestamps without an offset are naive; flow times are UTC.
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _steps_connect(self) -> "CallFlow":
        problems: list[tuple[Loc, str]] = []
        first_index: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if step.id in first_index:
                problems.append((("steps", index, "id"), f"duplicate step id {step.id!r} (also steps[{first_index[step.id]}])"))
            else:
                first_index[step.id] = index
        known = ", ".join(first_index)
        for index, step in enumerate(self.steps):
            if step.next_step is not None and step.next_step not in first_index:
                problems.append((("steps", index, "next_step"), f"{step.next_step!r} is not a step id (steps: {known})"))
            for key, target in step.conditions.items():
                if target not in first_index:
                    problems.append((("steps", index, "conditions", key), f"{target!r} is not a step id (steps: {known})"))
        transfers = [index for index, step in enumerate(self.steps) if step.type is StepType.TRANSFER]
        for index in transfers[1:]:
            problems.append(
                (("steps", index, "type"), f"a flow hands the call over once: steps[{transfers[0]}] is already a TRANSFER")
            )
        if problems:
            raise _invalid(problems)
        return self

    def step(self, step_id: str) -> CallFlowStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"flow {self.id!r} has no step {step_id!r}")

    @property
    def first_step(self) -> CallFlowStep:
        return self.steps[0]

    def next_of(self, step: CallFlowStep) -> CallFlowStep | None:
        """The step after ``step`` when no condition fired; None when the flow is done."""
        if step.next_step is not None:
            return self.step(step.next_step)
        if step.type is StepType.TRANSFER:
            return None
        index = next(i for i, candidate in enumerate(self.steps) if candidate.id == step.id)
        return self.steps[index + 1] if index + 1 < len(self.steps) else None

    def edit_of(self, stored: CallFlow | None, now: datetime | None = None) -> CallFlow:
        """This flow as the replacement of ``stored`` (the flow of the same id, if any).

        An edit is a new version of the same flow: its version goes past the stored one, its
        creation time and its history of outcomes carry over. With nothing stored it is as given.
        """
        if stored is None:
            return self
        return self.model_copy(
            update={
                "version": max(self.version, stored.version + 1),
                "created_at": stored.created_at,
                "updated_at": now or utc_now(),
                "success_count": stored.success_count,
                "fail_count": stored.fail_count,
            }
        )


# ---------------------------------------------------------------------------- error messages


def format_loc(loc: Loc) -> str:
    """``("steps", 2, "dtmf")`` -> ``steps[2].dtmf``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def flow_problems(exc: ValidationError) -> list[tuple[Loc, str]]:
    """Every problem in a CallFlow validation error, with its full field location."""
    problems: list[tuple[Loc, str]] = []
    for error in exc.errors():
        base = tuple(error["loc"])
        if error["type"] == "invalid_flow":
            problems.extend((base + tuple(loc), reason) for loc, reason in error["ctx"]["problems"])
        else:
            problems.append((base, error["msg"].removeprefix("Value error, ")))
    return problems


def flow_error_lines(exc: ValidationError) -> list[str]:
    """One readable line per problem, e.g. ``steps[2].dtmf: a DTMF step needs the digits to send``."""
    return [f"{format_loc(loc)}: {reason}" if loc else reason for loc, reason in flow_problems(exc)]


# ---------------------------------------------------------------------------- flow files


class FlowFileError(ValueError):
    """A flow file that cannot be used. The message starts with the path, then says why."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def load_flow_file(path: str | Path) -> CallFlow:
    """Read one flow from YAML (.yaml, .yml) or JSON (.json). Raises FlowFileError."""
    path = Path(path)
    if path.suffix.lower() not in FLOW_FILE_SUFFIXES:
        raise FlowFileError(path, f"not a flow file: expected one of {', '.join(FLOW_FILE_SUFFIXES)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowFileError(path, f"cannot read: {exc}") from None
    data = _parse(path, text)
    if data is None:
        raise FlowFileError(path, "the file is empty")
    if not isinstance(data, dict):
        raise FlowFileError(path, f"the top level must be a mapping of flow fields, not a {type(data).__name__}")
    try:
        return CallFlow.model_validate(data)
    except ValidationError as exc:
        lines = []
        for loc, reason in flow_problems(exc):
            line = _line_of(text, loc)
            where = f"line {line}: " if line is not None else ""
            lines.append(f"{where}{format_loc(loc)}: {reason}" if loc else f"{where}{reason}")
        raise FlowFileError(path, "invalid call flow: " + "; ".join(lines)) from None


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            raise FlowFileError(path, f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise FlowFileError(path, f"YAML syntax error{where}: {problem}") from None


def _line_of(text: str, loc: Loc) -> int | None:
    """1-based line of the deepest node along ``loc`` (JSON parses as YAML for this purpose)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def load_flows_dir(directory: str | Path) -> tuple[list[CallFlow], list[FlowFileError]]:
    """Every flow file in ``directory`` (sorted by name), and one error per file that is unusable.

    A bad file never hides the good ones: the caller logs each error and uses the flows.
    A missing directory is one error and no flows.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return [], [FlowFileError(directory, "not a directory")]
    flows: list[CallFlow] = []
    errors: list[FlowFileError] = []
    defined_in: dict[str, Path] = {}
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in FLOW_FILE_SUFFIXES):
        try:
            flow = load_flow_file(path)
        except FlowFileError as exc:
            errors.append(exc)
            continue
        if flow.id in defined_in:
            errors.append(FlowFileError(path, f"flow id {flow.id!r} is already defined in {defined_in[flow.id]}"))
            continue
        defined_in[flow.id] = path
        flows.append(flow)
    return flows, errors
