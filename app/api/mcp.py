"""The MCP server (official ``mcp`` SDK): an AI assistant places and follows calls with tools.

Served by the same FastAPI app as REST (``create_api`` adds its routes): streamable HTTP at
``/mcp``, SSE at ``/mcp/sse`` (messages posted to ``/mcp/messages/``). Thin: every tool calls
what the REST route calls (``app.api.actions``, the store), and a
failure comes back as a tool error (``is_error``) with the same words REST would say.

Resources: ``holdslayer://calls/{call_id}`` (the call's record) and
``holdslayer://calls/{call_id}/transcript`` (what the menus said, what we said and pressed).

``wait_for_person`` follows a call's events: a progress notification on every HOLD_PROGRESS
("on hold for 3:20"), and when a person answers a progress notification and a log message
"a person is on the line"; it returns once a person is there, the call ended, or on timeout.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPDeprecationWarning
from pydantic import Field, ValidationError
from starlette.routing import BaseRoute

from app.api import actions
from app.api.schemas import call_detail, call_summary, device_out
from app.calls.events import CallEvent, EventType
from app.calls.manager import CallRequestError
from app.calls.models import FINAL_STATUSES, CallRequest, CallStatus
from app.calls.transcript import render_transcript, transcript_lines
from app.phone import normalize_phone_number
from app.runtime import HoldSlayer

MCP_PATH = "/mcp"
SSE_PATH = "/mcp/sse"
SSE_MESSAGES_PATH = "/mcp/messages/"

PERSON_ON_THE_LINE = "a person is on the line"
# A person has answered once the call is in one of these (it then rings the user and bridges).
PERSON_REACHED = frozenset({CallStatus.HUMAN_DETECTED, CallStatus.TRANSFERRING, CallStatus.CONNECTED})
# Per-0.5 s windows and hold ticks: many thousands on a long hold, noise to an assistant.
FREQUENT_EVENTS = frozenset({EventType.AUDIO_CLASSIFIED.value, EventType.HOLD_PROGRESS.value})
LAST_EVENTS = 10

INSTRUCTIONS = """Hold Slayer phones companies for the user: place_call dials, navigates the phone menu
towards the intent, waits on hold and rings the user's phone when a live person answers.
Follow a call with wait_for_person (progress while on hold) or get_call_status; read
holdslayer://calls/{call_id}/transcript for what was said. list_devices names the phones a call
can ring. Emergency numbers are never dialled."""

RuntimeGetter = Callable[[], HoldSlayer]


def build_mcp_server(runtime: RuntimeGetter) -> MCPServer:
    """The MCP server; ``runtime()`` gives the running Hold Slayer (it exists once the app started)."""
    # The SDK calls logging.basicConfig(level=log_level) when nothing configured logging yet:
    # WARNING keeps Python's default there (the CLI configures logging before this anyway).
    server = MCPServer(
        "holdslayer", title="Hold Slayer", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING"
    )

    # ------------------------------------------------------------------ calls

    @server.tool()
    async def place_call(
        number: Annotated[str, Field(description="The company's number: digits, optional leading +")],
        intent: Annotated[str, Field(description="What the user wants, in their words")] = "",
        device: Annotated[
            str | None, Field(description="The user's device to ring (list_devices); default: the default device")
        ] = None,
        flow_id: Annotated[str | None, Field(description="Call flow to follow; default: the number's")] = None,
        user_data: Annotated[
            dict[str, str] | None, Field(description="Values a menu may be given: account_number, zip_code, ...")
        ] = None,
        user_data_permissions: Annotated[
            dict[str, str] | None, Field(description="Field -> dtmf, speech, both (default) or never")
        ] = None,
    ) -> dict[str, Any]:
        """Call a company for the user: dial, navigate its menu, wait on hold, ring the user when a
        person answers. Returns at once with the call id; follow it with wait_for_person."""
        try:
            request = CallRequest(
                number=number,
                intent=intent,
                device=device,
                flow_id=flow_id,
                user_data=user_data or {},
                user_data_permissions=user_data_permissions or {},
            )
        except ValidationError as error:
            raise ToolError(_validation_message(error)) from None
        try:
            call_id = await actions.start_call(runtime(), request)
        except CallRequestError as error:
            raise ToolError(f"call refused: {error}") from None
        except actions.ActionError as error:
            raise ToolError(error.message) from None
        return {"call_id": call_id, "status": CallStatus.PENDING.value, "resource": f"holdslayer://calls/{call_id}"}

    @server.tool()
    async def get_call_status(call_id: str) -> dict[str, Any]:
        """A call's status, end reason, hold time so far and its last events."""
        hs = runtime()
        record = await _call(hs, call_id)
        status, live = actions.live_status(hs, record)
        events = [e for e in _events(hs, record) if e["type"] not in FREQUENT_EVENTS]
        return {
            **call_summary(record),
            "status": status.value,
            "live": live,
            "hold_seconds": actions.hold_seconds_so_far(record, datetime.now(timezone.utc)),
            "last_events": events[-LAST_EVENTS:],
        }

    @server.tool()
    async def list_calls(
        status: Annotated[CallStatus | None, Field(description="Only calls in this status")] = None,
        company: Annotated[
            str | None, Field(min_length=1, max_length=200, description="Only calls whose company's name contains this")
        ] = None,
        number: Annotated[str | None, Field(min_length=1, max_length=64, description="Only calls to this number")] = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 20,
    ) -> dict[str, Any]:
        """Recent calls, newest first; every filter given must hold (as GET /api/calls)."""
        if number is not None:
            try:
                number = normalize_phone_number(number)
            except ValueError as exc:
                raise ToolError(f"number {exc}") from None
        records = await asyncio.to_thread(
            runtime().store.list_calls, limit=limit, status=status.value if status else None, company=company, number=number
        )
        return {"calls": [call_summary(r) for r in records]}

    @server.tool()
    async def hang_up(call_id: str) -> dict[str, Any]:
        """End a live call (it is cancelled; the user's phone is not rung)."""
        await _act(actions.hang_up(runtime(), call_id))
        return {"call_id": call_id, "cancelled": True}

    @server.tool()
    async def send_dtmf(
        call_id: str, digits: Annotated[str, Field(description="Keys to press: 0-9 * # A-D, up to 32")]
    ) -> dict[str, Any]:
        """Press keys on an answered call's line (e.g. when a menu wants something the call cannot know)."""
        await _act(actions.send_dtmf(runtime(), call_id, digits))
        return {"call_id": call_id, "sent": digits}

    @server.tool()
    async def provide_user_data(
        call_id: str,
        field: Annotated[str, Field(min_length=1, max_length=64, description="account_number, zip_code, ...")],
        value: Annotated[str, Field(min_length=1, max_length=256)],
        permission: Literal["dtmf", "speech", "both", "never"] | None = None,
    ) -> dict[str, Any]:
        """Answer a menu's question the call is waiting on (USER_DATA_REQUESTED). The value is
        never stored or echoed."""
        await _act(actions.provide_user_data(runtime(), call_id, field, value, permission))
        return {"call_id": call_id, "field": field, "accepted": True}

    @server.tool()
    async def wait_for_person(
        call_id: str,
        ctx: Context,
        timeout_seconds: Annotated[float, Field(gt=0, le=7200)] = 600,
    ) -> dict[str, Any]:
        """Wait while the call navigates and holds; progress notifications report the hold time.
        Returns when a person is on the line (outcome "person"), the call ended ("ended"), or
        after timeout_seconds ("timeout"; the call goes on)."""
        return await _wait_for_person(runtime(), call_id, ctx, timeout_seconds)

    # ------------------------------------------------------------------ devices

    @server.tool()
    async def list_devices() -> dict[str, Any]:
        """The user's devices a call can ring when a person answers (place_call's device); the
        one marked default is rung when a call names none."""
        devices = await asyncio.to_thread(runtime().store.list_devices)
        return {"devices": [device_out(d) for d in devices]}

    # ------------------------------------------------------------------ flows

    @server.tool()
    async def list_call_flows(company: str | None = None, tag: str | None = None) -> dict[str, Any]:
        """Stored call flows (the recipe for a company's menu), as summaries."""
        flows = await asyncio.to_thread(runtime().store.list_flows, company=company, tag=tag)
        return {"flows": [actions.flow_summary(f) for f in flows]}

    @server.tool()
    async def get_call_flow(flow_id: str) -> dict[str, Any]:
        """One call flow with its steps."""
        flow = await asyncio.to_thread(runtime().store.get_flow, flow_id)
        if flow is None:
            raise ToolError(f"no call flow with id {flow_id!r}")
        return flow.model_dump(mode="json")

    @server.tool()
    async def learn_call_flow(
        call_id: str, phone_number: str | None = None, company: str | None = None, intent: str | None = None
    ) -> dict[str, Any]:
        """Learn a call flow from an ended call's way through the menu (a new flow, or the next
        version of the number's flow)."""
        learned = await _act(
            actions.learn_flow(runtime(), call_id, phone_number=phone_number, company=company, intent=intent)
        )
        return {"merged": learned.merged, "flow": learned.flow.model_dump(mode="json")}

    # ------------------------------------------------------------------ resources

    @server.resource("holdslayer://calls/{call_id}", mime_type="application/json", description="A call's record")
    async def call_record(call_id: str) -> str:
        hs = runtime()
        record = await _call_resource(hs, call_id)
        detail = call_detail(record)
        detail["status"] = actions.live_status(hs, record)[0].value
        detail["events"] = [e for e in _events(hs, record) if e["type"] not in FREQUENT_EVENTS]
        detail.pop("classifications", None)  # per-window audio classes: GET /api/calls/{id} has them
        return json.dumps(detail)

    @server.resource(
        "holdslayer://calls/{call_id}/transcript",
        mime_type="text/plain",
        description="What the company's menus said and what we said or pressed, in order",
    )
    async def call_transcript(call_id: str) -> str:
        hs = runtime()
        record = await _call_resource(hs, call_id)
        return render_transcript(transcript_lines(_events(hs, record)))

    return server


