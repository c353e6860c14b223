"""Request and response bodies of the REST API (the JSON clients see)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

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
    url: str = Field(..., description="The WAV file (8 kHz, 16-bit mono)")


class CallRecordings(BaseModel):
    call_id: str
    recordings: list[RecordingInfo] = Field(..., description="The recordings kept for the call, in this order")


class ErrorDetail(BaseModel):
    detail: str


class LearnFlowRequest(BaseModel):
    call_id: str = Field(..., min_length=1, description="An ended call whose journal shows the way through the menu")
    phone_number: str | None = Field(None, description="Default: the number the call dialled")
    company: str | None = Field(None, description="Default: the call's company, else none")
    intent: str | None = Field(None, description="Default: the call's intent")


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
