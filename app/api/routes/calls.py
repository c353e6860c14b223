"""/api/calls: start a call, list and read calls, their recordings, hang up, give user data."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse

from app.analytics import analytics
from app.api import actions
from app.api.deps import Runtime, StoreDep
from app.api.schemas import (
    Analytics,
    CallCreated,
    CallDetail,
    CallRecordings,
    CallSummary,
    DtmfKeys,
    ErrorDetail,
    RecordingInfo,
    UserDataAnswer,
    call_detail,
    call_summary,
    field_error,
)
from app.calls.models import CallRequest, CallStatus, RecordingChannel
from app.phone import normalize_phone_number

router = APIRouter()


def _no_call(call_id: str) -> HTTPException:
    return HTTPException(404, f"no call with id {call_id!r}")


@router.post("/api/calls", status_code=201, response_model=CallCreated)
async def create_call(body: CallRequest, runtime: Runtime) -> CallCreated:
    call_id = await actions.start_call(runtime, body)
    return CallCreated(call_id=call_id, status=CallStatus.PENDING.value, url=f"/api/calls/{call_id}")


_LIST_HEADERS = {
    "X-Total-Count": {
        "description": "How many calls match the filters, over all pages",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'The next page, when there is one: `</api/calls?...&offset=N>; rel="next"` (the same filters)',
        "schema": {"type": "string"},
        "required": False,
    },
}


@router.get(
    "/api/calls",
    response_model=list[CallSummary],
    responses={200: {"description": "The calls, newest first", "headers": _LIST_HEADERS}},
)
async def list_calls(
    store: StoreDep,
    request: Request,
    response: Response,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000_000),
    status: CallStatus | None = Query(None, description="Only calls in this status (the outcome, once ended)"),
    company: str | None = Query(
        None, min_length=1, max_length=200, description="Only calls whose company's name contains this (any case)"
    ),
    number: str | None = Query(
        None, min_length=1, max_length=64, description="Only calls to this number (spaces, dashes, brackets ignored)"
    ),
    since: datetime | None = Query(
        None, description="Only calls placed at or after this time (ISO 8601; without an offset: UTC)"
    ),
    until: datetime | None = Query(None, description="Only calls placed before this time (ISO 8601; without an offset: UTC)"),
) -> list[dict[str, Any]]:
    """Stored calls, newest first, a page at a time: every filter given must hold. The header
    ``X-Total-Count`` says how many match, ``Link`` (rel="next") where the next page is."""
    if number is not None:
        try:
            number = normalize_phone_number(number)
        except ValueError as exc:
            raise HTTPException(422, field_error("number", str(exc), "query")) from None
    since, until = _utc("since", since), _utc("until", until)
    if since is not None and until is not None and since >= until:
        raise HTTPException(422, field_error("until", f"must be after since ({since.isoformat()})", "query"))
    filters = {"status": status.value if status else None, "company": company, "number": number, "since": since, "until": until}

    def page() -> tuple[list[Any], int]:
        return store.list_calls(limit=limit, offset=offset, **filters), store.count_calls(**filters)

    records, total = await asyncio.to_thread(page)
    response.headers["X-Total-Count"] = str(total)
    if offset + limit < total:
        following = request.url.include_query_params(offset=offset + limit, limit=limit)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return [call_summary(r) for r in records]


def _utc(name: str, moment: datetime | None) -> datetime | None:
    """The time in UTC (one without an offset is UTC already); 422 for one UTC cannot hold."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except OverflowError:
        raise HTTPException(422, field_error(name, f"{moment.isoformat()} is out of range in UTC", "query")) from None


@router.get("/api/calls/{call_id}", response_model=CallDetail)
async def get_call(call_id: str, store: StoreDep) -> dict[str, Any]:
    record = await asyncio.to_thread(store.get_call, call_id)
    if record is None:
        raise _no_call(call_id)
    return call_detail(record)