async def _wait_for_person(hs: HoldSlayer, call_id: str, ctx: Context, timeout: float) -> dict[str, Any]:
    # Subscribe before reading the state, so no event between the two is missed.
    subscription = hs.bus.subscribe(lambda event: event.call_id == call_id and event.type in _WAITED_ON, maxsize=1000)
    try:
        session = hs.manager.session(call_id)
        if session is None:
            ended = hs.manager.ended(call_id)
            if ended is not None:  # it ended a moment ago (its row may not say so yet)
                reason = ended.reason.value if ended.reason is not None else None
                return _waited(call_id, "ended", ended.status, reason=reason, detail=ended.detail)
            record = await _call(hs, call_id)
            if record.status in FINAL_STATUSES:
                reason = record.reason.value if record.reason is not None else None
                return _waited(call_id, "ended", record.status, reason=reason, detail=record.detail)
            if hs.workers is None:
                return _waited(call_id, "not_running", record.status)
            status = record.status  # the call runs on a worker: its events come through the bus
        else:
            status = session.status
        if status in PERSON_REACHED:
            await _tell_person(ctx, 0.0)
            return _waited(call_id, "person", status)
        progress = 0.0
        try:
            async with asyncio.timeout(timeout):
                while (event := await subscription.get()) is not None:
                    outcome = await _follow(event, ctx, progress)
                    if isinstance(outcome, float):
                        progress = outcome
                    elif outcome is not None:
                        return outcome
        except TimeoutError:
            pass
        session = hs.manager.session(call_id)
        if session is not None:
            status = session.status
        elif (record := await asyncio.to_thread(hs.store.get_call, call_id)) is not None:
            status = record.status
        return _waited(call_id, "timeout", status, hold_seconds=progress)
    finally:
        subscription.close()


