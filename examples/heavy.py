"""Heavy tasks in child processes: a timeout that stops a busy loop for real, a memory
cap, a crash that costs one attempt, never the worker.

python examples/heavy.py      (from the repository root; SQLite by default,
                               CORRAL_URL=redis://... for Redis)
"""

from __future__ import annotations

import asyncio
import os

from corral import Corral, JobContext
from corral.worker import Worker

app = Corral()


@app.task(queue="heavy", isolation="process", timeout=30, memory_limit="256MB")
def render_report(ctx: JobContext, pages: int) -> dict[str, int]:
    for page in range(1, pages + 1):
        ctx.progress_sync({"page": page, "of": pages})
    return {"pages": pages, "pid": os.getpid()}


@app.task(queue="heavy", isolation="process", timeout=1, attempts=1)
def spin() -> None:
    while True:  # pure Python: no await, no check of ctx.cancelled
        pass


@app.task(queue="heavy", isolation="process", memory_limit="256MB", attempts=1)
def hog() -> int:
    blocks = [bytearray(64 * 2**20) for _ in range(32)]  # 2 GiB, a page at a time
    return len(blocks)


@app.task(queue="heavy", isolation="process", attempts=2)
def crash() -> None:
    os._exit(3)  # as a segfault or the OOM killer would: the child is gone


async def main() -> None:
    report = await render_report.enqueue(5)
    jobs = {
        "spin": await spin.enqueue(),
        "hog": await hog.enqueue(),
        "crash": await crash.enqueue(),
    }
    worker = Worker(app, ["heavy"], concurrency=2)
    running = asyncio.create_task(worker.run())
    result = await report.result(timeout=30)
    print("report:", result["pages"], "pages, in another process:", result["pid"] != os.getpid())
    for name, job in jobs.items():
        await job.wait(timeout=30)
        await job.refresh()
        error = job.errors[-1]
        print(f"{name}: {job.state.value} after {job.attempts} attempt(s): {error['type']}")
    worker.stop()
    await running
    print("worker still fine: stopped on request")


if __name__ == "__main__":
    asyncio.run(main())
