"""Request and response bodies of the REST API (the JSON clients see)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app import devices as device_rules

from app.calls.models import RecordingChannel


class CallCreated(BaseModel):
    call_id: str
    status: str
    url: str


class UserDataAnswer(BaseModel):
    field: str = Field(..., min_length=1, max_length=64, description="account_number, zip_code, date_of_birth, ...")
    value: str = Field(..., min_length=1, max_length=256)
    permission: Literal["dtmf", "speech", "both", "never"] | None = Field(
        None, description="How it may be given to the menu (default: both)"
    )


class CallSummary(BaseModel):
    call_id: str
    number: str
    intent: str
    device: str
    flow_id: str | None
    company: str | None
    status: str
    reason: str | None
    detail: str | None
    created_at: str | None
    ended_at: str | None


class CallDetail(CallSummary):
    answered_at: str | None = None
    hold_started_at: str | None = None
    human_detected_at: str | None = None
    connected_at: str | None = None
    hold_seconds: float | None = None
    recording_url: str | None = None
    events: list[dict[str, Any]] = Field(default_factory=list)
    classifications: list[dict[str, Any]] = Field(default_factory=list)


class RecordingInfo(BaseModel):
    channel: RecordingChannel = Field(
        ...,
        description="far_end: the company as the app heard it; app: what the app said to it, on the same "
        "timeline (silence between); mixed: the two mixed; bridged: you and the person, recorded by the PBX "
        "from the moment you were bridged",
    )
    seconds: float
    url: str = Field(..., description="The WAV file (8 kHz, 16-bit mono); 410 Gone once removed")
    removed_at: str | None = Field(
        None,
        description="When retention deleted the file (HOLDSLAYER_RETAIN_RECORDINGS_DAYS after the call ended); "
        "null while it is kept",
    )


class CallRecordings(BaseModel):
    call_id: str
    recordings: list[RecordingInfo] = Field(
        ..., description="The recordings of the call, in this order: those kept, and those retention removed (removed_at)"
    )


class ErrorDetail(BaseModel):
    detail: str


class LearnFlowRequest(BaseModel):
    call_id: str = Field(..., min_length=1, description="An ended call whose journal shows the way through the menu")
    phone_number: str | None = Field(None, description="Default: the number the call dialled")
    company: str | None = Field(None, max_length=200, description="Default: the call's company, else none")
    intent: str | None = Field(None, description="Default: the call's intent")


class CallFigures(BaseModel):
    """What a set of finished calls (completed, failed, cancelled) adds up to; null where there is
    nothing to measure (no call, no hold, no person)."""

    calls: int = Field(..., ge=0, description="Finished calls")
    succeeded: int = Field(..., ge=0, description="Calls that got the user through to a person (completed)")
    success_rate: float | None = Field(..., ge=0, le=1, description="succeeded / calls, 3 decimals")
    hold_median_seconds: float | None = Field(..., ge=0, description="Median time on hold, of the calls that held")
    hold_p90_seconds: float | None = Field(..., ge=0, description="90th percentile of the time on hold")
    time_to_person_median_seconds: float | None = Field(
        ...,
        ge=0,
        description="Median time from the call's start (the request) to the person found: ringing, menus and hold",
    )
    time_to_person_p90_seconds: float | None = Field(..., ge=0, description="90th percentile of that time")


class CompanyFigures(CallFigures):
    company: str = Field(..., description="The company's name; the number dialled for a call to no known company")


class HourFigures(CallFigures):
    hour: int = Field(..., ge=0, le=23, description="Hour of the day the calls were placed, in hour_timezone")


class Analytics(BaseModel):
    hour_timezone: Literal["UTC"] = Field(..., description="The timezone of by_hour_utc's hours")
    overall: CallFigures
    by_company: list[CompanyFigures] = Field(..., description="Per company, the most called first")
    by_hour_utc: list[HourFigures] = Field(..., description="Per hour of the day with calls, in order")


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def call_summary(record) -> dict[str, Any]:
    """A stored call (``store.get_call`` / ``list_calls``) as ``CallSummary`` fields."""
    return {
        "call_id": record.id,
        "number": record.number,
        "intent": record.intent,
        "device": record.device,
        "flow_id": record.flow_id,
        "company": record.company,
        "status": record.status,
        "reason": record.reason,
        "detail": record.detail,
        "created_at": _iso(record.created_at),
        "ended_at": _iso(record.ended_at),
    }


def call_detail(record) -> dict[str, Any]:
    """A stored call as ``CallDetail`` fields: the summary, the times, the journal."""
    return {
        **call_summary(record),
        "answered_at": _iso(record.answered_at),
        "hold_started_at": _iso(record.hold_started_at),
        "human_detected_at": _iso(record.human_detected_at),
        "connected_at": _iso(record.connected_at),
        "hold_seconds": record.hold_seconds,
        "recording_url": f"/api/calls/{record.id}/recording" if record.recording_path else None,
        "events": record.events,
        "classifications": record.classifications,
    }


def field_error(field: str, message: str, where: str = "body") -> list[dict[str, Any]]:
    """One error in the shape of FastAPI's own validation errors, so clients parse one format."""
    return [{"loc": [where, field], "msg": message, "type": "value_error"}]


