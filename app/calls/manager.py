"""Starts, tracks and stops call sessions."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace

from app.calls.events import CallCreated, CallEnded, CallEvent
from app.ari.errors import AriError
from app.calls.learning import LearnError, learn_and_save
from app.calls.legs import CallIds
from app.calls.models import CallRequest, CallStatus, EndReason
from app.calls.session import CallSession, SessionDeps
from app.devices import Device, UnknownDevice, choose
from app.ivr.flow import CallFlow
from app.ivr.vault import UserDataVault
from app.media.health import MediaHealth
from app.phone import emergency_code

log = logging.getLogger(__name__)
STOP_GRACE_SECONDS = 15.0
RECENTLY_ENDED = 1000
NOT_THE_FLOWS_DOING = frozenset({EndReason.PBX_LOST, EndReason.ERROR, EndReason.SHUTDOWN, EndReason.WORKER_LOST})


@dataclass(frozen=True)
class EndedCall:
    status: CallStatus
    reason: EndReason | None
    detail: str


class CallRequestError(ValueError):
    """A call request that cannot be placed; ``field`` names the offending input."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CallManager:
    def __init__(self, deps: SessionDeps, *, worker: int | None = None, node: str = "", alone: bool = True) -> None:
        """``worker``: the index of this worker process (``serve --workers N``) and ``node`` its
        host's name, recorded on each call's row. ``alone``: no other process holds calls in the
        same PBX; when others do, an ARI reconnect sweeps only the channels of calls this process ran."""
        self.deps = replace(deps, on_call_over=self._call_over)
        self.worker = worker
        self.node = node
        self.alone = alone
        self._sessions: dict[str, CallSession] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._ended: OrderedDict[str, EndedCall] = OrderedDict()
        self._ended_media = MediaHealth()  # the media counters of every call that ended

    async def devices(self) -> list[Device]:
        """The user's devices as stored now (``/api/devices``)."""
        return await asyncio.to_thread(self.deps.store.list_devices)

    async def check(self, request: CallRequest) -> str:
        """Refuse what no trigger may ask for (``CallRequestError``); returns the device to ring:
        the one the request names, else the default one, from the store's devices."""
        settings = self.deps.settings
        if (code := emergency_code(request.number, settings.blocked_numbers)) is not None:
            # Every trigger (REST, MCP, the dashboard, dial-in) comes through here: none of them dials it.
            raise CallRequestError(
                "number",
                f"{request.number} reaches {code}, an emergency or blocked number: Hold Slayer never dials it; "
                "call it from your own phone",
            )
        try:
            device = choose(await self.devices(), request.device).name
        except UnknownDevice as unknown:
            raise CallRequestError("device", unknown.message) from None
        try:
            UserDataVault(request.user_data, request.user_data_permissions)  # type: ignore[arg-type]
        except ValueError as error:
            raise CallRequestError("user_data", str(error)) from None
        return device

    async def start_call(self, request: CallRequest) -> str:
        """Validate the request, record the call and start its session; returns the call id."""
        store = self.deps.store
        device = await self.check(request)
        flow: CallFlow | None
        if request.flow_id:
            flow = await asyncio.to_thread(store.get_flow, request.flow_id)
            if flow is None:
                raise CallRequestError("flow_id", f"no call flow with id {request.flow_id!r}")
        else:
            flow = await asyncio.to_thread(store.find_flow_for_number, request.number)

        call_id = uuid.uuid4().hex[:12]
        company = flow.company if flow else None
        await asyncio.to_thread(
            store.create_call, call_id, request, device, flow.id if flow else None, company, worker=self.worker, node=self.node
        )
        self.deps.bus.emit(
            call_id,
            CallCreated(
                number=request.number,
                intent=request.intent,
                device=device,
                flow_id=flow.id if flow else None,
                company=company,
            ),
        )
        session = CallSession(call_id, request, device=device, flow=flow, deps=self.deps)
        self._sessions[call_id] = session
        task = asyncio.create_task(self._run(session), name=f"call-{call_id}")
        self._tasks[call_id] = task
        return call_id

    async def _run(self, session: CallSession) -> None:
        try:
            await session.run()
        finally:
            self._sessions.pop(session.call_id, None)
            self._tasks.pop(session.call_id, None)
            # In the same step as it leaves the live calls, so the totals never go back.
            self._ended_media = self._ended_media + session.media.health()
            # The store writes the final row from CALL_ENDED a moment later: until then (and
            # after), whoever asks about a call that just ended gets its outcome from here.
            self._ended[session.call_id] = EndedCall(session.status, session.reason, session.detail)
            while len(self._ended) > RECENTLY_ENDED:
                self._ended.popitem(last=False)

    def ended(self, call_id: str) -> EndedCall | None:
        """How a call run by this process ended, for the most recent ``RECENTLY_ENDED`` calls."""
        return self._ended.get(call_id)

    async def _call_over(self, session: CallSession, detail: str) -> None:
        learned = await self._learn(session, detail)
        # A call the PBX or the app itself ended says nothing about whether its flow works.
        if session.reason in NOT_THE_FLOWS_DOING:
            return
        if not learned and session.flow is not None and session.status in (CallStatus.COMPLETED, CallStatus.FAILED):
            await asyncio.to_thread(
                self.deps.store.record_flow_outcome, session.flow.id, session.status is CallStatus.COMPLETED
            )

    async def _learn(self, session: CallSession, detail: str) -> bool:
        """A call that found its own way (no flow, or its flow no longer matched) teaches the
        next call to the same number: its menus and answers become (or update) the stored flow."""
        if not session.explored:
            return False
        reason = session.reason.value if session.reason else ""
        ended = CallEvent(session.call_id, CallEnded(status=session.status.value, reason=reason, detail=detail))
        try:
            await learn_and_save(
                self.deps.store,
                [*session.events, ended.to_dict()],
                number=session.request.number,
                company="",
                intent=session.request.intent,
                flow=session.flow,
                emit=session.emit,
            )
        except LearnError as error:
            log.info("call %s: nothing learned: %s", session.call_id, error)
            return False
        return True

    def session(self, call_id: str) -> CallSession | None:
        return self._sessions.get(call_id)

    @property
    def active_calls(self) -> list[str]:
        return list(self._sessions)

    def media_totals(self) -> MediaHealth:
        """The media counters of every call this process ran, live ones included; they only grow."""
        return MediaHealth.total([self._ended_media, *(s.media.health() for s in self._sessions.values())])

    def live_media(self) -> dict[str, MediaHealth]:
        """The media counters of each live call."""
        return {call_id: session.media.health() for call_id, session in self._sessions.items()}

    def backlog_frames(self) -> int:
        """The most received frames waiting to be heard in any live call's endpoint."""
        return max((e.unread for s in self._sessions.values() for e in s.media.endpoints.values()), default=0)

    @property
    def recording_failures(self) -> dict[str, int]:
        """Recordings that failed (to write, record, stop, fetch, delete), by kind, since start."""
        return dict(self.deps.recording_failures)

    async def hangup(self, call_id: str, detail: str = "cancelled by the user") -> bool:
        """End a live call; False if it is not running."""
        session, task = self._sessions.get(call_id), self._tasks.get(call_id)
        if session is None or task is None:
            return False
        await self._stop(session, task, detail)
        return True

    async def wait(self, call_id: str) -> None:
        task = self._tasks.get(call_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def shutdown(self) -> None:
        await asyncio.gather(
            *(
                self._stop(session, self._tasks[call_id], "Hold Slayer is shutting down", EndReason.SHUTDOWN)
                for call_id, session in list(self._sessions.items())
                if call_id in self._tasks
            )
        )

    @staticmethod
    async def _stop(
        session: CallSession, task: asyncio.Task, detail: str, reason: EndReason = EndReason.CANCELLED
    ) -> None:
        # Ask first, so the session ends through its own cleanup; cancel only if it does not.
        session.cancel(detail, reason)
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def on_ari_down(self) -> None:
        """The ARI connection dropped: a call that just lost its company with no cause asks why."""
        for session in list(self._sessions.values()):
            session.ctx.notify()

    def on_pbx_lost(self) -> None:
        """No ARI connection for the configured bound: every live call ends, ``pbx_lost``."""
        seconds = self.deps.settings.pbx_lost_timeout
        for session in list(self._sessions.values()):
            session.pbx_lost(f"no connection to the PBX for {seconds:g} s")

    async def on_ari_reconnect(self, channels, bridges) -> None:
        live = {channel.id for channel in channels}
        log.info("ARI reconnected: %d channels, %d bridges live", len(live), len(bridges))
        for session in list(self._sessions.values()):
            session.reconcile(live)
        await self._sweep_ended_calls(channels, bridges)

    async def _sweep_ended_calls(self, channels, bridges) -> None:
        """Channels and bridges of calls that ended while the PBX could not be told (their hang-ups
        failed during the outage): remove them now, so nothing is left ringing or holding."""
        ari = self.deps.ari

        def ended(ari_id: str) -> bool:
            call_id = CallIds.call_of(ari_id)
            if call_id is None or call_id in self._sessions:
                return False
            # Alone, every call in the PBX is ours; as one process of several, only those we ran.
            return self.alone or call_id in self._ended

        for channel_id in [c.id for c in channels if ended(c.id)]:
            await _best_effort(ari.hangup(channel_id, missing_ok=True), f"hangup {channel_id}")
        for bridge_id in [b.id for b in bridges if ended(b.id)]:
            await _best_effort(ari.destroy_bridge(bridge_id, missing_ok=True), f"destroy bridge {bridge_id}")


async def _best_effort(request, what: str) -> None:
    try:
        await request
    except AriError as exc:
        log.warning("after the ARI reconnect: %s failed: %s", what, exc)
