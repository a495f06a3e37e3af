"""Tenants, dedupe and debounce: a big restaurant's backlog does not hold up a small one.

python -m examples.tenants      (from the repository root; SQLite by default,
                                 CORRAL_URL=redis://... for Redis)
"""

from __future__ import annotations

import asyncio

from corral.worker import Worker
from examples.tasks import app, sync_orders


async def main() -> None:
    sync = app.queue("sync")
    await sync.set_limits(group_max_active=2)  # each restaurant: 2 syncs at once at most

    big = [sync_orders.options(group="r-big").call(f"big-{i}", pages=1) for i in range(200)]
    await app.enqueue_many(big)
    small = [await sync_orders.options(group="r-small").enqueue(f"small-{i}", 1) for i in range(3)]

    # Dedupe: a second "sync restaurant 42" while the first is pending returns the first.
    first = await sync_orders.options(dedupe_key="sync:r-42").enqueue("r-42", 1)
    again = await sync_orders.options(dedupe_key="sync:r-42").enqueue("r-42", 1)
    print("dedupe: same job:", again.id == first.id, "created:", again.created)

    # Debounce: three saves in a row make one sync, with the last arguments, 0.2 s later.
    for pages in (1, 2, 3):
        debounced = await sync_orders.options(dedupe_key="resync:r-7", debounce=0.2).enqueue(
            "r-7", pages
        )

    worker = Worker(app, ["sync"], concurrency=4)
    running = asyncio.create_task(worker.run())
    for job in small:
        await job.result(timeout=30)
    done = (await sync.counts())["completed"]
    print(f"small restaurant done after {done} of {len(big) + 5} jobs")
    print("debounced:", await debounced.result(timeout=30), "args:", debounced.args)
    worker.stop()
    await running
    await sync.clear_limits()
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
