"""WebSocket ``/ws/events``: every domain event of every call (or of one: ``?call_id=``), live.

On connect the client first gets the current state (``{"type": "state", "calls": [...]}``: the
live calls, or the one asked for, with its events so far), then every event in its published JSON
form (``docs/events.schema.json``) in publish order, and a ``{"type": "heartbeat"}`` whenever the
line has been idle for ``ws_heartbeat_seconds``. Events are subscribed to before the state is
read, so none is missed; one may come both in the state and after it (same ``seq``: keep one).
With worker processes (``serve --workers N``) the events come from the workers through the
database, each with the ``seq`` its worker gave it: the events of one call are in order, and
numbered as in the state; those of calls on different workers interleave.

A call's CALL_ENDED goes out once the store has written it (at most ``STORED_WAIT_SECONDS``
later), so a client that re-reads the call or the analytics when it sees the end reads the final
row, not the one from before.

A client that falls ``ws_max_queued_events`` behind is dropped (close code 1008) and may
reconnect: the bus never waits for a subscriber, so a slow browser never slows a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from app.calls.events import EventType, Subscription
from app.calls.models import FINAL_STATUSES
from app.clock import utc_now_iso
from app.runtime import HoldSlayer

log = logging.getLogger(__name__)

router = APIRouter()

TOO_SLOW = 1008  # policy violation: the client did not keep up
DROP_CHECK_SECONDS = 0.25
STORED_WAIT_SECONDS = 5.0


@router.websocket("/ws/events")
async def events(websocket: WebSocket) -> None:
    runtime: HoldSlayer = websocket.app.state.holdslayer
    settings = runtime.settings
    call_id = websocket.query_params.get("call_id") or None
    await websocket.accept()
    subscription = runtime.bus.subscribe(
        None if call_id is None else (lambda event: event.call_id == call_id),
        maxsize=settings.ws_max_queued_events,
    )
    sender = asyncio.create_task(_send(websocket, runtime, subscription, call_id, settings.ws_heartbeat_seconds))
    watchdog = asyncio.create_task(_watch(subscription))
    receiver = asyncio.create_task(_drain(websocket))
    try:
        done, _ = await asyncio.wait({sender, watchdog, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if watchdog in done:
            log.warning("WebSocket client dropped: %d events behind", subscription.dropped)
            sender.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(TOO_SLOW, f"too slow: {subscription.dropped} events dropped; reconnect"), 2.0
                )
    finally:
        subscription.close()
        for task in (sender, watchdog, receiver):
            task.cancel()
        await asyncio.gather(sender, watchdog, receiver, return_exceptions=True)


async def _send(
    websocket: WebSocket, runtime: HoldSlayer, subscription: Subscription, call_id: str | None, heartbeat: float
) -> None:
    await websocket.send_json({"type": "state", "at": utc_now_iso(), "calls": await _state(runtime, call_id)})
    while True:
        try:
            event = await asyncio.wait_for(subscription.get(), heartbeat)
        except TimeoutError:
            await websocket.send_json({"type": "heartbeat", "at": utc_now_iso()})
            continue
        if event is None:
            return
        if event.type is EventType.CALL_ENDED and not event.journaled:  # a worker's: stored before it came
            await runtime.writer.wait_stored(event.seq, STORED_WAIT_SECONDS)
        await websocket.send_json(event.to_dict())


async def _watch(subscription: Subscription) -> None:
    """Ends when the client has fallen so far behind that the bus dropped events for it."""
    while subscription.dropped == 0:
        await asyncio.sleep(DROP_CHECK_SECONDS)


async def _drain(websocket: WebSocket) -> None:
    """Reads (and ignores) what the client sends; ends when it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()


async def _state(runtime: HoldSlayer, call_id: str | None) -> list[dict[str, Any]]:
    """The calls as they stand: each live call's status and events so far (the one asked for,
    live or stored)."""
    states = []
    if call_id is not None:
        ids = [call_id]
    elif runtime.workers is not None:  # the calls run in the worker processes: the store knows them
        ids = [call.id for call in await asyncio.to_thread(runtime.store.live_calls)]
    else:
        ids = runtime.manager.active_calls
    for live_id in ids:
        session = runtime.manager.session(live_id)
        if session is not None:
            states.append(
                {
                    "call_id": live_id,
                    "number": session.request.number,
                    "intent": session.request.intent,
                    "status": session.status.value,
                    "live": True,
                    "events": list(session.events),
                }
            )
            continue
        record = await asyncio.to_thread(runtime.store.get_call, live_id)
        if record is not None:
            states.append(
                {
                    "call_id": record.id,
                    "number": record.number,
                    "intent": record.intent,
                    "status": record.status.value,
                    "live": runtime.workers is not None and record.status not in FINAL_STATUSES,
                    "events": record.events or [],
                }
            )
    return states
