"""CPU time and resident memory of a process, from /proc (Linux)."""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and brackets
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for process {pid}")


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the worker processes of ``serve --workers N``)."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            tasks = os.listdir(f"/proc/{pids[i]}/task")
        except FileNotFoundError:
            tasks = []
        for task in tasks:
            try:
                with open(f"/proc/{pids[i]}/task/{task}/children") as f:
                    pids.extend(int(child) for child in f.read().split())
            except FileNotFoundError:
                pass
        i += 1
    return pids


def tree_cpu_seconds(pid: int) -> float:
    """CPU time so far of ``pid`` and its descendants (one gone meanwhile no longer counts)."""
    return sum(_or_zero(cpu_seconds, p) for p in process_tree(pid))


def tree_rss_bytes(pid: int) -> int:
    return sum(_or_zero(rss_bytes, p) for p in process_tree(pid))


def _or_zero(measure, pid: int):
    try:
        return measure(pid)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0
