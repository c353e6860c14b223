"""The Hold Slayer process: store, event bus, ARI connection and call manager, wired together."""

from __future__ import annotations

import asyncio
import logging

from app.ari.client import AriClient
from app.ari.router import EventRouter
from app.ari.stream import AriEventStream
from app.calls.dial_in import DialInTrigger
from app.calls.events import EventBus
from app.calls.manager import CallManager
from app.notify import Notifier, channels_from_settings
from app.retention import RetentionPolicy, Sweeper
from app.calls.models import ARI_ID_PREFIX, EndReason
from app.calls.session import SessionDeps
from app.clock import Clock, MonotonicClock
from app.config import Settings
from app.ivr.llm_navigator import navigator_from_settings
from app.ivr.navigator import OfflineNavigator
from app.monitoring import CallTally, LoopLagProbe
from app.speech import tts_from_settings
from app.store.repository import Store
from app.store.writer import StoreWriter

log = logging.getLogger(__name__)


class HoldSlayer:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, detector_factory=None) -> None:
        self.settings = settings
        self.clock = clock or MonotonicClock()
        self.bus = EventBus()
        self.store = Store(settings.database_url, keep_classification_windows=settings.store_classification_windows)
        self.writer = StoreWriter(self.store, self.bus)
        self.ari = AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.ari_app)
        self.router = EventRouter(on_unclaimed=self._on_unclaimed)
        # One navigator per process: an LLM client (with its connection pool) is shared by every call.
        self.navigator = navigator_from_settings(settings, offline=OfflineNavigator())
        # One voice per process too: what calls say to menus and people, and the dial-in's questions.
        self.tts = tts_from_settings(
            settings.tts_provider, openai_api_key=_secret(settings.openai_api_key), openai_base_url=settings.openai_base_url
        )
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
            )
        )
        self.dial_in = DialInTrigger(self.ari, self.router, self.manager, settings, tts=self.tts)
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
        await self._apply_device_settings()
        failed = await asyncio.to_thread(
            self.store.mark_unfinished_calls_failed, EndReason.APP_RESTARTED, "Hold Slayer stopped while the call was live"
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

    async def stop(self) -> None:
        await self.retention.stop()
        await self.dial_in.shutdown()
        await self.manager.shutdown()
        await self.stream.stop()
        await self.writer.stop()
        await self.notifier.stop()
        await self.tally.stop()
        await self.loop_lag.stop()
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

    def _on_unclaimed(self, event) -> None:
        if self.dial_in.wants(event):
            self.dial_in.handle(event)
        else:
            log.debug("unclaimed ARI event %s", getattr(event, "type", event))


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None
