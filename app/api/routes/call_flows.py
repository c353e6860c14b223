"""/api/call-flows: list, read, create, replace and delete flows, and learn one from an ended call."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Response

from app.api.deps import Runtime, StoreDep
from app.api.schemas import LearnFlowRequest, field_error
from app.calls.learning import LearnError, learn_and_save
from app.calls.models import FINAL_STATUSES, CallStatus
from app.ivr.flow import CallFlow
from app.phone import normalize_phone_number

router = APIRouter()


def _no_flow(flow_id: str) -> HTTPException:
    return HTTPException(404, f"no call flow with id {flow_id!r}")


@router.get("/api/call-flows", response_model=list[CallFlow])
async def list_flows(store: StoreDep, company: str | None = None, tag: str | None = None) -> list[CallFlow]:
    return await asyncio.to_thread(store.list_flows, company=company, tag=tag)


@router.post("/api/call-flows/learn", status_code=201, response_model=CallFlow)
async def learn_flow(body: LearnFlowRequest, runtime: Runtime, store: StoreDep, response: Response) -> CallFlow:
    """Learn from an ended call: a new flow (201), or the next version of the number's flow (200)."""
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
        raise HTTPException(422, field_error("phone_number", str(exc))) from None
    try:
        learned = await learn_and_save(
            store,
            record.events or [],
            number=number,
            company=(record.company or "") if body.company is None else body.company,
            intent=record.intent if body.intent is None else body.intent,
            emit=lambda data: runtime.bus.emit(record.id, data),
        )
    except LearnError as exc:
        raise HTTPException(422, field_error("call_id", str(exc))) from None
    if learned.merged:
        response.status_code = 200
    return learned.flow


@router.get("/api/call-flows/{flow_id}", response_model=CallFlow)
async def get_flow(flow_id: str, store: StoreDep) -> CallFlow:
    flow = await asyncio.to_thread(store.get_flow, flow_id)
    if flow is None:
        raise _no_flow(flow_id)
    return flow


@router.post("/api/call-flows", status_code=201, response_model=CallFlow)
async def create_flow(flow: CallFlow, store: StoreDep) -> CallFlow:
    if await asyncio.to_thread(store.get_flow, flow.id) is not None:
        raise HTTPException(409, f"a call flow with id {flow.id!r} exists; PUT /api/call-flows/{flow.id} replaces it")
    await asyncio.to_thread(store.upsert_flow, flow)
    return flow


@router.put("/api/call-flows/{flow_id}", response_model=CallFlow)
async def replace_flow(flow_id: str, flow: CallFlow, store: StoreDep) -> CallFlow:
    if flow.id != flow_id:
        raise HTTPException(422, field_error("id", f"must equal the path id {flow_id!r}"))
    flow = flow.edit_of(await asyncio.to_thread(store.get_flow, flow_id))
    await asyncio.to_thread(store.upsert_flow, flow)
    return flow


@router.delete("/api/call-flows/{flow_id}", status_code=204)
async def delete_flow(flow_id: str, store: StoreDep) -> Response:
    if not await asyncio.to_thread(store.delete_flow, flow_id):
        raise _no_flow(flow_id)
    return Response(status_code=204)
