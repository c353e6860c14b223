"""/api/calls: start a call, list and read calls, their recordings, hang up, give user data."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from app.analytics import analytics
from app.api import actions
from app.api.deps import Manager, Runtime, StoreDep
from app.api.schemas import CallCreated, CallDetail, CallSummary, DtmfKeys, UserDataAnswer, call_detail, call_summary
from app.calls.models import CallRequest, CallStatus

router = APIRouter()


def _no_call(call_id: str) -> HTTPException:
    return HTTPException(404, f"no call with id {call_id!r}")


@router.post("/api/calls", status_code=201, response_model=CallCreated)
async def create_call(body: CallRequest, manager: Manager) -> CallCreated:
    call_id = await manager.start_call(body)
    return CallCreated(call_id=call_id, status=CallStatus.PENDING.value, url=f"/api/calls/{call_id}")


@router.get("/api/calls", response_model=list[CallSummary])
async def list_calls(
    store: StoreDep,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000_000),
    status: CallStatus | None = None,
) -> list[dict[str, Any]]:
    records = await asyncio.to_thread(store.list_calls, limit=limit, offset=offset, status=status.value if status else None)
    return [call_summary(r) for r in records]


@router.get("/api/calls/{call_id}", response_model=CallDetail)
async def get_call(call_id: str, store: StoreDep) -> dict[str, Any]:
    record = await asyncio.to_thread(store.get_call, call_id)
    if record is None:
        raise _no_call(call_id)
    return call_detail(record)


@router.get("/api/calls/{call_id}/recording")
async def get_recording(call_id: str, store: StoreDep) -> FileResponse:
    record = await asyncio.to_thread(store.get_call, call_id)
    if record is None:
        raise _no_call(call_id)
    if not record.recording_path or not Path(record.recording_path).exists():
        raise HTTPException(404, f"call {call_id!r} has no recording")
    return FileResponse(record.recording_path, media_type="audio/wav", filename=f"{call_id}.wav")


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


@router.get("/api/analytics")
async def get_analytics(store: StoreDep, limit: int = Query(10_000, ge=1, le=100_000)) -> dict[str, Any]:
    """Calls per company, success rate, hold time (median, p90) and time to a person, by company
    and by hour of the day (the newest ``limit`` finished calls)."""
    records = await asyncio.to_thread(store.list_calls, limit=limit)
    return analytics(records)
