"""The Hold Slayer process: store, event bus, ARI connection and call manager, wired together."""

from __future__ import annotations

import asyncio
import logging

import os
import time

from app.ari.client import AriClient
from app.ari.errors import AriError
from app.ari.router import EventRouter
from app.ari.stream import AriEventStream
from app.calls.dial_in import DialInTrigger
from app.calls.control import (
    CallControl,
    Command,
    LocalCallControl,
    MessageFormatError,
    RemoteCallControl,
    WorkerAddress,
    execute,
)
from app.calls.events import CallEnded, CallEvent, EventBus
from app.calls.legs import CallIds
from app.calls.manager import CallManager
from app.notify import Notifier, channels_from_settings
from app.retention import RetentionPolicy, Sweeper
from app.calls.models import ARI_ID_PREFIX, CallStatus, EndReason
from app.calls.session import SessionDeps
from app.clock import Clock, MonotonicClock
from app.config import Settings, for_worker, front_settings
from app.ivr.llm_navigator import navigator_from_settings
from app.ivr.navigator import OfflineNavigator
from app.monitoring import CallTally, LoopLagProbe
from app.speech import tts_from_settings
from app.store.repository import Store
from app.store.live import (
    EVENTS_CHANNEL,
    MAX_PAYLOAD_BYTES,
    REPLIES_CHANNEL,
    WORKERS_CHANNEL,
    EventFeed,
    PgChannels,
    commands_channel,
)
from app.store.writer import StoreWriter
from app.workers import HEARTBEAT_SECONDS, Heartbeat, WorkerPool

log = logging.getLogger(__name__)


