"""A small app for tests that run real worker processes (URL from CORRAL_URL)."""

from __future__ import annotations

import asyncio
import os
import time

from corral import Corral, JobContext

app = Corral()


@app.task(name="proc.echo", queue="proc")
async def echo(value: str) -> str:
    return value


@app.task(name="proc.sleepy", queue="proc", attempts=1)
async def sleepy(ctx: JobContext, seconds: float) -> dict[str, int]:
    """Sleeps on its first run; returns at once on a run after a stall."""
    if ctx.stalls == 0:
        await ctx.log(f"pid {os.getpid()}")
        await asyncio.sleep(seconds)
    return {"pid": os.getpid(), "stalls": ctx.stalls}


@app.task(name="proc.busy_sync", queue="proc")
def busy_sync(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@app.task(name="proc.ledger", queue="ledger")
def ledger(path: str) -> int:
    """Records each execution in an external ledger, to count runs from outside."""
    import sqlite3

    from corral import current_job

    job = current_job()
    with sqlite3.connect(path, timeout=60) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS runs (job TEXT, attempt INT, pid INT)")
        conn.execute("INSERT INTO runs VALUES (?, ?, ?)", (job.id, job.attempt, os.getpid()))
    return os.getpid()


@app.task(name="proc.gc_state", queue="proc")
def gc_state() -> dict[str, int]:
    """The worker process's garbage-collector state (its start-up heap is frozen)."""
    import gc

    return {"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}
