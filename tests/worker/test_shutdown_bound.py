"""``--grace`` bounds the whole stop, even while the store is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Corral, JobState
from tests.process.conftest import wait_until as wait_until_sync
from tests.redis_server import RedisServer
from tests.worker.procs import WorkerProc

pytestmark = pytest.mark.slow


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone, which the test stops."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_stop_with_the_store_down_ends_within_grace(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    url = private_redis.url
    app = Corral(url)
    # At debug level: with the outage logged once, the failed flushes are debug lines.
    args = ("-q", "proc", "--grace", "1", "--log-level", "debug")
    worker = WorkerProc(url, tmp_path / "worker.log", *args)
    try:
        job = app.enqueue_sync("proc.busy_sync", [1.0], queue="proc")
        wait_until_sync(lambda: app.get_job_sync(job.id, "proc").state is JobState.ACTIVE)
        app.close_sync()
        private_redis.stop()
        # The job finishes while the store is down: its completion cannot be recorded.
        wait_until_sync(lambda: "could not record completions" in worker.output(), timeout=15)
        worker.terminate()
        # grace (1 s) plus a margin; before the fix the flush retried for ever.
        assert worker.proc.wait(6) == 0, worker.output()
    finally:
        worker.close()
