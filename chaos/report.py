"""Writing ``chaos/RESULTS.md``: machine, command, one row per scenario and backend."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from chaos.verdict import Result

__all__ = ["machine", "write"]


def _redis_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    except OSError:
        return "not installed"
    for part in out.stdout.split():
        if part.startswith("v="):
            return part[2:]
    return out.stdout.strip()


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "nproc": str(os.cpu_count()),
        "CPU": _cpu(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Redis": _redis_version(),
        "redis-py": version("redis"),
        "SQLite": __import__("sqlite3").sqlite_version,
        "Corral": version("corral"),
    }


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f} s"


def write(path: Path, results: list[Result], command: str, wall: float, quick: bool) -> None:
    lines = [
        "# Corral chaos results",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by `{command}` "
        f"({'quick' if quick else 'full'} mode) in {wall:.0f} s.",
        "",
        "Losses and duplicates are counted from the ledger (each execution recorded by the",
        "task itself, each acknowledged enqueue by its producer) and the final job records;",
        "a duplicate is *explained* when the job's record shows a stall (an expired lease)",
        "or the extra execution ran in a worker that was killed or crashed.",
        "For notify_kill the columns count notifications: lost = a job not completed, or",
        "completed and no verified webhook for it arrived; a duplicate = a notice (one",
        "webhook-id) that arrived more than once, explained when its delivery job stalled",
        "or was retried.",
        "For the cluster and Sentinel failover rows (a producer at 300 enqueues/s and two",
        "workers on one queue): recovery is the time from the SIGKILL of the queue's primary",
        "(for cluster_reshard: from the end of the slot's move) to the first job completed",
        "after it, as the store recorded it; producer errors count enqueue calls that raised",
        "(each tried again with the same job id); an extra run is also explained when it began",
        "before the queue's primary changed (its claim or outcome may not have reached the",
        "replica).",
        "",
        "| Machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine().items()),
        "",
        "| Scenario | Backend | Jobs | Faults | Lost | Duplicates | Explained | Unexplained "
        "| Recovery | Producer errors | Slowest enqueue | Wall | Verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        verdict = "PASS" if r.passed else "**FAIL**"
        lines.append(
            f"| {r.scenario} | {r.backend} | {r.jobs} | {r.faults} | {r.lost} | "
            f"{r.duplicates} | {r.explained} | {r.unexplained} | {_cell(r.recovery_s)} | "
            f"{'-' if r.producer_errors is None else r.producer_errors} | "
            f"{_cell(r.slowest_enqueue_s, 2)} | {_cell(r.wall_s)} | {verdict} |"
        )
    passed = sum(r.passed for r in results)
    lines += ["", f"{passed} of {len(results)} passed.", "", "## Checks and notes", ""]
    for r in results:
        lines.append(f"### {r.scenario} — {r.backend}: {r.verdict}")
        lines.append("")
        for c in r.checks:
            mark = "ok" if c.ok else "FAILED"
            detail = "" if c.ok or not c.detail else f" — {c.detail}"
            lines.append(f"- {mark}: {c.name}{detail}")
        lines += [f"- note: {n}" for n in r.notes if "\n" not in n]
        lines += [f"\n```\n{n}\n```" for n in r.notes if "\n" in n]
        lines.append("")
    path.write_text("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)
