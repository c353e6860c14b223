"""Acting on a call wherever it runs: start it, hang up, press keys, put the user through now,
give user data.

``CallControl`` is what the API (REST, MCP, the dashboard) and the dial-in use. Two kinds:

- ``LocalCallControl`` acts on the sessions of this process (``holdslayer serve`` alone, or a worker);
- ``RemoteCallControl`` (the front of ``serve --workers N``) sends each action as a ``Command`` to
  the worker holding the call (a new call: to the worker with the fewest live calls) and waits
  for its ``Reply``; the worker runs it with ``execute`` against its own ``LocalCallControl``.

Both raise the same errors, so the API answers the same (404/409/422) however many processes run.
Commands travel as JSON text of at most ``MAX_PAYLOAD_BYTES`` (a PostgreSQL NOTIFY payload);
user data rides in them and is never written to a table.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from app.calls.manager import CallManager, CallRequestError
from app.calls.models import CallRequest
from app.calls.session import CallSession, InputRefused

log = logging.getLogger(__name__)

# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; keep a margin.
MAX_PAYLOAD_BYTES = 7900
START_TIMEOUT_SECONDS = 15.0  # a worker validates, looks up the flow and creates the row first
COMMAND_TIMEOUT_SECONDS = 10.0


class CallNotRunning(Exception):
    """The call is not running (here): the caller looks up its record to say why."""


class ActionRefused(Exception):
    """The call runs but cannot do this now (409)."""


class BadInput(Exception):
    """What was given cannot be used (422); ``field`` names it."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class WorkerUnavailable(Exception):
    """No worker could take the action: none ready, or the one holding the call did not answer (503)."""


class CallControl(Protocol):
    async def start(self, request: CallRequest) -> str: ...

    async def hangup(self, call_id: str) -> None: ...

    async def send_dtmf(self, call_id: str, digits: str) -> None: ...

    async def transfer_now(self, call_id: str) -> None: ...

    async def provide_user_data(self, call_id: str, field: str, value: str, permission: str | None) -> None: ...


class LocalCallControl:
    """The calls of this process's call manager."""

    def __init__(self, manager: CallManager) -> None:
        self.manager = manager

    def _session(self, call_id: str) -> CallSession:
        session = self.manager.session(call_id)
        if session is None:
            raise CallNotRunning(call_id)
        return session

    async def start(self, request: CallRequest) -> str:
        return await self.manager.start_call(request)

    async def hangup(self, call_id: str) -> None:
        if not await self.manager.hangup(call_id):
            raise CallNotRunning(call_id)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        try:
            await self._session(call_id).send_dtmf(digits)
        except InputRefused as refused:
            raise ActionRefused(str(refused)) from None

    async def transfer_now(self, call_id: str) -> None:
        session = self._session(call_id)
        if not session.transfer_now():
            raise ActionRefused(f"call {call_id!r} cannot be put through now ({session.status.value})")

    async def provide_user_data(self, call_id: str, field: str, value: str, permission: str | None) -> None:
        """The value is never stored or echoed."""
        session = self._session(call_id)
        try:
            stored = session.provide_user_data(field, value, permission)
        except ValueError as error:
            raise BadInput(str(error)) from None
        if not stored:
            raise BadInput(f"{field} is never entered into a phone menu")


# ---------------------------------------------------------------------------- commands and replies

OPS = frozenset({"start", "hangup", "send_dtmf", "transfer_now", "provide_user_data"})


class MessageFormatError(ValueError):
    """Text that is no command or reply of this version."""


