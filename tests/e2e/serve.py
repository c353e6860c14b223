"""``holdslayer serve`` as a real subprocess against a simulated PBX: its environment, its start,
and the wait until it answers with ARI connected.

It listens on a port the kernel chooses (``HOLDSLAYER_API_PORT=0``) and the test reads that port
from uvicorn's "running on" line: a port picked by the test, closed and handed over, can be taken
by another test worker's server meanwhile, and the test then talks to that server instead.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import aiohttp

from tests.conftest import REPO

# How long a started ``serve`` may take to answer: it loads its models first, and a loaded test
# machine runs three other test workers beside it.
SERVE_UP_SECONDS = 60.0
_RUNNING_ON = re.compile(rb"Uvicorn running on (http://[0-9.]+:\d+)")


class Serve:
    """A running ``holdslayer serve``: ``proc``, its ``base`` URL, and everything it printed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.base = ""
        self._printed = bytearray()
        self._reading: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def until_listening(self, timeout: float = SERVE_UP_SECONDS) -> None:
        """Until uvicorn says where it listens (the app has started: ARI answered)."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while line := await self.proc.stdout.readline():
                    self._printed += line
                    if found := _RUNNING_ON.search(line):
                        self.base = found[1].decode()
                        break
        except TimeoutError:
            raise AssertionError(f"holdslayer serve did not come up in {timeout:.0f} s:\n{self.printed()}") from None
        if not self.base:
            await self.proc.wait()
            raise AssertionError(f"holdslayer serve exited with {self.proc.returncode} before it came up:\n{self.printed()}")
        # Read on, so the process never blocks on a full pipe and its last words are kept.
        self._reading = asyncio.create_task(self._read_on())

    async def _read_on(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(65536):
            self._printed += chunk

    def printed(self) -> str:
        return self._printed.decode(errors="replace")

    async def until_printed(self, text: bytes, timeout: float) -> None:
        """Until a line holding ``text`` is printed (before the process listens)."""
        assert self.proc.stdout is not None and self._reading is None
        async with asyncio.timeout(timeout):
            while line := await self.proc.stdout.readline():
                self._printed += line
                if text in line:
                    return
        raise AssertionError(f"holdslayer serve exited without printing {text!r}:\n{self.printed()}")

    async def exited(self, timeout: float) -> str:
        """Wait (at most ``timeout`` s) for the process to exit; returns all it printed."""
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_on())
        async with asyncio.timeout(timeout):
            await self.proc.wait()
            if self._reading is not None:
                await self._reading
        return self.printed()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reading is not None:
            await self._reading


def serve_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without its HOLDSLAYER_ settings (the corpus directory kept),
    with a database, recordings under ``tmp_path``, the shipped flows and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDSLAYER_") or k == "HOLDSLAYER_CORPUS_DIR"}
    env.update(
        HOLDSLAYER_DATABASE_URL=database_url,
        HOLDSLAYER_RECORDINGS_DIR=str(tmp_path / "recordings"),
        HOLDSLAYER_FLOWS_DIR=str(REPO / "flows"),
        **extra,
    )
    return env


async def launch_serve(tmp_path: Path, database_url: str, ari_url: str, **extra: str) -> Serve:
    """``holdslayer serve`` on a port of its own, talking to ``ari_url``; not yet waited for."""
    env = serve_env(tmp_path, database_url, HOLDSLAYER_ARI_URL=ari_url, HOLDSLAYER_API_PORT="0", **extra)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return Serve(proc)


async def start_serve(
    http: aiohttp.ClientSession, tmp_path: Path, database_url: str, ari_url: str, **extra: str
) -> Serve:
    """``holdslayer serve`` started and answering, its ``/api/health`` saying ARI is connected."""
    serve = await launch_serve(tmp_path, database_url, ari_url, **extra)
    try:
        await serve.until_listening()
        async with http.get(f"{serve.base}/api/health") as resp:
            body = await resp.json()
        assert resp.status == 200 and body["ari_connected"], (resp.status, body)
    except BaseException:
        await serve.kill()
        raise
    return serve
