"""GET /api/health: is the PBX connection up, how many calls run, did flow files load, how
healthy each live call's audio is (the media counters of ``app.media.health``), and how many
notifications each channel sent and failed.

It answers without the token (container health checks); the list of live calls, which names
them, only to a request that may see calls (see ``app.api.auth``). With worker processes
(``serve --workers N``) it also lists the workers (alive, ready, ARI connected, live calls,
restarts), and each live call names its worker and has its media counters as its worker's last
heartbeat said (null until one has, and for a call of another host's worker).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from app import provider_errors
from app.api.auth import bears_token, required_token
from app.api.deps import Runtime
from app.media.health import MediaHealth

router = APIRouter()


@router.get("/api/health")
async def health(runtime: Runtime, request: Request) -> dict[str, Any]:
    manager = runtime.manager
    body: dict[str, Any] = {
        "ari_connected": runtime.stream.connected.is_set(),
        "ari_reconnects": runtime.stream.reconnects,
        "active_calls": len(manager.active_calls),
        "flow_errors": runtime.flow_errors,
        "recording_failures": manager.recording_failures,
        "media_totals": manager.media_totals().as_dict(),
        "provider_errors": [
            {"provider": provider, "service": service, "errors": count}
            for (provider, service), count in sorted(provider_errors.snapshot().items())
        ],
        "event_loop_lag_seconds": round(runtime.loop_lag.lag.latest, 4),
        "notifications": [
            {"channel": channel, "sent": sent, "failed": failed} for channel, sent, failed in runtime.notifier.tally()
        ],
    }
    if runtime.workers is not None:
        # The calls run in the worker processes: each as its heartbeat last said (media counters
        # since each worker's start).
        body["workers"] = runtime.workers.describe()
        body["active_calls"] = sum(w["active_calls"] for w in body["workers"])
        totals = [manager.media_totals()] + [MediaHealth(**b.media) for b in runtime.workers.heartbeats()]
        body["media_totals"] = MediaHealth.total(totals).as_dict()
    if bears_token(request.scope, required_token(runtime.settings)):
        if runtime.workers is not None:
            live = await asyncio.to_thread(runtime.store.live_calls)
            media = runtime.workers.call_media()
            body["calls"] = [
                {
                    "call_id": c.id, "status": c.status.value, "worker": c.worker, "node": c.node,
                    "media": media[c.id].as_dict() if c.id in media else None,
                }  # fmt: skip
                for c in live
            ]
            return body
        sessions = [s for s in (manager.session(call_id) for call_id in manager.active_calls) if s is not None]
        body["calls"] = [
            {"call_id": s.call_id, "status": s.status.value, "media": s.media.health().as_dict()} for s in sessions
        ]
    return body