class DtmfKeys(BaseModel):
    digits: str = Field(..., pattern=r"^[0-9*#A-D]{1,32}$", description="Keys to press: 0-9 * # A-D, up to 32")


# ---------------------------------------------------------------------------- the user's devices


def _rule(check: Callable[[str], str | None]) -> Callable[[str], str]:
    def validate(value: str) -> str:
        problem = check(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return validate


DeviceName = Annotated[
    str,
    AfterValidator(_rule(device_rules.name_problem)),
    Field(
        description="Letters, digits, '.', '_' or '-': what requests and flows call it (e.g. sip_phone)",
        json_schema_extra={"minLength": 1, "maxLength": device_rules.NAME_MAX, "pattern": device_rules.NAME_PATTERN},
    ),
]
DialString = Annotated[
    str,
    AfterValidator(_rule(device_rules.dial_string_problem)),
    Field(
        description="Asterisk dial string TECH/resource: PJSIP/userphone, PJSIP/+15551234@trunk, Local/100@internal",
        json_schema_extra={"maxLength": device_rules.DIAL_STRING_MAX, "pattern": device_rules.DIAL_STRING_PATTERN},
    ),
]
DeviceLabel = Annotated[
    str,
    AfterValidator(_rule(device_rules.label_problem)),
    Field(description="For people: Alex's desk phone", json_schema_extra={"maxLength": device_rules.LABEL_MAX}),
]


class DeviceOut(BaseModel):
    name: str
    dial_string: str
    label: str
    default: bool = Field(description="The device rung when a call names none")


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DeviceName
    dial_string: DialString
    label: DeviceLabel = ""
    default: bool = Field(False, description="Make it the default device (the first device always is)")


class DeviceReplace(BaseModel):
    """PUT: the device as it should be. Its name is the path's (a rename is a delete and a create)."""

    model_config = ConfigDict(extra="forbid")

    name: DeviceName | None = Field(None, description="If given, the path's name")
    dial_string: DialString
    label: DeviceLabel = ""
    default: bool | None = Field(
        None, description="true: make it the default; false on the default device is refused (409); omitted: unchanged"
    )


class DevicePatch(BaseModel):
    """PATCH: what to change; the rest stays."""

    model_config = ConfigDict(extra="forbid")

    dial_string: DialString | None = None
    label: DeviceLabel | None = None
    default: bool | None = Field(None, description="true: make it the default device (false on it is refused: 409)")


def device_out(device: Any) -> dict[str, Any]:
    """A stored device (``app.devices.Device``) as ``DeviceOut`` fields."""
    return {"name": device.name, "dial_string": device.dial_string, "label": device.label, "default": device.is_default}


class Problem(BaseModel):
    """A 404 or 409: what is wrong, in words."""

    detail: str
