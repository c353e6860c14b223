"""GET /api/health: is the PBX connection up, how many calls run, did flow files load."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import Runtime

router = APIRouter()


@router.get("/api/health")
async def health(runtime: Runtime) -> dict[str, Any]:
    return {
        "ari_connected": runtime.stream.connected.is_set(),
        "ari_reconnects": runtime.stream.reconnects,
        "active_calls": len(runtime.manager.active_calls),
        "flow_errors": runtime.flow_errors,
        "recording_failures": runtime.manager.recording_failures,
    }
