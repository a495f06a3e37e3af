"""Sample tasks for ``corral demo``: small stand-ins for real work.

They are registered on an app the caller creates (the demo takes its backend URL
from the command line), all in the ``demo`` queue:

* ``demo.sync_orders``: a paginated point-of-sale sync that reports progress;
* ``demo.flaky_webhook``: fails twice with a 503, then succeeds (retries);
* ``demo.broken_import``: always fails on a bad row (ends in the dead-letter set);
* ``demo.send_report``: quick, enqueued with a delay.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from corral.app import Corral
from corral.context import JobContext
from corral.task import Task

__all__ = [
    "BROKEN_IMPORT",
    "FLAKY_WEBHOOK",
    "QUEUE",
    "SEND_REPORT",
    "SYNC_ORDERS",
    "register_demo_tasks",
]

QUEUE = "demo"
SYNC_ORDERS = "demo.sync_orders"
FLAKY_WEBHOOK = "demo.flaky_webhook"
BROKEN_IMPORT = "demo.broken_import"
SEND_REPORT = "demo.send_report"

#: Seconds each page of ``demo.sync_orders`` "takes".
PAGE_SECONDS = 0.02


def register_demo_tasks(app: Corral) -> dict[str, Task[Any, Any]]:
    """Register the demo tasks on ``app``; returns them by name."""

    @app.task(name=SYNC_ORDERS, queue=QUEUE)
    async def sync_orders(ctx: JobContext, store: str, pages: int) -> dict[str, Any]:
        """Pull every page of a store's orders from its point-of-sale API."""
        rng = random.Random(f"{store}:{pages}")
        orders = 0
        for page in range(1, pages + 1):
            await asyncio.sleep(PAGE_SECONDS)
            orders += rng.randint(10, 50)
            await ctx.progress({"page": page, "pages": pages})
        await ctx.log(f"synced {orders} orders from {store} ({pages} pages)")
        return {"store": store, "orders": orders}

    @app.task(name=FLAKY_WEBHOOK, queue=QUEUE, attempts=3, backoff=0.2)
    async def flaky_webhook(ctx: JobContext, url: str) -> dict[str, Any]:
        """Deliver a webhook to an upstream that answers 503 twice before it recovers."""
        await asyncio.sleep(0.01)
        if ctx.attempt < 3:
            await ctx.log(f"POST {url} -> 503 (attempt {ctx.attempt} of {ctx.max_attempts})")
            raise ConnectionError("upstream 503")
        await ctx.log(f"POST {url} -> 200 (attempt {ctx.attempt})")
        return {"url": url, "status": 200}

    @app.task(name=BROKEN_IMPORT, queue=QUEUE, attempts=2, backoff=0.1)
    async def broken_import(ctx: JobContext, file: str) -> int:
        """Import a CSV file that has a bad row: every attempt fails the same way."""
        await ctx.log(f"reading {file}")
        await asyncio.sleep(0.01)
        raise ValueError("row 17: invalid date '2024-13-01'")

    @app.task(name=SEND_REPORT, queue=QUEUE)
    async def send_report(ctx: JobContext, to: str) -> dict[str, Any]:
        """Email the daily sales report (the demo enqueues it with a delay)."""
        await asyncio.sleep(0.01)
        await ctx.log(f"report sent to {to}")
        return {"to": to, "sent": True}

    tasks: list[Task[Any, Any]] = [sync_orders, flaky_webhook, broken_import, send_report]
    return {task.name: task for task in tasks}
