"""A cancelled Redis call ends its task: a stop that cancels a task and waits for it
(a worker's, the dashboard's live hub) must not wait for ever.

redis-py wraps each write in ``asyncio.wait_for``, which on Python 3.11 returns the
write's result when the cancel arrives just as the write finishes: the cancel is lost
and the task carries on. The backend honours it when the call returns."""

from __future__ import annotations

import asyncio
import gc
import warnings

from corral import Corral


async def test_a_call_cancelled_at_any_point_ends_its_task(redis_url: str) -> None:
    corral = Corral(redis_url)
    try:
        await corral.enqueue("x.y", [1], queue="q")
        await corral.overview()  # connected: the loop below cancels calls, not the connect

        async def reads() -> None:
            while True:
                await corral.workers()
                await corral.overview()

        # Cancel after every number of loop turns a few calls take: one of them lands
        # as redis-py's write completes (the turn that lost the cancel before the fix).
        for turns in range(60):
            for _ in range(5):
                task = asyncio.create_task(reads())
                for _ in range(turns):
                    await asyncio.sleep(0)
                task.cancel()
                done, _ = await asyncio.wait([task], timeout=5)
                assert done, f"cancelled after {turns} loop turns, the task carried on"
                assert task.cancelled()
    finally:
        await corral.close()
        # A cancel that lands as a connection opens orphans its socket (the finished
        # connect's result is dropped): close what this test's cancels leaked while its
        # loop still runs, rather than warn in whichever later test collects it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
