"""The supervised ARI event websocket: ordered delivery, heartbeat, reconnect and reconcile.

Asterisk does not replay events missed while no websocket was connected, so after every
reconnect the stream reads GET /channels and GET /bridges and hands them to ``on_reconnect``
before delivering any event from the new connection. Handlers must therefore accept events that
merely confirm what the snapshot already showed.

While no connection is up the stream tells ``on_down`` at once (the PBX may be stopping, or it
may be a blip) and ``on_lost`` once the outage has lasted ``lost_after`` seconds (the PBX is
gone: live calls cannot be heard or steered any more); it keeps reconnecting all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import random
from collections.abc import Awaitable, Callable

import aiohttp

from app.ari.client import AriClient
from app.ari.errors import AriError, AriUnauthorized
from app.ari.events import ApplicationReplaced, AriEvent, parse_event
from app.ari.models import Bridge, Channel

log = logging.getLogger(__name__)

EventHandler = Callable[[AriEvent], Awaitable[None] | None]
ReconnectHandler = Callable[[list[Channel], list[Bridge]], Awaitable[None]]
OutageHandler = Callable[[], Awaitable[None] | None]


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(maximum, initial * 2**attempt)]."""
    ceiling = min(maximum, initial * 2 ** min(attempt, 32))
    return rng.uniform(0.0, ceiling)


class AriEventStream:
    """One event websocket for the client's app, kept connected until ``stop()``.

    aiohttp pings every ``heartbeat`` seconds and drops the connection when no pong comes back
    within half of that; any drop leads to a reconnect after a jittered exponential backoff.
    """

    def __init__(
        self,
        client: AriClient,
        on_event: EventHandler,
        *,
        on_reconnect: ReconnectHandler | None = None,
        on_down: OutageHandler | None = None,
        on_lost: OutageHandler | None = None,
        lost_after: float = 30.0,
        heartbeat: float = 10.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._on_down = on_down
        self._on_lost = on_lost
        self._lost_after = lost_after
        self._lost_timer: asyncio.Task[None] | None = None
        self._heartbeat = heartbeat
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0  # successful connections after the first one
        self.connect_failures = 0
        self.malformed_frames = 0
        self.handler_errors = 0
        self.outages_lost = 0  # outages that lasted ``lost_after`` seconds

    async def start(self) -> None:
        """Return once the first connection is up; raise AriUnauthorized if ARI refuses our login.

        Other failures (Asterisk not up yet) are retried with backoff; bound the wait with
        ``asyncio.timeout`` if needed; cancelling ``start`` stops the stream.
        """
        if self._task is not None:
            raise RuntimeError("stream already started")
        first_connection: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._supervise(first_connection), name="ari-event-stream")
        try:
            await asyncio.shield(first_connection)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._cancel_lost_timer()  # after the task: its last drop may have started one
        self.connected.clear()

    async def _supervise(self, first_connection: asyncio.Future[None]) -> None:
        attempt = 0
        while True:
            try:
                ws = await self._client.connect_events(heartbeat=self._heartbeat)
            except Exception as exc:
                self.connect_failures += 1
                # A wrong password or a broken configuration will not heal by retrying; say so at once.
                fatal = isinstance(exc, AriUnauthorized) or not isinstance(exc, AriError)
                if fatal and not first_connection.done():
                    first_connection.set_exception(exc)
                    return
                log.log(logging.ERROR if fatal else logging.WARNING, "ARI event websocket: %s", exc)
            else:
                try:
                    if first_connection.done():
                        await self._reconcile()
                        self._cancel_lost_timer()  # the PBX answers again, and reconcile said what it still has
                        self.reconnects += 1
                        log.info("ARI event websocket reconnected (%d)", self.reconnects)
                    else:
                        first_connection.set_result(None)
                    attempt = 0
                    self.connected.set()
                    await self._read(ws)
                except AriError as exc:
                    log.warning("ARI reconcile after reconnect failed, retrying: %s", exc)
                except Exception:
                    log.exception("ARI event stream failed, reconnecting")
                finally:
                    was_connected = self.connected.is_set()
                    self.connected.clear()
                    await ws.close()
                    if was_connected:
                        await self._outage_began()
            await asyncio.sleep(backoff_delay(attempt, self._backoff_initial, self._backoff_max, self._rng))
            attempt += 1

    async def _outage_began(self) -> None:
        await self._call(self._on_down, "on_down")
        if self._on_lost is not None and self._lost_timer is None:
            self._lost_timer = asyncio.create_task(self._declare_lost(), name="ari-lost-timer")

    async def _declare_lost(self) -> None:
        await asyncio.sleep(self._lost_after)
        self.outages_lost += 1
        log.error("no ARI connection for %g s: the PBX is considered lost", self._lost_after)
        await self._call(self._on_lost, "on_lost")

    def _cancel_lost_timer(self) -> None:
        timer, self._lost_timer = self._lost_timer, None
        if timer is not None and not timer.done():
            timer.cancel()

    async def _call(self, handler: OutageHandler | None, what: str) -> None:
        if handler is None:
            return
        try:
            result = handler()
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.handler_errors += 1
            log.exception("%s handler failed", what)

    async def _reconcile(self) -> None:
        channels = await self._client.list_channels()
        bridges = await self._client.list_bridges()
        if self._on_reconnect is None:
            return
        try:
            await self._on_reconnect(channels, bridges)
        except Exception:
            self.handler_errors += 1
            log.exception("on_reconnect handler failed")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Deliver events until the connection ends, for whatever reason."""
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                await self._handle_text(message.data)
            elif message.type is aiohttp.WSMsgType.BINARY:
                self._count_malformed(f"binary frame of {len(message.data)} bytes")
            elif message.type is aiohttp.WSMsgType.ERROR:
                log.warning("ARI event websocket error: %r", ws.exception())
        log.warning("ARI event websocket closed (code %s)", ws.close_code)

    async def _handle_text(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            self._count_malformed(f"not JSON: {text[:80]!r}")
            return
        if not isinstance(data, dict):
            self._count_malformed(f"not a JSON object: {text[:80]!r}")
            return
        event = parse_event(data)
        if isinstance(event, ApplicationReplaced):
            log.error(
                "ARI application %r was taken over by another websocket: events now go there, not here",
                event.application,
            )
        try:
            result = self._on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.handler_errors += 1
            log.exception("ARI event handler failed on %s", event.type)

    def _count_malformed(self, what: str) -> None:
        self.malformed_frames += 1
        log.warning("skipping malformed ARI frame: %s", what)
