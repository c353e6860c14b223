"""scripts/test-database returns its URL even when it has to start the server.

A daemon started from the script inherits its descriptors. When one of them was the pipe of
`$(scripts/test-database)`, the caller waited for ever: CI, on a machine whose cluster was down,
timed out before the first test ran. Here the PostgreSQL commands are stand-ins on PATH whose
"server" is a sleeper that keeps every descriptor it was given.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "test-database"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the script runs as root in CI")


def _command(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def stand_in_postgresql(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state = tmp_path / "online"
    server_pid = tmp_path / "server.pid"
    _command(
        bin_dir,
        "pg_lsclusters",
        f'status=down; [ -e {state} ] && status=online\n'
        'echo "15 main 5432 $status postgres /nowhere /nowhere.log"\n',
    )
    # Starting detaches a "server" that holds whatever it inherited, as pg_ctl's postmaster does.
    _command(
        bin_dir,
        "pg_ctlcluster",
        f'touch {state}\n(exec sleep 60) & echo $! > {server_pid}\n',
    )
    _command(bin_dir, "runuser", 'shift 3; exec "$@"\n')  # runuser -u postgres -- CMD...
    _command(bin_dir, "psql", "cat >/dev/null; echo 1\n")
    _command(bin_dir, "createdb", "exit 0\n")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    yield env, server_pid
    if server_pid.exists():
        subprocess.run(["kill", server_pid.read_text().strip()], check=False)


def test_the_url_comes_back_while_the_server_it_started_runs_on(stand_in_postgresql):
    env, server_pid = stand_in_postgresql
    # subprocess reads stdout to EOF: a server holding that pipe makes this time out.
    done = subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "postgresql://holdslayer_test:holdslayer_test@127.0.0.1:5432/holdslayer_test"
    )
    assert server_pid.exists(), "the stand-in server was not started: nothing was tested"
    server = server_pid.read_text().strip()
    assert Path(f"/proc/{server}").exists(), "the server should still be running"
    held = {os.readlink(fd) for fd in Path(f"/proc/{server}/fd").iterdir()}
    assert not any(target.startswith("pipe:") for target in held), held
