"""The chaos tasks. Workers load ``chaos.app:app`` (URL from ``CORRAL_URL``); the
harness builds its own client with :func:`make_app` for each scenario's URL.

Every task writes its execution to the ledger (``CHAOS_LEDGER``) and returns its
execution id, so the stored result names the execution Corral accepted.

With ``CHAOS_WEBHOOK_URL`` (and ``CHAOS_WEBHOOK_SECRET``) set, or ``webhook=`` given
to :func:`make_app`, the app also has notifications and a task ``chaos.notified``
whose every outcome is POSTed to that webhook; otherwise the app has neither.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chaos.ledger import task_ledger
from corral import Corral, JobContext, Retention

QUEUE = "chaos"
FILL_QUEUE = "fill"

# Ledger writes of async tasks go through one thread so a busy ledger never blocks
# the worker's event loop (which would distort lease renewal). One per process: a
# forked child cannot use its parent's threads.
_writers: dict[int, ThreadPoolExecutor] = {}


def _writer() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _writers:
        _writers[pid] = ThreadPoolExecutor(1, thread_name_prefix="chaos-ledger")
    return _writers[pid]


async def _begin(ctx: JobContext) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _writer(), task_ledger().begin, ctx.id, ctx.name, ctx.attempt, ctx.stalls
    )


async def _finish(exec_id: str, outcome: str) -> None:
    await asyncio.get_running_loop().run_in_executor(
        _writer(), task_ledger().finish, exec_id, outcome
    )


async def work(ctx: JobContext, ms: float, fail_first: bool = False) -> str:
    """Sleeps ``ms``; with ``fail_first`` its first attempt raises (then it retries)."""
    exec_id = await _begin(ctx)
    try:
        await asyncio.sleep(ms / 1000)
    except asyncio.CancelledError:
        await asyncio.shield(_finish(exec_id, "interrupted"))
        raise
    if fail_first and ctx.attempt == 1:
        await _finish(exec_id, "raised")
        raise RuntimeError("planned failure of a first attempt")
    await _finish(exec_id, "ok")
    return exec_id


def work_sync(ctx: JobContext, ms: float) -> str:
    """A plain function (runs in a thread) that honours ``ctx.cancelled``."""
    ledger = task_ledger()
    exec_id = ledger.begin(ctx.id, ctx.name, ctx.attempt, ctx.stalls)
    deadline = time.monotonic() + ms / 1000
    while time.monotonic() < deadline:
        if ctx.cancelled:
            ledger.finish(exec_id, "interrupted")
            ctx.raise_if_cancelled()
        time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
    ledger.finish(exec_id, "ok")
    return exec_id


async def block(ctx: JobContext, seconds: float) -> str:
    """Blocks the worker's event loop (time.sleep in async code) on its first run."""
    exec_id = task_ledger().begin(ctx.id, ctx.name, ctx.attempt, ctx.stalls)
    if ctx.stalls == 0:
        time.sleep(seconds)  # the mistake being demonstrated
    task_ledger().finish(exec_id, "ok")
    return exec_id


def cpu(ctx: JobContext, seconds: float) -> str:
    """CPU-bound plain function: holds the GIL most of the time for ``seconds``."""
    exec_id = task_ledger().begin(ctx.id, ctx.name, ctx.attempt, ctx.stalls)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += sum(i * i for i in range(2000))
    task_ledger().finish(exec_id, "ok")
    return exec_id


def heavy(ctx: JobContext, ms: float) -> str:
    """An isolated task (runs in a child process of the worker): CPU work for ``ms``."""
    exec_id = task_ledger().begin(ctx.id, ctx.name, ctx.attempt, ctx.stalls)
    deadline = time.monotonic() + ms / 1000
    n = 0
    while time.monotonic() < deadline:
        n += sum(i * i for i in range(500))
    task_ledger().finish(exec_id, "ok")
    return exec_id


async def poison(ctx: JobContext) -> None:
    """Kills its worker process every time it runs."""
    await _begin(ctx)
    await asyncio.sleep(0.05)
    os._exit(1)


async def fill(ctx: JobContext, payload: str, ms: float) -> str:
    """A job with a payload, for filling Redis; its queue drops completed jobs at once."""
    exec_id = await _begin(ctx)
    await asyncio.sleep(ms / 1000)
    await _finish(exec_id, "ok")
    return exec_id


async def notified(ctx: JobContext, ms: float) -> str:
    """:func:`work` in a task with a webhook: its outcome is notified."""
    return await work(ctx, ms)


def make_app(
    url: str | None = None,
    *,
    durable: bool | None = None,
    webhook: tuple[str, str] | None = None,
) -> Corral:
    """A Corral app with every chaos task; finished jobs are all kept (counted later).
    ``webhook``: (url, secret) for ``chaos.notified`` (default: from the environment)."""
    if durable is None:
        durable = os.environ.get("CHAOS_DURABLE") == "1"
    if webhook is None and os.environ.get("CHAOS_WEBHOOK_URL"):
        webhook = (os.environ["CHAOS_WEBHOOK_URL"], os.environ.get("CHAOS_WEBHOOK_SECRET", ""))
    notifications = None
    if webhook is not None:
        from corral.notify import NotifySettings

        # The receiver is on loopback; retries close together so a run ends quickly.
        notifications = NotifySettings(allow=("127.0.0.1",), retries=(0.2, 0.5, 1, 1, 1))
    app = Corral(
        url,
        completed=Retention(),
        failed=Retention(),
        durable=durable,
        notifications=notifications,
    )
    app.task(name="chaos.work", queue=QUEUE, attempts=3, backoff=0.05)(work)
    app.task(name="chaos.work_sync", queue=QUEUE, attempts=3, backoff=0.05)(work_sync)
    app.task(name="chaos.block", queue=QUEUE, attempts=1)(block)
    app.task(name="chaos.cpu", queue=QUEUE, attempts=1)(cpu)
    app.task(name="chaos.poison", queue=QUEUE, attempts=3)(poison)
    app.task(name="chaos.heavy", queue=QUEUE, attempts=20, backoff=0.05, isolation="process")(heavy)
    app.task(name="chaos.fill", queue=FILL_QUEUE, completed=Retention(count=0))(fill)
    if webhook is not None:
        from corral.notify import Webhook

        hook = Webhook(webhook[0], secret=webhook[1], name="chaos receiver")
        app.task(name="chaos.notified", queue=QUEUE, attempts=3, backoff=0.05, notify=[hook])(
            notified
        )
    return app


app = make_app()


def task(client: Corral, name: str) -> Any:
    """A registered task of ``client`` by its name (``"chaos.work"``)."""
    return client.tasks[name]