class HoldSlayer:
    """One process of Hold Slayer, in one of three roles:

    - alone (``settings.workers == 1``): the API, the dial-in and every call, as always;
    - the front (``workers > 1``, ``worker`` None): the API, the dial-in and the notifications;
      it places no call itself but hands each to a worker process (``self.workers``) and follows
      them all through the database (``self.live``: the workers' events onto ``self.bus``);
    - worker ``i`` (``worker=i``): calls only, under its own ARI application; commands from the
      front come in on its channel, its events go out with its store's writes.
    """

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, detector_factory=None, worker: int | None = None
    ) -> None:
        self.worker = worker
        is_front = worker is None and settings.workers > 1
        if worker is not None:
            settings = for_worker(settings, worker)
        elif is_front:
            settings = front_settings(settings)
        self.settings = settings
        self.clock = clock or MonotonicClock()
        self.bus = EventBus()
        self.store = Store(
            settings.database_url,
            keep_classification_windows=settings.store_classification_windows,
            live_events=worker is not None,
        )
        self.writer = StoreWriter(self.store, self.bus)
        self.ari = AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.ari_app)
        self.router = EventRouter(on_unclaimed=self._on_unclaimed)
        # One navigator per process: an LLM client (with its connection pool) is shared by every call.
        self.navigator = navigator_from_settings(settings, offline=OfflineNavigator())
        # One voice per process too: what calls say to menus and people, and the dial-in's questions.
        self.tts = tts_from_settings(
            settings.tts_provider, openai_api_key=_secret(settings.openai_api_key), openai_base_url=settings.openai_base_url
        )
        self._voice_loading: asyncio.Task | None = None
        self.manager = CallManager(
            SessionDeps(
                ari=self.ari,
                router=self.router,
                bus=self.bus,
                store=self.store,
                settings=settings,
                clock=self.clock,
                detector_factory=detector_factory,
                navigator=self.navigator,
                tts=self.tts,
                on_flow_mismatch=self._flow_is_stale,
                ari_connected=lambda: self.stream.connected.is_set(),
            ),
            worker=worker,
            node=settings.node,
            alone=settings.workers == 1,
        )
        # Who acts on calls (the API, the dial-in): this process's sessions, or the workers'.
        self.calls: CallControl = LocalCallControl(self.manager)
        self.workers: WorkerPool | None = None
        self.live: PgChannels | None = None  # LISTEN/NOTIFY between the processes
        self._command_tasks: set[asyncio.Task] = set()
        self._heartbeat: asyncio.Task | None = None
        if is_front:
            self.workers = WorkerPool(
                settings.workers,
                on_lost=self._worker_lost,
                node=settings.node,
                hung_after=settings.worker_hung_seconds,
                hearing=self._hearing_workers,
            )
            remote = RemoteCallControl(
                self._send_command,
                ready=self._ready_workers,
                live_calls=self._live_calls_by_worker,
                worker_of=self._worker_of,
            )
            self.calls = remote
            self.feed = EventFeed(self.bus, self.store.event_by_row, self.store.missed_events)

            async def on_reply(payload: str) -> None:
                remote.on_reply(payload)

            self.live = PgChannels(
                settings.database_url,
                {EVENTS_CHANNEL: self.feed.on_payload, REPLIES_CHANNEL: on_reply, WORKERS_CHANNEL: self.workers.on_heartbeat},
                on_listening=self.feed.on_listening,  # after a reconnection: the events stored meanwhile
            )
        elif worker is not None:
            self.live = PgChannels(settings.database_url, {commands_channel(worker, settings.node): self._on_command})
        self.dial_in = DialInTrigger(self.ari, self.router, self.manager, settings, tts=self.tts, start=self.calls.start)
        self.stream = AriEventStream(
            self.ari,
            self.router.dispatch,
            on_reconnect=self.manager.on_ari_reconnect,
            on_down=self.manager.on_ari_down,
            on_lost=self.manager.on_pbx_lost,
            lost_after=settings.pbx_lost_timeout,
        )
        self.flow_errors: list[str] = []
        self.notifier = Notifier(self.bus, channels_from_settings(settings), timeout=settings.notify_timeout_seconds)
        # Old recordings and call records go (app/retention.py): a sweep at start, then hourly.
        self.retention = Sweeper(self.store, settings.recordings_dir, RetentionPolicy.from_settings(settings))
        self.tally = CallTally()  # decisions and hold durations, for /metrics
        self.loop_lag = LoopLagProbe()

    async def start(self) -> None:
        # The voice loads now, in a thread, not as the first hold begins (the handoff renders its
        # lines then): the lines are ready sooner, and a stop then need not wait for the load.
        self._voice_loading = asyncio.create_task(self._load_voice(), name="tts-preload")
        if self.worker is not None:
            await self._start_worker()
            return
        await self._apply_device_settings()
        failed = await asyncio.to_thread(
            self.store.mark_unfinished_calls_failed,
            EndReason.APP_RESTARTED,
            "Hold Slayer stopped while the call was live",
            self.settings.node,
        )
        if failed:
            log.warning("marked %d calls left unfinished by an earlier run as failed (app_restarted)", failed)
        imported, errors = await asyncio.to_thread(self.store.import_flows_dir, self.settings.flows_dir)
        self.flow_errors = [str(e) for e in errors]
        for error in self.flow_errors:
            log.error("call flow rejected: %s", error)
        log.info("imported %d call flows from %s", imported, self.settings.flows_dir)
        self.writer.start()
        self.notifier.start()
        self.retention.start()
        self.tally.start(self.bus)
        self.loop_lag.start()
        await self.stream.start()
        await self._sweep_orphans()
        if self.live is not None and self.workers is not None:
            await self.live.start()  # before the workers: their first heartbeats and events are heard
            await self.workers.start()

    async def _start_worker(self) -> None:
        """A worker runs calls only: the front has set up the store, the devices and the flows,
        and swept what an earlier run left in the PBX."""
        assert self.live is not None
        self.writer.start()
        self.tally.start(self.bus)
        self.loop_lag.start()
        await self.live.start()
        # Beat before ARI is up (it says so): a worker waiting for Asterisk is not hung.
        self._heartbeat = asyncio.create_task(self._beat(), name="heartbeat")
        await self.stream.start()

    async def stop(self) -> None:
        if self.workers is not None:
            await self.workers.stop()  # they end their calls; their last events come in meanwhile
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        await self.retention.stop()
        await self.dial_in.shutdown()
        await self.manager.shutdown()
        await self.stream.stop()
        await self.writer.stop()
        await self.notifier.stop()
        await self.tally.stop()
        await self.loop_lag.stop()
        if self._voice_loading is not None:
            self._voice_loading.cancel()
            await asyncio.gather(self._voice_loading, return_exceptions=True)
        await asyncio.gather(*self._command_tasks, return_exceptions=True)
        if self.live is not None:
            await self.live.stop()
        await self.ari.close()
        close_navigator = getattr(self.navigator, "aclose", None)
        if close_navigator is not None:
            await close_navigator()
        self.store.close()  # its connections; it reconnects if used again

    async def _apply_device_settings(self) -> None:
        """The settings' devices into the store: all on the first start, later what changed in
        the settings since (devices made, changed or deleted through the API stay)."""
        changes = await asyncio.to_thread(
            self.store.apply_device_settings, self.settings.user_devices, self.settings.default_transfer_device
        )
        if changes:
            log.info(
                "devices from the settings: added %s, changed %s, removed %s, default %s",
                changes.added, changes.changed, changes.removed, changes.default or "unchanged",
            )  # fmt: skip
        if changes.kept:
            log.warning(
                "devices %s are no longer in HOLDSLAYER_USER_DEVICES but stay: the default or the last device "
                "(change them with /api/devices)",
                changes.kept,
            )

    async def _load_voice(self) -> None:
        try:
            await asyncio.to_thread(self.tts.warm_up)
        except Exception as error:  # noqa: BLE001 - it fails again, in its call, when a line is asked for
            log.warning("the text-to-speech voice did not load: %s", error)

    def _flow_is_stale(self, flow_id: str) -> None:
        """A learned flow no longer matches its company's menu: stop trusting it until re-learned."""
        self.store.set_flow_stale(flow_id, True)

    async def _sweep_orphans(self) -> None:
        """Delete channels and bridges an earlier run of this app left in the PBX (after a crash).

        Every id this app creates starts with ``ARI_ID_PREFIX``; at start-up no call is running yet, so any
        such resource belongs to a call that can no longer finish.
        """
        channels, bridges = await asyncio.gather(self.ari.list_channels(), self.ari.list_bridges())
        orphans = [c.id for c in channels if c.id.startswith(ARI_ID_PREFIX)]
        for channel_id in orphans:
            await self.ari.hangup(channel_id, missing_ok=True)
        stale_bridges = [b.id for b in bridges if b.id.startswith(ARI_ID_PREFIX)]
        for bridge_id in stale_bridges:
            await self.ari.destroy_bridge(bridge_id, missing_ok=True)
        if orphans or stale_bridges:
            log.warning("removed %d channels and %d bridges left by an earlier run", len(orphans), len(stale_bridges))

    # ------------------------------------------------------------------ worker processes

    async def _send_command(self, worker: WorkerAddress, text: str) -> None:
        assert self.live is not None
        await self.live.notify(commands_channel(worker.index, worker.node), text)

    def _hearing_workers(self) -> bool:
        return self.live is not None and self.live.connected.is_set()

    def _ready_workers(self) -> list[WorkerAddress]:
        assert self.workers is not None
        return [WorkerAddress(self.settings.node, i) for i in self.workers.ready()]

    async def _live_calls_by_worker(self) -> dict[WorkerAddress, int]:
        node = self.settings.node
        counts = await asyncio.to_thread(self.store.live_calls_by_worker, node)
        return {WorkerAddress(node, i): n for i, n in counts.items()}

    async def _worker_of(self, call_id: str) -> WorkerAddress | None:
        found = await asyncio.to_thread(self.store.worker_of, call_id)
        return None if found is None else WorkerAddress(*found)

    async def _on_command(self, payload: str) -> None:
        """A worker: run the front's command on this process's calls, answer on the reply channel."""
        try:
            command = Command.decode(payload)
        except MessageFormatError as error:
            log.warning("ignored a command: %s", error)
            return

        async def run() -> None:
            reply = await execute(self.calls, command)
            assert self.live is not None
            await self.live.notify(REPLIES_CHANNEL, reply.encode())

        task = asyncio.create_task(run(), name=f"command-{command.op}-{command.call_id}")
        self._command_tasks.add(task)
        task.add_done_callback(self._command_tasks.discard)

    async def _beat(self) -> None:
        """A worker: say it is alive (whether it can place calls, its calls' media counters)
        every HEARTBEAT_SECONDS."""
        assert self.live is not None and self.worker is not None
        while True:
            beat = Heartbeat(
                self.worker, os.getpid(), self.stream.connected.is_set(), len(self.manager.active_calls),
                node=self.settings.node, at=time.time(), media=self.manager.media_totals().as_dict(),
                backlog_frames=self.manager.backlog_frames(), loop_lag_seconds=round(self.loop_lag.lag.latest, 4),
                calls=self.manager.live_media(),
            )  # fmt: skip
            try:
                for payload in beat.payloads(MAX_PAYLOAD_BYTES):  # one, unless it holds over a hundred calls
                    await self.live.notify(WORKERS_CHANNEL, payload)
            except Exception as error:  # the database is away: the front stops giving us calls
                log.warning("heartbeat not sent: %s", error)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _worker_lost(self, worker: int, detail: str) -> None:
        """The front: a worker died. Its live calls end (``failed / worker_lost``) and what they
        held in the PBX is hung up; nothing else can end them now."""
        lost = [call.id for call in await asyncio.to_thread(self.store.live_calls, worker, self.settings.node)]
        for call_id in lost:
            # Numbered after the call's last event, as if its worker had sent it (the front's own
            # count is another one): stored and streamed, it comes last.
            seq = max(self.feed.last_seq(call_id), await asyncio.to_thread(self.store.last_event_seq, call_id)) + 1
            ended = CallEnded(status=CallStatus.FAILED.value, reason=EndReason.WORKER_LOST.value, detail=detail)
            self.feed.publish_own(CallEvent(call_id, ended, seq=seq))
        if lost:
            log.error("%s: %d live calls ended (worker_lost): %s", detail, len(lost), ", ".join(lost))
            await self._hang_up_calls(set(lost))

    async def _hang_up_calls(self, call_ids: set[str]) -> None:
        try:
            channels, bridges = await asyncio.gather(self.ari.list_channels(), self.ari.list_bridges())
            for channel in channels:
                if CallIds.call_of(channel.id) in call_ids:
                    await self.ari.hangup(channel.id, missing_ok=True)
            for bridge in bridges:
                if CallIds.call_of(bridge.id) in call_ids:
                    await self.ari.destroy_bridge(bridge.id, missing_ok=True)
        except AriError as error:  # the PBX is away: its reconnect sweep cleans up later
            log.warning("could not hang up the channels of calls %s: %s", sorted(call_ids), error)

    def _on_unclaimed(self, event) -> None:
        if self.dial_in.wants(event):
            self.dial_in.handle(event)
        else:
            log.debug("unclaimed ARI event %s", getattr(event, "type", event))


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None
