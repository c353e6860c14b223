"""The HTTP side: REST for calls (WebSocket, MCP and the dashboard grow here)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from app.calls.events import FlowLearned
from app.calls.manager import CallRequestError
from app.calls.models import FINAL_STATUSES, CallRequest, CallStatus
from app.config import Settings
from app.ivr.flow import CallFlow, normalize_phone_number
from app.ivr.learner import CallFlowLearner, LearnError, discoveries_from_events, flow_id_for
from app.runtime import HoldSlayer

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboard"


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


class LearnFlowRequest(BaseModel):
    call_id: str = Field(..., min_length=1, description="An ended call whose journal shows the way through the menu")
    phone_number: str | None = Field(None, description="Default: the number the call dialled")
    company: str | None = Field(None, description="Default: the call's company, else none")
    intent: str | None = Field(None, description="Default: the call's intent")


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _summary(record) -> dict[str, Any]:
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


def create_api(holdslayer: HoldSlayer | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the API. Without ``holdslayer`` the app owns one built from ``settings``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if holdslayer is not None:
            app.state.holdslayer = holdslayer
            yield
            return
        owned = HoldSlayer(settings or Settings())
        await owned.start()
        app.state.holdslayer = owned
        try:
            yield
        finally:
            await owned.stop()

    app = FastAPI(title="Hold Slayer", version="0.1.0", lifespan=lifespan)

    def hs(request: Request) -> HoldSlayer:
        return request.app.state.holdslayer

    @app.exception_handler(CallRequestError)
    async def _bad_call_request(request: Request, exc: CallRequestError) -> JSONResponse:
        # Same shape as FastAPI's own validation errors, so clients parse one format.
        return JSONResponse(
            status_code=422,
            content={"detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]},
        )

    @app.get("/api/health")
    async def health(request: Request) -> dict[str, Any]:
        runtime = hs(request)
        return {
            "ari_connected": runtime.stream.connected.is_set(),
            "ari_reconnects": runtime.stream.reconnects,
            "active_calls": len(runtime.manager.active_calls),
            "flow_errors": runtime.flow_errors,
        }

    @app.post("/api/calls", status_code=201, response_model=CallCreated)
    async def create_call(body: CallRequest, request: Request) -> CallCreated:
        call_id = await hs(request).manager.start_call(body)
        return CallCreated(call_id=call_id, status=CallStatus.PENDING.value, url=f"/api/calls/{call_id}")

    @app.get("/api/calls", response_model=list[CallSummary])
    async def list_calls(
        request: Request,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
        status: CallStatus | None = None,
    ) -> list[dict[str, Any]]:
        records = await asyncio.to_thread(
            hs(request).store.list_calls, limit=limit, offset=offset, status=status.value if status else None
        )
        return [_summary(r) for r in records]

    @app.get("/api/calls/{call_id}", response_model=CallDetail)
    async def get_call(call_id: str, request: Request) -> dict[str, Any]:
        record = await asyncio.to_thread(hs(request).store.get_call, call_id)
        if record is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        detail = _summary(record)
        detail.update(
            answered_at=_iso(record.answered_at),
            hold_started_at=_iso(record.hold_started_at),
            human_detected_at=_iso(record.human_detected_at),
            connected_at=_iso(record.connected_at),
            hold_seconds=record.hold_seconds,
            recording_url=f"/api/calls/{call_id}/recording" if record.recording_path else None,
            events=record.events,
            classifications=record.classifications,
        )
        return detail

    @app.get("/api/calls/{call_id}/recording")
    async def get_recording(call_id: str, request: Request) -> FileResponse:
        record = await asyncio.to_thread(hs(request).store.get_call, call_id)
        if record is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        if not record.recording_path or not Path(record.recording_path).exists():
            raise HTTPException(404, f"call {call_id!r} has no recording")
        return FileResponse(record.recording_path, media_type="audio/wav", filename=f"{call_id}.wav")

    @app.post("/api/calls/{call_id}/hangup", status_code=202)
    async def hangup(call_id: str, request: Request) -> dict[str, Any]:
        runtime = hs(request)
        if await runtime.manager.hangup(call_id):
            return {"call_id": call_id, "cancelled": True}
        record = await asyncio.to_thread(runtime.store.get_call, call_id)
        if record is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        if CallStatus(record.status) in FINAL_STATUSES:
            raise HTTPException(409, f"call {call_id!r} has already ended ({record.status})")
        raise HTTPException(409, f"call {call_id!r} is not running in this process")

    @app.post("/api/calls/{call_id}/user-data", status_code=202)
    async def provide_user_data(call_id: str, body: UserDataAnswer, request: Request) -> dict[str, Any]:
        """Answer a USER_DATA_REQUESTED (or give a value mid-call); the value is never stored or echoed."""
        runtime = hs(request)
        session = runtime.manager.session(call_id)
        if session is None:
            record = await asyncio.to_thread(runtime.store.get_call, call_id)
            if record is None:
                raise HTTPException(404, f"no call with id {call_id!r}")
            raise HTTPException(409, f"call {call_id!r} is not running ({record.status})")
        try:
            stored = session.provide_user_data(body.field, body.value, body.permission)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        if not stored:
            raise HTTPException(422, f"{body.field} is never entered into a phone menu")
        return {"call_id": call_id, "field": body.field, "accepted": True}

    # ------------------------------------------------------------------ call flows

    @app.get("/api/call-flows", response_model=list[CallFlow])
    async def list_flows(request: Request, company: str | None = None, tag: str | None = None) -> list[CallFlow]:
        return await asyncio.to_thread(hs(request).store.list_flows, company=company, tag=tag)

    @app.post("/api/call-flows/learn", status_code=201, response_model=CallFlow)
    async def learn_flow(body: LearnFlowRequest, request: Request, response: Response) -> CallFlow:
        """Learn from an ended call: a new flow (201), or the next version of the number's flow (200)."""
        runtime = hs(request)
        store = runtime.store
        record = await asyncio.to_thread(store.get_call, body.call_id)
        if record is None:
            raise HTTPException(404, f"no call with id {body.call_id!r}")
        if CallStatus(record.status) not in FINAL_STATUSES:
            raise HTTPException(
                409, f"call {body.call_id!r} is still running ({record.status.value}): learn from it once it has ended"
            )
        try:
            number = normalize_phone_number(body.phone_number or record.number)
        except ValueError as exc:
            raise HTTPException(422, [{"loc": ["body", "phone_number"], "msg": str(exc), "type": "value_error"}]) from None
        company = (record.company or "") if body.company is None else body.company
        intent = record.intent if body.intent is None else body.intent

        existing = await asyncio.to_thread(store.find_flow_for_number, number)
        if existing is None:
            # A stale flow for the number is no longer chosen for calls, but it is what this call re-learns.
            stale = await asyncio.to_thread(store.list_flows, stale=True)
            existing = max((f for f in stale if f.phone_number == number), key=lambda f: f.version, default=None)
        flow_id = flow_id_for(company, number)
        if existing is None and await asyncio.to_thread(store.get_flow, flow_id) is not None:
            # The company's flow for another of its numbers: keep it, and name this one by its number too.
            flow_id = f"{flow_id}-{''.join(ch for ch in number if ch.isdigit())}"

        discoveries, outcome = discoveries_from_events(record.events or [])
        learner = CallFlowLearner()
        try:
            if existing is not None:
                flow = learner.merge_discoveries(existing, discoveries, outcome=outcome, intent=intent)
            else:
                flow = learner.build_flow(discoveries, number, company, intent, outcome=outcome, flow_id=flow_id)
        except LearnError as exc:
            raise HTTPException(422, [{"loc": ["body", "call_id"], "msg": str(exc), "type": "value_error"}]) from None
        await asyncio.to_thread(store.upsert_flow, flow)
        await asyncio.to_thread(store.set_flow_stale, flow.id, False)
        runtime.bus.emit(
            record.id,
            FlowLearned(
                flow_id=flow.id, version=flow.version, steps=[step.id for step in flow.steps], merged=existing is not None
            ),
        )
        if existing is not None:
            response.status_code = 200
        return flow

    @app.get("/api/call-flows/{flow_id}", response_model=CallFlow)
    async def get_flow(flow_id: str, request: Request) -> CallFlow:
        flow = await asyncio.to_thread(hs(request).store.get_flow, flow_id)
        if flow is None:
            raise HTTPException(404, f"no call flow with id {flow_id!r}")
        return flow

    @app.post("/api/call-flows", status_code=201, response_model=CallFlow)
    async def create_flow(flow: CallFlow, request: Request) -> CallFlow:
        store = hs(request).store
        if await asyncio.to_thread(store.get_flow, flow.id) is not None:
            raise HTTPException(409, f"a call flow with id {flow.id!r} exists; PUT /api/call-flows/{flow.id} replaces it")
        await asyncio.to_thread(store.upsert_flow, flow)
        return flow

    @app.put("/api/call-flows/{flow_id}", response_model=CallFlow)
    async def replace_flow(flow_id: str, flow: CallFlow, request: Request) -> CallFlow:
        if flow.id != flow_id:
            raise HTTPException(422, [{"loc": ["body", "id"], "msg": f"must equal the path id {flow_id!r}", "type": "value_error"}])
        store = hs(request).store
        existing = await asyncio.to_thread(store.get_flow, flow_id)
        if existing is not None:
            # An edit is a new version of the same flow; its history of outcomes carries over.
            flow = flow.model_copy(
                update={
                    "version": max(flow.version, existing.version + 1),
                    "created_at": existing.created_at,
                    "updated_at": datetime.now(timezone.utc),
                    "success_count": existing.success_count,
                    "fail_count": existing.fail_count,
                }
            )
        await asyncio.to_thread(store.upsert_flow, flow)
        return flow

    @app.delete("/api/call-flows/{flow_id}", status_code=204)
    async def delete_flow(flow_id: str, request: Request) -> Response:
        if not await asyncio.to_thread(hs(request).store.delete_flow, flow_id):
            raise HTTPException(404, f"no call flow with id {flow_id!r}")
        return Response(status_code=204)

    if DASHBOARD_DIR.is_dir():
        app.mount("/", StaticFiles(directory=DASHBOARD_DIR, html=True), name="dashboard")
    return app
