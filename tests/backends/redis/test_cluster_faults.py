"""A queue's slot migrating to another primary, or its primary dying, while the
backend uses it.

During a migration Redis answers a script whose keys are not all on one side with ASK,
then TRYAGAIN, until the slot has moved; redis-py gives up after 16 redirections
("TTL exhausted.", about half a second). The backend rides that out like a failover:
a migration shorter than ``reconnect_timeout`` costs an enqueue latency, not an error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from chaos.harness import wait_until
from chaos.topology import ClusterProcs

from corral.backends.redis import RedisBackend
from corral.task import new_job_id
from tests.contract.conftest import new_job

QUEUE = "migrating"
KEY = f"corral:{{{QUEUE}}}:meta"


async def test_enqueue_rides_out_a_slot_migration(
    redis_cluster: ClusterProcs, redis_cluster_url: str
) -> None:
    backend = RedisBackend(redis_cluster_url)
    await backend.connect()
    slot = redis_cluster.slot_of(KEY)
    source = redis_cluster.owner(KEY)
    target = next(n for n in redis_cluster.primary_nodes() if n is not source)
    try:
        await backend.enqueue(QUEUE, [new_job(new_job_id())])
        with redis_cluster.client(source) as src, redis_cluster.client(target) as dst:
            dst.execute_command(
                "CLUSTER", "SETSLOT", slot, "IMPORTING", redis_cluster.node_id(source)
            )
            src.execute_command(
                "CLUSTER", "SETSLOT", slot, "MIGRATING", redis_cluster.node_id(target)
            )
        adding = asyncio.create_task(backend.enqueue(QUEUE, [new_job(new_job_id())]))
        # The migration lasts well past redis-py's redirection budget (~0.5 s).
        done, _ = await asyncio.wait({adding}, timeout=1.5)
        assert not done, f"the enqueue ended during the migration: {adding}"
        moved = await asyncio.to_thread(redis_cluster.move_slot, slot, target)
        assert moved >= 1
        assert await asyncio.wait_for(adding, 10) == [None]  # stored, once
        counts = await backend.counts(QUEUE)
        assert counts["waiting"] == 2
    finally:
        await backend.close()
        if redis_cluster.slot_owner(slot) is not source:
            await asyncio.to_thread(redis_cluster.move_slot, slot, source)


async def test_scripts_stopped_at_a_moved_key_are_tried_again(
    redis_cluster: ClusterProcs, redis_cluster_url: str
) -> None:
    # With every key a script declares present on the source, Redis runs it there
    # during the move and stops it at the first job key that is not (moved already, or
    # new): "Script attempted to access a non local key". Tried again, the enqueue and
    # the claim land on the target once the slot has moved.
    backend = RedisBackend(redis_cluster_url)
    await backend.connect()
    slot = redis_cluster.slot_of(KEY)
    source = redis_cluster.owner(KEY)
    target = next(n for n in redis_cluster.primary_nodes() if n is not source)
    first, second, running = new_job_id(), new_job_id(), new_job_id()
    try:
        await backend.enqueue(QUEUE, [new_job(running, priority=5)])
        assert [j.id for j in (await backend.claim(QUEUE, 1, 60_000, "w0"))[0]] == [running]
        await backend.enqueue(QUEUE, [new_job(first, priority=1), new_job(second, priority=1)])
        await backend.enqueue(QUEUE, [new_job(new_job_id(), delay_ms=3_600_000)])
        with redis_cluster.client(source) as src, redis_cluster.client(target) as dst:
            for state in ("completed", "failed", "cancelled"):  # read by neither script
                src.zadd(f"corral:{{{QUEUE}}}:{state}", {"placeholder": 0})
            dst.execute_command(
                "CLUSTER", "SETSLOT", slot, "IMPORTING", redis_cluster.node_id(source)
            )
            src.execute_command(
                "CLUSTER", "SETSLOT", slot, "MIGRATING", redis_cluster.node_id(target)
            )
            moved = [f"corral:{{{QUEUE}}}:j:{i}" for i in (first, second)]
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *moved)
        adding = asyncio.create_task(backend.enqueue(QUEUE, [new_job(new_job_id())]))
        claiming = asyncio.create_task(backend.claim(QUEUE, 1, 60_000, "w1"))
        # A worker of one queue waits and claims on one link of the queue's node.
        stop = asyncio.Event()
        waiting = asyncio.create_task(backend.wait_and_claim([QUEUE], 5, 1, 60_000, "w2", stop))
        done, _ = await asyncio.wait({adding, claiming, waiting}, timeout=1.0)
        assert not done, f"ended during the migration: {done}"
        await asyncio.to_thread(redis_cluster.move_slot, slot, target)
        assert await asyncio.wait_for(adding, 10) == [None]
        claimed = (await asyncio.wait_for(claiming, 10))[0]
        claimed += (await asyncio.wait_for(waiting, 10))[0]
        assert sorted(j.id for j in claimed) == sorted([first, second])
    finally:
        await backend.close()
        if redis_cluster.slot_owner(slot) is not source:
            await asyncio.to_thread(redis_cluster.move_slot, slot, source)


@pytest.mark.slow
async def test_durable_enqueues_follow_the_slot_to_the_promoted_replica(tmp_path: Path) -> None:
    # A durable enqueue runs its script and WAIT on one connection of the queue's node,
    # beside the usual routing: after its primary dies it must still learn the new
    # owner instead of knocking on the dead node until reconnect_timeout.
    cluster = ClusterProcs(tmp_path, appendonly="yes", appendfsync="always").start()
    backend = RedisBackend(cluster.url, durable=True, reconnect_timeout=20)
    try:
        await backend.connect()
        assert await backend.enqueue(QUEUE, [new_job(new_job_id())]) == [None]
        owner = cluster.owner(KEY)
        cluster.kill(owner)
        assert await asyncio.to_thread(wait_until, lambda: cluster.failed_over(owner, KEY), 20)
        # Back as the new primary's replica, so that WAIT 1 can be answered.
        await asyncio.to_thread(cluster.restart, owner)
        adding = backend.enqueue(QUEUE, [new_job(new_job_id())])
        assert await asyncio.wait_for(adding, 15) == [None]
        assert (await backend.counts(QUEUE))["waiting"] == 2
    finally:
        await backend.close()
        cluster.stop()
