"""The Celery app and tasks (imported by the Celery worker and producer only)."""

from __future__ import annotations

import os

from celery import Celery

from systems.common import incr_sync, noop, stamp_sync

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])  # no result backend


@app.task(name="bench.incr")
def incr(i: int) -> None:
    incr_sync()


@app.task(name="bench.stamp")
def stamp(i: int) -> None:
    stamp_sync()


@app.task(name="bench.noop")
def empty(i: int) -> None:
    noop()


TASKS = {"incr": incr, "stamp": stamp, "noop": empty}