# The events wait_for_person acts on (not the twice-a-second audio windows).
_WAITED_ON = frozenset(
    {EventType.HOLD_PROGRESS, EventType.HUMAN_DETECTED, EventType.USER_DATA_REQUESTED, EventType.CALL_ENDED}
)


async def _follow(event: CallEvent, ctx: Context, progress: float) -> float | dict[str, Any] | None:
    """One event while waiting: the new progress value, the tool's result, or None (keep waiting)."""
    data = event.data
    match event.type:
        case EventType.HOLD_PROGRESS:
            # Progress must increase with every notification (MCP): the hold time does.
            value = max(progress, data.hold_seconds)
            await ctx.report_progress(value, message=f"on hold for {format_hold(data.hold_seconds)}")
            return value
        case EventType.HUMAN_DETECTED:
            await _tell_person(ctx, max(progress, data.hold_seconds) + 0.1)
            return _waited(event.call_id, "person", CallStatus.HUMAN_DETECTED, hold_seconds=data.hold_seconds)
        case EventType.USER_DATA_REQUESTED:
            await _log(ctx, "warning", f"the menu asks for {data.field}: answer with provide_user_data ({data.question})")
        case EventType.CALL_ENDED:
            return _waited(event.call_id, "ended", CallStatus(data.status), reason=data.reason, detail=data.detail)
    return None


