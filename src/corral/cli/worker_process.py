"""Running a worker as a process: logging, signals, exit code."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from corral.app import Corral
from corral.cli.heap import settle_heap
from corral.logs import configure_logging
from corral.worker import Worker
from corral.worker.isolation import IsolationSettings

__all__ = ["run_worker"]

log = logging.getLogger("corral.worker")


async def run_worker(
    app: Corral,
    queues: Sequence[str] | None,
    *,
    concurrency: int | None,
    lease: float,
    grace: float,
    max_stalls: int,
    log_level: str,
    log_format: str = "text",
    isolation: IsolationSettings | None = None,
    prefetch: int | None = None,
) -> int:
    """Run a worker until SIGTERM/SIGINT; returns the process exit code."""
    configure_logging(log_level, log_format)
    worker = Worker(
        app,
        queues,
        concurrency=concurrency,
        lease=lease,
        grace=grace,
        max_stalls=max_stalls,
        isolation=isolation,
        prefetch=prefetch,
    )
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if worker._stop.is_set():
            log.warning("%s again: stopping now, handing running jobs back", name)
        else:
            log.info("%s: finishing running jobs (up to %.0fs); again to stop now", name, grace)
        worker.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    settle_heap()
    try:
        await worker.run()
    finally:
        await app.close()
    return 0
