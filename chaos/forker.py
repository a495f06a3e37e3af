"""Fork children from a process that holds open Corral SQLite connections.

The parent opens the database through its own event loop and through the blocking
(``*_sync``) API, then forks three children that each enqueue ``N`` jobs to queue
``forked`` and run them with an in-process worker:

- ``same-loop``: reuses the parent's (not running) event loop, hence its backend;
- ``new-loop``: ``asyncio.run`` with the same app object;
- ``sync-api``: the blocking API (``enqueue_many_sync``), then a worker on a new loop.

Each child is bounded by an alarm. The parent then enqueues through both of its own
paths again. Prints one JSON object: exit code per child and the parent's result.

    python -m chaos.forker URL LEDGER N
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

from chaos.app import QUEUE, make_app
from chaos.ledger import Ledger
from corral import Corral
from corral.worker import Worker

FORKED = "forked"


async def _enqueue(app: Corral, ledger: Ledger, n: int, queue: str) -> list[str]:
    task = app.tasks["chaos.work"].options(queue=queue)
    jobs = await app.enqueue_many([task.call(1.0) for _ in range(n)])
    ids = [job.id for job in jobs]
    ledger.enqueued(ids, queue)
    return ids


async def _run_until_done(app: Corral, ids: list[str], timeout: float) -> bool:
    worker = Worker(app, [FORKED], concurrency=4, lease=2.0)
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + timeout
    done = False
    while time.monotonic() < deadline and not running.done():
        states = [(await app.get_job(i, FORKED)).state.value for i in ids]
        if all(s == "completed" for s in states):
            done = True
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await running
    return done


def _child(variant: str, app: Corral, loop: asyncio.AbstractEventLoop, path: str, n: int) -> int:
    signal.alarm(20)
    ledger = Ledger(path)  # never use the parent's connection in the child

    async def enqueue_and_run() -> bool:
        ids = await _enqueue(app, ledger, n, FORKED)
        return await _run_until_done(app, ids, 15)

    async def run_only(ids: list[str]) -> bool:
        return await _run_until_done(app, ids, 15)

    if variant == "same-loop":
        ok = loop.run_until_complete(enqueue_and_run())
    elif variant == "new-loop":
        ok = asyncio.run(enqueue_and_run())
    else:
        signal.alarm(5)  # an enqueue takes milliseconds: 5 s means it hangs
        task = app.tasks["chaos.work"].options(queue=FORKED)
        ids = [j.id for j in task.enqueue_many_sync([task.call(1.0) for _ in range(n)])]
        ledger.enqueued(ids, FORKED)
        signal.alarm(20)
        ok = asyncio.run(run_only(ids))
    return 0 if ok else 1


def main() -> int:
    url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = make_app(url)
    ledger = Ledger(path)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_enqueue(app, ledger, 1, QUEUE))  # the loop's connection
    task = app.tasks["chaos.work"]
    ledger.enqueued([task.enqueue_sync(1.0).id], QUEUE)  # the sync API's connection
    report: dict[str, object] = {}
    for variant in ("same-loop", "new-loop", "sync-api"):
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = _child(variant, app, loop, path, n)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        report[variant] = os.waitstatus_to_exitcode(status)
    try:
        loop.run_until_complete(_enqueue(app, ledger, 5, QUEUE))
        ledger.enqueued([task.enqueue_sync(1.0).id], QUEUE)
        report["parent"] = "ok"
    except Exception as exc:
        report["parent"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(report), flush=True)
    loop.run_until_complete(app.close())
    loop.close()
    app.close_sync()
    ledger.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
