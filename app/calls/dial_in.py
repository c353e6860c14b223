"""The dial-in trigger: the user dials the extension prefix + a number from their own SIP phone.

Asterisk's dialplan sends that call to ``Stasis(holdslayer,dial,<number>)`` (capture d), so it
reaches us as a StasisStart we did not ask for. We answer, start a Hold Slayer call to the
number with the phone that dialled as the device to ring back, say "thank you" and hang up: the
user gets on with their day and is rung when a person is on the line.
"""

from __future__ import annotations

import asyncio
import logging
import re

from pydantic import ValidationError

from app.ari import events as ari_events
from app.ari.client import AriClient
from app.ari.errors import AriError
from app.ari.router import EventRouter
from app.calls.manager import CallManager, CallRequestError
from app.calls.models import CallRequest
from app.config import Settings

log = logging.getLogger(__name__)

ACK_SOUND = "sound:auth-thankyou"  # "Thank you."
REJECT_SOUND = "sound:cannot-complete-as-dialed"  # "Your call cannot be completed as dialed..."
PLAYBACK_TIMEOUT = 8.0
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}$")  # Asterisk appends -<sequence> to endpoint names


def device_for_channel(channel_name: str, settings: Settings) -> str:
    """Which configured device a channel came from (``PJSIP/userphone-0000001a`` -> ``sip_phone``)."""
    endpoint = _CHANNEL_SUFFIX.sub("", channel_name)
    for name, dial_string in settings.user_devices.items():
        if dial_string == endpoint:
            return name
    return settings.default_transfer_device


class DialInTrigger:
    def __init__(self, ari: AriClient, router: EventRouter, manager: CallManager, settings: Settings) -> None:
        self.ari, self.router, self.manager, self.settings = ari, router, manager, settings
        self._tasks: set[asyncio.Task] = set()

    def wants(self, event: ari_events.AriEvent) -> bool:
        return isinstance(event, ari_events.StasisStart) and len(event.args) >= 1 and event.args[0] == "dial"

    def handle(self, event: ari_events.StasisStart) -> None:
        """Called from event dispatch (sync): the work runs as its own task, in order for this channel."""
        channel_id = event.channel.id
        owner = f"dial-in-{channel_id}"
        queue = self.router.register(owner, [channel_id, f"{owner}-ack"])
        task = asyncio.create_task(self._run(event, owner, queue), name=owner)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: ari_events.StasisStart, owner: str, queue: asyncio.Queue) -> None:
        channel = event.channel
        number = event.args[1] if len(event.args) > 1 else ""
        try:
            await self.ari.answer(channel.id)
            try:
                request = CallRequest(number=number, device=device_for_channel(channel.name, self.settings))
                call_id = await self.manager.start_call(request)
            except (ValidationError, CallRequestError) as exc:
                log.warning("dial-in from %s to %r rejected: %s", channel.name, number, exc)
                await self._play_and_wait(channel.id, REJECT_SOUND, f"{owner}-ack", queue)
            else:
                log.info("dial-in from %s started call %s to %s", channel.name, call_id, number)
                await self._play_and_wait(channel.id, ACK_SOUND, f"{owner}-ack", queue)
            await self.ari.hangup(channel.id, missing_ok=True)
        except AriError as exc:
            log.warning("dial-in from %s: %s", channel.name, exc)
        finally:
            self.router.unregister(owner)

    async def _play_and_wait(self, channel_id: str, media: str, playback_id: str, queue: asyncio.Queue) -> None:
        await self.ari.play(channel_id, media, playback_id)
        try:
            async with asyncio.timeout(PLAYBACK_TIMEOUT):
                while True:
                    event = await queue.get()
                    if isinstance(event, ari_events.PlaybackFinished) and event.playback.id == playback_id:
                        return
                    if isinstance(event, (ari_events.StasisEnd, ari_events.ChannelDestroyed)):
                        return  # the user hung up first
        except TimeoutError:
            log.warning("no PlaybackFinished for %s on %s", media, channel_id)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
