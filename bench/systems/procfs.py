"""Process trees, memory and CPU time from /proc (Linux), without psutil."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                kids.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _kib(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(pids: list[int]) -> dict[str, Any]:
    """RSS and PSS in KiB summed over pids (PSS shares pages between forked processes)."""
    return {
        "rss_kib": sum(_kib(f"/proc/{p}/status", "VmRSS") for p in pids),
        "pss_kib": sum(_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids),
        "processes": len(pids),
    }


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of pids, plus that of their reaped children (cutime + cstime)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += sum(int(x) for x in fields[11:15])
    return total / TICKS
