"""``holdslayer serve`` as a real subprocess against a simulated PBX: its environment, its start,
and the wait until it answers with ARI connected."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp

from tests.conftest import REPO, free_tcp_socket

# How long a started ``serve`` may take to answer: it loads its models first, and a loaded test
# machine runs three other test workers beside it.
SERVE_UP_SECONDS = 60.0


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


async def start_serve(
    tmp_path: Path, database_url: str, ari_url: str, *, output: int = asyncio.subprocess.PIPE, **extra: str
) -> tuple[asyncio.subprocess.Process, str]:
    """``holdslayer serve`` on a free port, talking to ``ari_url``; returns it and its base URL.
    Its stdout and stderr go to ``output`` together."""
    sock = free_tcp_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = serve_env(tmp_path, database_url, HOLDSLAYER_ARI_URL=ari_url, HOLDSLAYER_API_PORT=str(port), **extra)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", cwd=REPO, env=env, stdout=output, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


async def wait_until_serving(
    http: aiohttp.ClientSession, base: str, proc: asyncio.subprocess.Process, timeout: float = SERVE_UP_SECONDS
) -> None:
    """Until ``/api/health`` says ARI is connected; fails at once if the process has exited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if proc.returncode is not None:
            said = (await proc.stdout.read()).decode(errors="replace")[-3000:] if proc.stdout is not None else ""
            raise AssertionError(f"holdslayer serve exited with {proc.returncode} before it came up:\n{said}")
        try:
            async with http.get(f"{base}/api/health") as resp:
                if resp.status == 200 and (await resp.json())["ari_connected"]:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"holdslayer serve did not come up in {timeout:.0f} s")
