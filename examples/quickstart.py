"""Enqueue jobs from async code and run them with an in-process worker.

python -m examples.quickstart      (from the repository root; SQLite by default,
                                    CORRAL_URL=redis://... for Redis)
"""

from __future__ import annotations

import asyncio

from corral import JobFailed
from corral.worker import Worker
from examples.tasks import app, deliver_webhook, send_email, sync_orders


async def main() -> None:
    worker = Worker(app, ["sync", "webhooks", "emails"], concurrency=10)
    running = asyncio.create_task(worker.run())

    job = await sync_orders.enqueue("restaurant-42", pages=5)
    print("sync:", await job.result(timeout=10))
    await job.refresh()
    print("progress:", job.progress, "logs:", job.logs)

    urgent = await send_email.options(priority=10).enqueue("a@example.com", "Welcome")
    print("email:", await urgent.result(timeout=10))

    gone = await deliver_webhook.enqueue("https://example.com/gone", {"event": "x"})
    try:
        await gone.result(timeout=10)
    except JobFailed as exc:
        print("webhook:", exc)

    jobs = await send_email.enqueue_many([(f"user{i}@example.com", "Digest") for i in range(100)])
    print("bulk:", len(jobs), "jobs;", await jobs[-1].result(timeout=10))
    print("counts:", await app.queue("emails").counts())

    worker.stop()
    await running
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
