"""/api/call-flows: list, read, create, replace and delete flows, and learn one from an ended call."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Response

from app.api import actions
from app.api.deps import Runtime, StoreDep
from app.api.schemas import LearnFlowRequest, field_error
from app.ivr.flow import CallFlow

router = APIRouter()


def _no_flow(flow_id: str) -> HTTPException:
    return HTTPException(404, f"no call flow with id {flow_id!r}")


@router.get("/api/call-flows", response_model=list[CallFlow])
async def list_flows(store: StoreDep, company: str | None = None, tag: str | None = None) -> list[CallFlow]:
    return await asyncio.to_thread(store.list_flows, company=company, tag=tag)


@router.post("/api/call-flows/learn", status_code=201, response_model=CallFlow)
async def learn_flow(body: LearnFlowRequest, runtime: Runtime, response: Response) -> CallFlow:
    """Learn from an ended call: a new flow (201), or the next version of the number's flow (200)."""
    learned = await actions.learn_flow(
        runtime, body.call_id, phone_number=body.phone_number, company=body.company, intent=body.intent
    )
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