@dataclass(frozen=True)
class Command:
    id: str  # the reply names it
    op: str
    call_id: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Command:
        try:
            raw = json.loads(text)
            command = cls(id=str(raw["id"]), op=str(raw["op"]), call_id=raw.get("call_id"), args=dict(raw.get("args") or {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise MessageFormatError(f"not a command: {exc}") from None
        if command.op not in OPS:
            raise MessageFormatError(f"unknown command {command.op!r}")
        return command


# Reply.error -> the exception the caller sees.
_ERRORS: dict[str, Callable[[str, str | None], Exception]] = {
    "not_running": lambda message, field: CallNotRunning(message),
    "refused": lambda message, field: ActionRefused(message),
    "invalid": lambda message, field: BadInput(message, field),
    "request": lambda message, field: CallRequestError(field or "request", message),
    "failed": lambda message, field: WorkerUnavailable(message),
}


@dataclass(frozen=True)
class Reply:
    id: str
    ok: bool
    result: Any = None
    error: str | None = None  # a key of _ERRORS
    message: str = ""
    field: str | None = None

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Reply:
        try:
            raw = json.loads(text)
            reply = cls(
                id=str(raw["id"]), ok=bool(raw["ok"]), result=raw.get("result"), error=raw.get("error"),
                message=str(raw.get("message") or ""), field=raw.get("field"),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise MessageFormatError(f"not a reply: {exc}") from None
        if not reply.ok and reply.error not in _ERRORS:
            raise MessageFormatError(f"unknown error kind {reply.error!r}")
        return reply

    def value(self) -> Any:
        """The result, or the error raised as the exception a local control would have raised."""
        if self.ok:
            return self.result
        assert self.error is not None
        raise _ERRORS[self.error](self.message, self.field)


async def execute(control: CallControl, command: Command) -> Reply:
    """Run a command against this process's calls; every outcome becomes a reply."""
    call_id, args = command.call_id or "", command.args

    def failed(error: str, message: str, field: str | None = None) -> Reply:
        return Reply(command.id, False, error=error, message=message, field=field)

    try:
        match command.op:
            case "start":
                return Reply(command.id, True, result=await control.start(CallRequest.model_validate(args["request"])))
            case "hangup":
                await control.hangup(call_id)
            case "send_dtmf":
                await control.send_dtmf(call_id, str(args["digits"]))
            case "transfer_now":
                await control.transfer_now(call_id)
            case "provide_user_data":
                await control.provide_user_data(call_id, str(args["field"]), str(args["value"]), args.get("permission"))
    except CallNotRunning:
        return failed("not_running", f"call {call_id!r} is not running")
    except ActionRefused as refused:
        return failed("refused", str(refused))
    except BadInput as bad:
        return failed("invalid", bad.message, bad.field)
    except CallRequestError as refused:
        return failed("request", refused.message, refused.field)
    except (ValidationError, KeyError) as exc:  # a front of another version
        return failed("failed", f"malformed command {command.op}: {exc}")
    except Exception as exc:
        log.exception("command %s on call %s failed", command.op, call_id)
        return failed("failed", f"{type(exc).__name__}: {exc}")
    return Reply(command.id, True)


@dataclass(frozen=True, order=True)
class WorkerAddress:
    """A worker process: its host's ``HOLDSLAYER_NODE`` ("" for the only one) and its index."""

    node: str
    index: int

    def __str__(self) -> str:
        return f"{self.node}/{self.index}" if self.node else str(self.index)


def choose_worker(
    ready: Iterable[WorkerAddress], live: Mapping[WorkerAddress, int], in_flight: Mapping[WorkerAddress, int]
) -> WorkerAddress | None:
    """The ready worker with the fewest calls (live, plus those being started on it); the lowest
    index among equals. None when no worker is ready."""
    return min(ready, key=lambda i: (live.get(i, 0) + in_flight.get(i, 0), i), default=None)


# ---------------------------------------------------------------------------- the front's side


class RemoteCallControl:
    """Actions on calls that run in worker processes, as commands over ``send``.

    ``send(worker, text)`` delivers a command to a worker; its reply comes back through
    ``on_reply`` (called by whoever listens for replies). ``ready()`` lists the workers able to
    take new calls (this host's), ``live_calls()`` counts the live calls of each,
    ``worker_of(call_id)`` names the worker of a live call, on any host (None: not live)."""

    def __init__(
        self,
        send: Callable[[WorkerAddress, str], Awaitable[None]],
        *,
        ready: Callable[[], Iterable[WorkerAddress]],
        live_calls: Callable[[], Awaitable[Mapping[WorkerAddress, int]]],
        worker_of: Callable[[str], Awaitable[WorkerAddress | None]],
        start_timeout: float = START_TIMEOUT_SECONDS,
        command_timeout: float = COMMAND_TIMEOUT_SECONDS,
    ) -> None:
        self._send = send
        self._ready = ready
        self._live_calls = live_calls
        self._worker_of = worker_of
        self._start_timeout = start_timeout
        self._command_timeout = command_timeout
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._starting: dict[WorkerAddress, int] = {}  # calls being started on each worker
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-"

    def on_reply(self, text: str) -> None:
        try:
            reply = Reply.decode(text)
        except MessageFormatError as error:
            log.warning("ignored a malformed reply: %s", error)
            return
        future = self._pending.get(reply.id)
        if future is not None and not future.done():
            future.set_result(reply)

    async def _request(self, worker: WorkerAddress, command: Command, timeout: float) -> Any:
        text = command.encode()
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            field = "user_data" if command.op == "start" else "value"
            message = f"too large to hand to a worker (over {MAX_PAYLOAD_BYTES} bytes in all)"
            raise CallRequestError(field, message) if command.op == "start" else BadInput(message, field)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[command.id] = future
        try:
            await self._send(worker, text)
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            raise WorkerUnavailable(f"worker {worker} did not answer within {timeout:g} s") from None
        finally:
            self._pending.pop(command.id, None)
        return reply.value()

    def _command(self, op: str, call_id: str | None = None, **args: Any) -> Command:
        return Command(f"{self._prefix}{next(self._ids)}", op, call_id, args)

    async def start(self, request: CallRequest) -> str:
        worker = choose_worker(self._ready(), await self._live_calls(), self._starting)
        if worker is None:
            raise WorkerUnavailable("no worker is ready to take a call")
        self._starting[worker] = self._starting.get(worker, 0) + 1
        try:
            command = self._command("start", request=request.model_dump(mode="json"))
            return str(await self._request(worker, command, self._start_timeout))
        finally:
            self._starting[worker] -= 1

    async def _on_call(self, op: str, call_id: str, **args: Any) -> None:
        worker = await self._worker_of(call_id)
        if worker is None:
            raise CallNotRunning(call_id)
        await self._request(worker, self._command(op, call_id, **args), self._command_timeout)

    async def hangup(self, call_id: str) -> None:
        await self._on_call("hangup", call_id)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        await self._on_call("send_dtmf", call_id, digits=digits)

    async def transfer_now(self, call_id: str) -> None:
        await self._on_call("transfer_now", call_id)

    async def provide_user_data(self, call_id: str, field: str, value: str, permission: str | None) -> None:
        await self._on_call("provide_user_data", call_id, field=field, value=value, permission=permission)
