"""``holdslayer demo``: the simulated PBX and the app in one process, one call, live progress.

By default the company is called as a first-time caller would: no stored call flow, so the app
finds its way through the menu by what the menu says (speech to text, the offline navigator);
``--follow-flow`` follows the shipped flow instead. ``--list`` names the simulated companies.
On a terminal the state is one live line (rich's live display) under the log of what happened.

A run with no stored flow keeps its call record and recordings in a new temporary directory
(``holdslayer-demo-*`` under TMPDIR), deleted at exit, even on Ctrl-C or SIGTERM; ``--keep``
keeps it and prints where it is. ``--follow-flow`` runs use ``demo.db`` beside the configured
database and the configured recordings directory, which stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from app.calls.events import EventType
from app.calls.models import CallRequest
from app.config import Settings
from app.sim.corpus import CorpusError, ensure_corpus
from app.progress import CallProgress
from app.runtime import HoldSlayer

DEMO_DEVICE_ENDPOINT = "PJSIP/userphone"


def list_companies(console: Console | None = None) -> int:
    """``holdslayer demo --list``: the companies of the simulated PBX, with what callers want there."""
    from app.sim import load_scenarios

    console = console or Console(highlight=False)
    table = Table("number", "company", "what callers want", box=None, pad_edge=False)
    for number, scenario in sorted(load_scenarios().items()):
        wants = "; ".join(intent.intent for intent in scenario.intents[:3])
        fallback = "a menu, hold and a person" if scenario.outcome == "answer" else scenario.outcome.replace("_", " ")
        table.add_row(number, escape(scenario.name), escape(wants or fallback))
    console.print(table)
    return 0


async def run_demo(
    settings: Settings,
    *,
    number: str,
    intent: str,
    with_api: bool = False,
    follow_flow: bool = False,
    keep: bool = False,
) -> int:
    """Place one call on the simulator; exit code 0 only if the user's phone was bridged to the agent.
    ``keep``: leave the temporary directory of a run without a stored flow, and say where it is."""
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
    update = {
        "ari_url": pbx.ari_url,
        "user_devices": {**settings.user_devices, "sip_phone": DEMO_DEVICE_ENDPOINT},
        "default_transfer_device": "sip_phone",
        # Demo calls go to their own database, not the one `holdslayer serve` uses.
        "database_url": settings.database_url.replace("holdslayer.db", "demo.db"),
    }
    scratch = None
    if not follow_flow:
        # A first-time caller: no flow for the number (none shipped, none learned by an earlier demo).
        scratch = Path(tempfile.mkdtemp(prefix="holdslayer-demo-"))
        (scratch / "flows").mkdir()
        update.update(
            flows_dir=scratch / "flows",
            database_url=f"sqlite:///{scratch / 'demo.db'}",
            recordings_dir=scratch / "recordings",  # with the record that names them
        )
    settings = settings.model_copy(update=update)
    holdslayer = server_task = None
    try:
        holdslayer = HoldSlayer(settings)
        await holdslayer.start()
        if with_api:
            server_task = await _start_api(holdslayer, settings, console)
        subscription = holdslayer.bus.subscribe()
        call_id = await holdslayer.manager.start_call(CallRequest(number=number, intent=intent))
        console.print(f"[bold]Hold Slayer demo[/bold]: calling {number} on the simulated PBX ({pbx.ari_url}), call {call_id}")
        if follow_flow:
            console.print("following the stored call flow for this number")
        else:
            console.print(f"no stored flow: finding the way by what the menu says, for {escape(repr(intent))}")
        progress = CallProgress(call_id)
        await _follow(progress, subscription, console)
        console.print(Text(progress.outcome_line(), style="bold green" if progress.bridged else "bold red"))
        return 0 if progress.bridged else 1
    finally:
        if server_task is not None:
            server, task = server_task
            server.should_exit = True  # a clean stop, not a cancellation (no traceback)
            await asyncio.gather(task, return_exceptions=True)
        try:
            if holdslayer is not None:
                await holdslayer.stop()
            await pbx.stop()
        finally:
            _leave(scratch, keep, console)


def _leave(scratch: Path | None, keep: bool, console: Console) -> None:
    """The temporary directory of a run without a stored flow: deleted, or kept and shown."""
    if scratch is None:
        return
    if keep:
        console.print(f"call record and recordings kept in {scratch} (demo.db, recordings/)")
    else:
        shutil.rmtree(scratch, ignore_errors=True)


async def _follow(progress: CallProgress, subscription, console: Console) -> None:
    """The log of what happened and, on a terminal, one live status line under it (elsewhere the
    status once per hold progress event)."""
    live = Live(Text(""), console=console, transient=True, refresh_per_second=8) if console.is_terminal else None
    with live if live is not None else contextlib.nullcontext():
        while not progress.ended:
            event = await subscription.get()
            if event is None:
                return
            line = progress.apply(event)
            if line:
                (live.console if live is not None else console).print(Text(f"  {line}"))
            status = Text(f"  {progress.status_line()}")
            if live is not None:
                live.update(status)
            elif event.type is EventType.HOLD_PROGRESS:
                console.print(status)


async def _start_api(holdslayer: HoldSlayer, settings: Settings, console: Console):
    import uvicorn

    from app.api.app import create_api

    config = uvicorn.Config(create_api(holdslayer), host=settings.api_host, port=settings.api_port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await asyncio.sleep(0.5)
    console.print(f"API and dashboard: http://{settings.api_host}:{settings.api_port}/")
    return server, task
