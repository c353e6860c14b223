"""What the REST routes and the MCP tools both do to calls, flows and devices: one function each.

Each raises an ``ActionError`` with what went wrong (``NotFound``, ``Conflict``, ``Invalid``);
REST turns it into its HTTP status (``errors.py``), MCP into a tool error with the same words.
Actions on calls go through ``runtime.calls`` (``app.calls.control``): the calls of this process,
or of the worker processes of ``serve --workers N``. Placing a call raises ``CallRequestError``
(an emergency number, an unknown device, ...), which each surface maps the same way.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from collections.abc import Awaitable
from typing import Any

from app.calls.control import ActionRefused, BadInput, CallNotRunning, WorkerUnavailable
from app.calls.learning import LearnError, Learned, learn_and_save
from app.calls.models import FINAL_STATUSES, CallRequest, CallStatus
from app.devices import Device, DeviceConflict, DeviceError, InvalidDevice, UnknownDevice
from app.phone import normalize_phone_number
from app.runtime import HoldSlayer
from app.store.repository import CallRecord

DTMF_KEYS = re.compile(r"^[0-9*#A-D]{1,32}$")


class ActionError(Exception):
    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field  # the request field at fault, when one is


class NotFound(ActionError):
    status = 404


class Conflict(ActionError):
    status = 409


class Invalid(ActionError):
    status = 422


class Unavailable(ActionError):
    status = 503


def no_call(call_id: str) -> NotFound:
    return NotFound(f"no call with id {call_id!r}")


async def get_call(runtime: HoldSlayer, call_id: str) -> CallRecord:
    record = await asyncio.to_thread(runtime.store.get_call, call_id)
    if record is None:
        raise no_call(call_id)
    return record


async def _on_live_call(runtime: HoldSlayer, call_id: str, action: Awaitable[None], *, hanging_up: bool = False) -> None:
    """Run an action on a live call (in this process or a worker): its errors as ``ActionError``."""
    try:
        await action
    except CallNotRunning:
        record = await get_call(runtime, call_id)
        if not hanging_up:
            raise Conflict(f"call {call_id!r} is not running ({record.status.value})") from None
        if record.status in FINAL_STATUSES:
            raise Conflict(f"call {call_id!r} has already ended ({record.status.value})") from None
        raise Conflict(f"call {call_id!r} is not running in this process") from None
    except ActionRefused as refused:
        raise Conflict(str(refused)) from None
    except BadInput as bad:
        raise Invalid(bad.message, field=bad.field) from None
    except WorkerUnavailable as unavailable:
        raise Unavailable(str(unavailable)) from None


async def start_call(runtime: HoldSlayer, request: CallRequest) -> str:
    """Place a call (here, or on the worker with the fewest calls); ``CallRequestError`` as is."""
    try:
        return await runtime.calls.start(request)
    except WorkerUnavailable as unavailable:
        raise Unavailable(str(unavailable)) from None


async def hang_up(runtime: HoldSlayer, call_id: str) -> None:
    await _on_live_call(runtime, call_id, runtime.calls.hangup(call_id), hanging_up=True)


async def provide_user_data(runtime: HoldSlayer, call_id: str, field: str, value: str, permission: str | None) -> None:
    """Answer a USER_DATA_REQUESTED (or give a value mid-call); the value is never stored or echoed."""
    await _on_live_call(runtime, call_id, runtime.calls.provide_user_data(call_id, field, value, permission))


async def send_dtmf(runtime: HoldSlayer, call_id: str, digits: str) -> None:
    if not DTMF_KEYS.match(digits):
        raise Invalid("digits: 1 to 32 of 0-9 * # A-D", field="digits")
    await _on_live_call(runtime, call_id, runtime.calls.send_dtmf(call_id, digits))


async def transfer_now(runtime: HoldSlayer, call_id: str) -> None:
    """Put the user through now, as if the person had been found."""
    await _on_live_call(runtime, call_id, runtime.calls.transfer_now(call_id))


async def learn_flow(
    runtime: HoldSlayer,
    call_id: str,
    *,
    phone_number: str | None = None,
    company: str | None = None,
    intent: str | None = None,
) -> Learned:
    """Learn from an ended call: a new flow, or the next version of the number's flow (``merged``)."""
    record = await get_call(runtime, call_id)
    if record.status not in FINAL_STATUSES:
        raise Conflict(f"call {call_id!r} is still running ({record.status.value}): learn from it once it has ended")
    try:
        number = normalize_phone_number(phone_number or record.number)
    except ValueError as exc:
        raise Invalid(str(exc), field="phone_number") from None
    try:
        return await learn_and_save(
            runtime.store,
            record.events or [],
            number=number,
            company=(record.company or "") if company is None else company,
            intent=record.intent if intent is None else intent,
            emit=lambda data: runtime.bus.emit(record.id, data),
        )
    except LearnError as exc:
        raise Invalid(str(exc), field="call_id") from None


# ---------------------------------------------------------------------------- the user's devices


async def _device_action(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a store device method in a thread; its ``DeviceError`` becomes the action's error."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except UnknownDevice as error:
        raise NotFound(error.message) from None
    except DeviceConflict as error:
        raise Conflict(error.message) from None
    except InvalidDevice as error:
        raise Invalid(error.message, field=error.field) from None
    except DeviceError as error:  # pragma: no cover - every kind is named above
        raise ActionError(error.message, field=error.field) from None


async def get_device(runtime: HoldSlayer, name: str) -> Device:
    device = await asyncio.to_thread(runtime.store.get_device, name)
    if device is None:
        raise NotFound(f"no device named {name!r}")
    return device


async def create_device(runtime: HoldSlayer, name: str, dial_string: str, label: str, default: bool) -> Device:
    return await _device_action(runtime.store.create_device, name, dial_string, label=label, default=default)


async def update_device(
    runtime: HoldSlayer,
    name: str,
    *,
    dial_string: str | None = None,
    label: str | None = None,
    default: bool | None = None,
) -> Device:
    return await _device_action(runtime.store.update_device, name, dial_string=dial_string, label=label, default=default)


async def delete_device(runtime: HoldSlayer, name: str) -> None:
    await _device_action(runtime.store.delete_device, name)


def hold_seconds_so_far(record: CallRecord, now: datetime) -> float | None:
    """Seconds on hold: until a person answered, the call ended, or now; None if never on hold."""
    if record.hold_seconds is not None:
        return record.hold_seconds
    if record.hold_started_at is None:
        return None
    end = record.human_detected_at or record.ended_at or now
    return round(max(0.0, (end - record.hold_started_at).total_seconds()), 1)


def live_status(runtime: HoldSlayer, record: CallRecord) -> tuple[CallStatus, bool]:
    """The freshest status (the session's, when it runs here; the row follows it a moment
    later), live? A call on a worker process is live until its row says it ended."""
    session = runtime.manager.session(record.id)
    if session is not None:
        return session.status, True
    return record.status, runtime.workers is not None and record.status not in FINAL_STATUSES


def flow_summary(flow: Any) -> dict[str, Any]:
    return {
        "id": flow.id,
        "name": flow.name,
        "company": flow.company,
        "phone_number": flow.phone_number,
        "version": flow.version,
        "steps": len(flow.steps),
        "tags": list(flow.tags),
    }