async def _tell_person(ctx: Context, progress: float) -> None:
    await ctx.report_progress(progress, message=PERSON_ON_THE_LINE)
    await _log(ctx, "notice", PERSON_ON_THE_LINE)


async def _log(ctx: Context, level: Literal["notice", "warning"], message: str) -> None:
    # MCP logging is deprecated in the newest protocol version (clients must opt in per request),
    # but clients on the handshake versions show these; progress carries the same news to all.
    # The SDK warns inside the send, so the filter spans it (one short notification).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await ctx.log(level, message, logger_name="holdslayer")


def _waited(
    call_id: str,
    outcome: str,
    status: CallStatus | None,
    *,
    hold_seconds: float | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "outcome": outcome,  # person | ended | timeout | not_running
        "status": status.value if status is not None else None,
        "hold_seconds": hold_seconds,
        "reason": reason,
        "detail": detail,
    }


def format_hold(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


async def _act(action: Any) -> Any:
    """Run an ``actions`` coroutine; its errors become tool errors with the same words as REST."""
    try:
        return await action
    except actions.ActionError as error:
        raise ToolError(error.message) from None


async def _call(hs: HoldSlayer, call_id: str):
    return await _act(actions.get_call(hs, call_id))


async def _call_resource(hs: HoldSlayer, call_id: str):
    try:
        return await actions.get_call(hs, call_id)
    except actions.NotFound as error:
        raise ResourceNotFoundError(error.message) from None


def _events(hs: HoldSlayer, record: Any) -> list[dict[str, Any]]:
    """A live call's events from its session (the store writes them a moment later), else stored."""
    session = hs.manager.session(record.id)
    return list(session.events) if session is not None else list(record.events or [])


def _validation_message(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())


def mcp_routes(server: MCPServer, host: str) -> tuple[list[BaseRoute], Callable[[], Any]]:
    """The routes of both transports (to add to the app before its catch-all dashboard) and the
    lifespan context the streamable HTTP sessions need (``session_manager.run()``, once per app)."""
    # ``host``: the address the API is bound to; on 127.0.0.1 / localhost the SDK refuses other
    # Host and Origin headers (DNS rebinding), bound wider it checks none, as REST.
    http_app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    sse_app = server.sse_app(sse_path=SSE_PATH, message_path=SSE_MESSAGES_PATH, host=host)

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return [*http_app.routes, *sse_app.routes], running