_WAV = {
    200: {"description": "The recording as WAV", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
    404: {"description": "No such call, or no such recording of it (the reason says which)", "model": ErrorDetail},
    410: {"description": "The recording was deleted by retention (HOLDSLAYER_RETAIN_RECORDINGS_DAYS)", "model": ErrorDetail},
}


@router.get("/api/calls/{call_id}/recording", response_class=FileResponse, responses=_WAV)
async def get_recording(call_id: str, store: StoreDep) -> FileResponse:
    """The far end's recording, the same as ``/recordings/far_end``."""
    record = await asyncio.to_thread(store.get_call, call_id)
    if record is None:
        raise _no_call(call_id)
    if record.recording_path and record.recordings_removed_at is not None:
        raise _removed(call_id, RecordingChannel.FAR_END, record.recordings_removed_at)
    if not record.recording_path or not Path(record.recording_path).exists():
        raise HTTPException(404, f"call {call_id!r} has no recording")
    return FileResponse(record.recording_path, media_type="audio/wav", filename=f"{call_id}.wav")


@router.get(
    "/api/calls/{call_id}/recordings",
    response_model=CallRecordings,
    responses={404: {"description": "No such call", "model": ErrorDetail}},
)
async def list_recordings(call_id: str, store: StoreDep) -> CallRecordings:
    """The call's audio: the far end, what the app said, the two mixed, and the bridged
    conversation (each only once it exists). Once retention deleted them they are still listed,
    with ``removed_at``, and their URLs answer 410 Gone."""
    saved = await _saved_recordings(store, call_id)
    removed_at = await asyncio.to_thread(store.recordings_removed_at, call_id)
    return CallRecordings(
        call_id=call_id,
        recordings=[
            RecordingInfo(
                channel=channel,
                seconds=seconds,
                url=f"/api/calls/{call_id}/recordings/{channel.value}",
                removed_at=None if removed_at is None else removed_at.isoformat(),
            )
            for channel, (path, seconds) in saved.items()
            if removed_at is not None or path.exists()
        ],
    )


@router.get("/api/calls/{call_id}/recordings/{channel}", response_class=FileResponse, responses=_WAV)
async def get_channel_recording(call_id: str, channel: RecordingChannel, store: StoreDep) -> FileResponse:
    """One recording of the call as WAV: ``far_end``, ``app``, ``mixed`` or ``bridged``."""
    saved = await _saved_recordings(store, call_id)
    if channel not in saved:
        raise HTTPException(404, f"call {call_id!r} has no {channel.value} recording: {_WHY_NOT[channel]}")
    path, _ = saved[channel]
    removed_at = await asyncio.to_thread(store.recordings_removed_at, call_id)
    if removed_at is not None:
        raise _removed(call_id, channel, removed_at)
    if not path.exists():
        raise HTTPException(404, f"the {channel.value} recording of call {call_id!r} is no longer on disk")
    return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.{channel.value}.wav")


def _removed(call_id: str, channel: RecordingChannel, removed_at: datetime) -> HTTPException:
    return HTTPException(
        410,
        f"the {channel.value} recording of call {call_id!r} was deleted on {removed_at.isoformat()}: recordings are "
        "kept for HOLDSLAYER_RETAIN_RECORDINGS_DAYS after a call ends; the call's record stays",
    )


_WHY_NOT = {
    RecordingChannel.FAR_END: "the call ended before the company's audio was heard, or it is still under way",
    RecordingChannel.APP: "the app said nothing to the company, or the call is still under way",
    RecordingChannel.MIXED: "the app said nothing to the company, or the call is still under way",
    RecordingChannel.BRIDGED: "you were never bridged with a person, the PBX could not record or hand over "
    "the recording, or the call is still under way",
}


async def _saved_recordings(store, call_id: str) -> dict[RecordingChannel, tuple[Path, float]]:
    """Channel -> (file, seconds) from the call's RECORDING_SAVED events (the newest per channel)."""
    events = await asyncio.to_thread(store.call_recordings, call_id)
    if events is None:
        raise _no_call(call_id)
    saved: dict[RecordingChannel, tuple[Path, float]] = {}
    for data in events:
        channel = RecordingChannel(data.get("channel", RecordingChannel.FAR_END.value))
        saved[channel] = (Path(data["path"]), float(data["seconds"]))
    return {channel: saved[channel] for channel in RecordingChannel if channel in saved}


@router.post("/api/calls/{call_id}/hangup", status_code=202)
async def hangup(call_id: str, runtime: Runtime) -> dict[str, Any]:
    await actions.hang_up(runtime, call_id)
    return {"call_id": call_id, "cancelled": True}


@router.post("/api/calls/{call_id}/transfer", status_code=202)
async def transfer_now(call_id: str, runtime: Runtime) -> dict[str, Any]:
    """Ring the user's phone now, without waiting for the detector to find a person."""
    await actions.transfer_now(runtime, call_id)
    return {"call_id": call_id, "transferring": True}


@router.post("/api/calls/{call_id}/dtmf", status_code=202)
async def send_dtmf(call_id: str, body: DtmfKeys, runtime: Runtime) -> dict[str, Any]:
    """Press keys by hand into a live call (the menu the navigator did not know, an extension)."""
    await actions.send_dtmf(runtime, call_id, body.digits)
    return {"call_id": call_id, "digits": body.digits, "sent": True}


@router.post("/api/calls/{call_id}/user-data", status_code=202)
async def provide_user_data(call_id: str, body: UserDataAnswer, runtime: Runtime) -> dict[str, Any]:
    """Answer a USER_DATA_REQUESTED (or give a value mid-call); the value is never stored or echoed."""
    await actions.provide_user_data(runtime, call_id, body.field, body.value, body.permission)
    return {"call_id": call_id, "field": body.field, "accepted": True}


@router.get("/api/analytics", response_model=Analytics)
async def get_analytics(store: StoreDep, limit: int = Query(10_000, ge=1, le=100_000)) -> dict[str, Any]:
    """Calls per company, success rate, hold time (median, p90) and time to a person (from the
    call's start to the person found; median, p90), overall, by company and by hour of the day
    in UTC (the finished calls among the newest ``limit``)."""
    records = await asyncio.to_thread(store.list_calls, limit=limit)
    return analytics(records)
