"""RQ: ``rq worker`` (the default Worker forks a work horse per job), one per process."""

from __future__ import annotations

from typing import Any, ClassVar

from redis import Redis
from rq import Queue, get_current_job

from systems.base import System
from systems.common import QUEUE, incr_sync, stamp_sync


# The job uses RQ's own connection: a client made in the work horse would connect anew
# for every job (each job runs in a fresh fork).
def incr(i: int) -> None:
    incr_sync(get_current_job().connection)  # type: ignore[union-attr]


def stamp(i: int) -> None:
    stamp_sync(get_current_job().connection)  # type: ignore[union-attr]


TASKS = {"incr": incr, "stamp": stamp}


class RQ(System):
    id = "rq"
    label = "RQ"
    package = "rq"
    bulk_api = "Queue.enqueue_many() (one pipeline)"
    caps: ClassVar[dict[str, int]] = {"drain": 300, "samples": 100}  # a fork per job
    cannot: ClassVar[dict[str, str]] = {
        key: "a fork per job: a process-local count dies with each work horse" for key in "ij"
    }
    settings: ClassVar[dict[str, Any]] = {
        "worker": "rq worker --quiet (default rq.Worker: forks a work horse per job; one command per process)",
        "event loop": "none (sync)",
        "concurrency": "1 job at a time per worker process",
        "task": "def (sync); body through the job's RQ connection (a plain redis.Redis: "
        "a client made in the fork would connect anew for every job)",
        "acks": "after the job",
        "retention": "default (results kept 500 s)",
    }

    async def open(self) -> None:
        self.queue = Queue(QUEUE, connection=Redis.from_url(self.ctx.redis_url))

    async def close(self) -> None:
        self.queue.connection.close()

    async def one(self, i: int, kind: str) -> None:
        self.queue.enqueue(TASKS[kind], i)

    async def bulk(self, n: int, kind: str = "incr") -> None:
        for start in range(0, n, 1000):
            jobs = [Queue.prepare_data(incr, args=(i,)) for i in range(start, min(n, start + 1000))]
            self.queue.enqueue_many(jobs)

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.tool("rq"), "worker", "--url", self.ctx.redis_url, "--quiet", QUEUE]
        return [cmd] * processes
