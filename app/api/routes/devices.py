"""/api/devices: the user's phones, the one a call rings when a person answers. List, create,
read, replace, change and delete; one is the default (rung when a call names none)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Response

from app.api import actions
from app.api.deps import Runtime
from app.api.schemas import DeviceCreate, DeviceOut, DevicePatch, DeviceReplace, Problem, device_out, field_error

router = APIRouter()

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No device of that name"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "It would leave no default device, or no device at all"}
}


@router.get("/api/devices", response_model=list[DeviceOut])
async def list_devices(runtime: Runtime) -> list[dict[str, Any]]:
    return [device_out(d) for d in await asyncio.to_thread(runtime.store.list_devices)]


@router.post(
    "/api/devices",
    status_code=201,
    response_model=DeviceOut,
    responses={409: {"model": Problem, "description": "A device of that name exists"}},
)
async def create_device(body: DeviceCreate, runtime: Runtime) -> dict[str, Any]:
    device = await actions.create_device(runtime, body.name, body.dial_string, body.label, body.default)
    return device_out(device)


@router.get("/api/devices/{name}", response_model=DeviceOut, responses=_NOT_FOUND)
async def get_device(name: str, runtime: Runtime) -> dict[str, Any]:
    return device_out(await actions.get_device(runtime, name))


@router.put("/api/devices/{name}", response_model=DeviceOut, responses={**_NOT_FOUND, **_CONFLICT})
async def replace_device(name: str, body: DeviceReplace, runtime: Runtime) -> dict[str, Any]:
    if body.name is not None and body.name != name:
        raise HTTPException(422, field_error("name", f"must equal the path's name {name!r} (a rename is a delete and a create)"))
    device = await actions.update_device(
        runtime, name, dial_string=body.dial_string, label=body.label, default=body.default
    )
    return device_out(device)


@router.patch("/api/devices/{name}", response_model=DeviceOut, responses={**_NOT_FOUND, **_CONFLICT})
async def change_device(name: str, body: DevicePatch, runtime: Runtime) -> dict[str, Any]:
    device = await actions.update_device(
        runtime, name, dial_string=body.dial_string, label=body.label, default=body.default
    )
    return device_out(device)


@router.delete("/api/devices/{name}", status_code=204, responses={**_NOT_FOUND, **_CONFLICT})
async def delete_device(name: str, runtime: Runtime) -> Response:
    await actions.delete_device(runtime, name)
    return Response(status_code=204)
