"""``holdslayer demo``: the simulated PBX and the app in one process, one call, live progress."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from rich.console import Console

from app.calls.events import EventType
from app.calls.models import CallRequest
from app.config import Settings
from app.sim.corpus import CorpusError, ensure_corpus
from app.progress import CallProgress
from app.runtime import HoldSlayer

DEMO_DEVICE_ENDPOINT = "PJSIP/userphone"


async def run_demo(settings: Settings, *, number: str, intent: str, with_api: bool = False) -> int:
    """Place one call on the simulator; exit code 0 only if the user's phone was bridged to the agent."""
    from app.sim import SimConfig, SimulatedPBX, UserPhoneConfig, load_scenarios

    console = Console(highlight=False, soft_wrap=True)
    try:
        if not ensure_corpus().is_complete():
            raise CorpusError("corpus incomplete")
    except CorpusError:
        console.print("fetching the recording corpus (Debian packages) ...")
        try:
            ensure_corpus(quiet=False)
        except CorpusError as exc:
            console.print(f"[red]cannot fetch the recording corpus:[/red] {exc}")
            return 2

    pbx = SimulatedPBX(
        SimConfig(
            host="127.0.0.1",
            port=0,
            ari_user=settings.ari_user,
            ari_password=settings.ari_password,
            scenarios=load_scenarios(),
            # The user's phone answers after 2 s, talks to the agent, and hangs up after 6 s.
            user_phones={DEMO_DEVICE_ENDPOINT: UserPhoneConfig(answer_after=2.0, hangup_after=8.0, speech="prompt:hello")},
        )
    )
    await pbx.start()
    settings = settings.model_copy(
        update={
            "ari_url": pbx.ari_url,
            "user_devices": {**settings.user_devices, "sip_phone": DEMO_DEVICE_ENDPOINT},
            "default_transfer_device": "sip_phone",
            # Demo calls go to their own database, not the one `holdslayer serve` uses.
            "database_url": settings.database_url.replace("holdslayer.db", "demo.db"),
        }
    )
    holdslayer = HoldSlayer(settings)
    server_task = None
    try:
        await holdslayer.start()
        if with_api:
            server_task = await _start_api(holdslayer, settings, console)
        subscription = holdslayer.bus.subscribe()
        call_id = await holdslayer.manager.start_call(CallRequest(number=number, intent=intent))
        console.print(f"[bold]Hold Slayer demo[/bold]: calling {number} on the simulated PBX ({pbx.ari_url}), call {call_id}")
        progress = CallProgress(call_id)
        await _follow(progress, subscription, console)
        console.print(progress.outcome_line(), style="bold green" if progress.bridged else "bold red")
        return 0 if progress.bridged else 1
    finally:
        if server_task is not None:
            server_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server_task
        await holdslayer.stop()
        await pbx.stop()


async def _follow(progress: CallProgress, subscription, console: Console) -> None:
    live = sys.stdout.isatty()
    last_status = ""
    while not progress.ended:
        event = await subscription.get()
        if event is None:
            return
        line = progress.apply(event)
        if line:
            console.print(f"  {line}")
        status = progress.status_line()
        if event.type in (EventType.HOLD_PROGRESS, EventType.AUDIO_CLASSIFIED) and status != last_status:
            last_status = status
            if live:
                console.print(f"  {status}", end="\r")
            elif event.type is EventType.HOLD_PROGRESS:
                console.print(f"  {status}")


async def _start_api(holdslayer: HoldSlayer, settings: Settings, console: Console):
    import uvicorn

    from app.api.app import create_api

    config = uvicorn.Config(create_api(holdslayer), host=settings.api_host, port=settings.api_port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await asyncio.sleep(0.5)
    console.print(f"API and dashboard: http://{settings.api_host}:{settings.api_port}/")
    return task
