"""The dial-in trigger: the user dials the extension prefix + a number from their own SIP phone.

Asterisk's dialplan sends that call to ``Stasis(holdslayer,dial,<number>)`` (capture d), so it
reaches us as a StasisStart we did not ask for. We answer; a number no call may go to (an
emergency number, an unknown device) gets the refusal and nothing else. Otherwise we ask what
the call is about (text to speech, through a bridge with an externalMedia channel), transcribe
the answer, read it back, hang up and start the call with that intent and the phone that dialled
as the device to ring back: the user gets on with their day and is rung when a person is on the
line. With ``dial_in_asks_intent`` off we say "thank you" and hang up at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from pydantic import ValidationError

from app.ari import events as ari_events
from app.ari.client import AriClient
from app.ari.errors import AriError
from app.ari.router import EventRouter
from app.calls.context import CallContext
from app.calls.control import WorkerUnavailable
from app.calls.events import EventBus
from app.calls.legs import ChannelTrack, Legs, MediaPorts
from app.calls.listening import CallListener
from app.calls.manager import CallManager, CallRequestError
from app.calls.models import CallRequest
from app.clock import MonotonicClock
from app.devices import Device, device_for_endpoint
from app.config import Settings
from app.speech import SttError, TextToSpeech

log = logging.getLogger(__name__)

ACK_SOUND = "sound:auth-thankyou"  # "Thank you."
REJECT_SOUND = "sound:cannot-complete-as-dialed"  # "Your call cannot be completed as dialed..."
PLAYBACK_TIMEOUT = 8.0
ANSWER_TIMEOUT_SECONDS = 15.0  # after the question: how long the user may take to start and finish
MORE_WORDS_SECONDS = 1.2  # after an utterance: a pause this long ends the answer
TRANSCRIPT_LAG_SECONDS = 1.5  # from the end of an utterance to its final transcript
SAMPLE_RATE = 8000
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}$")  # Asterisk appends -<sequence> to endpoint names


def device_for_channel(channel_name: str, devices: Sequence[Device]) -> str | None:
    """Which of the user's devices a channel came from (``PJSIP/userphone-0000001a`` -> ``sip_phone``);
    None (the default device) for one that is none of them."""
    device = device_for_endpoint(devices, _CHANNEL_SUFFIX.sub("", channel_name))
    return device.name if device is not None else None


def spoken_number(number: str) -> str:
    """Digits read one by one ("8 0 0 5 5 5 0 1 0 0"), as a person reads a number back."""
    return " ".join(ch for ch in number if ch.isdigit())


class DialInTrigger:
    def __init__(
        self,
        ari: AriClient,
        router: EventRouter,
        manager: CallManager,
        settings: Settings,
        *,
        tts: TextToSpeech,
        start: Callable[[CallRequest], Awaitable[str]] | None = None,
    ) -> None:
        """``start`` places the call (default: ``manager.start_call``; with worker processes,
        the front hands it to a worker)."""
        self.ari, self.router, self.manager, self.settings = ari, router, manager, settings
        self.tts = tts
        self._start = start or manager.start_call
        self._tasks: set[asyncio.Task] = set()

    def wants(self, event: ari_events.AriEvent) -> bool:
        return isinstance(event, ari_events.StasisStart) and len(event.args) >= 1 and event.args[0] == "dial"

    def handle(self, event: ari_events.StasisStart) -> None:
        """Called from event dispatch (sync): the work runs as its own task, in order for this channel."""
        channel_id = event.channel.id
        owner = f"dial-in-{channel_id}"
        queue = self.router.register(owner, [channel_id, f"{owner}-ack", f"{owner}-em", f"{owner}-br"])
        task = asyncio.create_task(self._run(event, owner, queue), name=owner)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: ari_events.StasisStart, owner: str, queue: asyncio.Queue) -> None:
        channel = event.channel
        number = event.args[1] if len(event.args) > 1 else ""
        try:
            await self.ari.answer(channel.id)
            try:
                device = device_for_channel(channel.name, await self.manager.devices())
                request = CallRequest(number=number, device=device)
                await self.manager.check(request)
            except (ValidationError, CallRequestError) as exc:
                log.warning("dial-in from %s to %r rejected: %s", channel.name, number, exc)
                await self._play_and_wait(channel.id, REJECT_SOUND, f"{owner}-ack", queue)
            else:
                if self.settings.dial_in_asks_intent:
                    intent, still_there = await self._ask_intent(channel.id, request.number, owner, queue)
                    request = request.model_copy(update={"intent": intent})
                else:
                    await self._play_and_wait(channel.id, ACK_SOUND, f"{owner}-ack", queue)
                    still_there = True
                if still_there:
                    await self.ari.hangup(channel.id, missing_ok=True)
                call_id = await self._start(request)
                log.info("dial-in from %s started call %s to %s about %r", channel.name, call_id, number, request.intent)
            await self.ari.hangup(channel.id, missing_ok=True)
        except (AriError, CallRequestError, WorkerUnavailable) as exc:
            log.warning("dial-in from %s: %s", channel.name, exc)
        finally:
            self.router.unregister(owner)

    async def _ask_intent(self, channel_id: str, number: str, owner: str, queue: asyncio.Queue) -> tuple[str, bool]:
        """Ask what the call is about, transcribe the answer, read it back. Returns the answer
        ("" when none came: the call still goes ahead) and whether the user is still there."""
        ctx = CallContext(owner, EventBus(), MonotonicClock())  # a conversation with no call events
        s = self.settings
        legs = Legs(ctx, self.ari, MediaPorts(s.media_host, s.media_port_min, s.media_port_max))
        legs.track(channel_id).started = True  # it is in Stasis: that is how it reached us
        follower = asyncio.create_task(legs.follow(queue), name=f"{owner}-events")
        user = legs.track(channel_id)
        endpoint = listener = feeder = None
        try:
            bridge = f"{owner}-br"
            await legs.create_bridge(bridge, "mixing")
            await self.ari.add_channel(bridge, channel_id)
            endpoint = await legs.open_media(f"{owner}-em", bridge)
            try:
                listener = await CallListener.open(s, lambda _transcript: ctx.notify())
            except SttError as error:
                log.warning("dial-in: no speech-to-text, the call goes ahead without an intent: %s", error)
            heard = {"samples": 0}

            async def feed() -> None:
                async for frame in endpoint.frames():
                    if listener is not None:
                        listener.push(frame.pcm, heard["samples"] / SAMPLE_RATE)
                    heard["samples"] += len(frame.pcm)

            feeder = asyncio.create_task(feed(), name=f"{owner}-hear")
            await endpoint.play(await self.tts.synthesize_async(s.dial_in_question))
            asked_at = heard["samples"] / SAMPLE_RATE
            intent = ""
            if listener is not None:
                intent = await self._answer(ctx, listener, asked_at, user)
            if user.gone:
                return intent, False
            about = f" about: {intent}" if intent else ""
            readback = f"Calling {spoken_number(number)}{about}. I will ring you when a person is on the line. Goodbye."
            await endpoint.play(await self.tts.synthesize_async(readback, cache=False))
            return intent, not user.gone
        finally:
            for task in (feeder, follower):
                if task is not None:
                    task.cancel()
            if listener is not None:
                await listener.close()
            if endpoint is not None:
                await endpoint.close()
            await legs.clean_up()
            await asyncio.gather(*(t for t in (feeder, follower) if t is not None), return_exceptions=True)

    async def _answer(self, ctx: CallContext, listener: CallListener, asked_at: float, user: ChannelTrack) -> str:
        """The words said after the question: the first utterance and any that follows it within
        ``MORE_WORDS_SECONDS``; "" if nothing was said within ``ANSWER_TIMEOUT_SECONDS``."""
        def utterances() -> int:
            return len(listener.transcripts_since(asked_at))

        if await ctx.wait_for(lambda: utterances() > 0 or user.gone, ANSWER_TIMEOUT_SECONDS):
            while not user.gone:
                count = utterances()
                # A further utterance's transcript comes after its pause and the recogniser's lag.
                if not await ctx.wait_for(lambda: utterances() > count or user.gone, MORE_WORDS_SECONDS + TRANSCRIPT_LAG_SECONDS):
                    break
        return listener.text_since(asked_at)

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
