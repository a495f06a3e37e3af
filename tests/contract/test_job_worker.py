"""Which worker ran a job: JobRecord.worker (set at claim), the worker named in each
attempt's stall error, and WorkerInfo.jobs/version through the registry."""

from __future__ import annotations

import asyncio

import orjson

from corral.backends.base import KEEP_ALL, Backend, Completion, JobState, WorkerInfo
from tests.contract.conftest import claim_one, enqueue

Q = "emails"


async def test_the_claiming_worker_is_recorded_and_kept(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    record = await backend.get(Q, "j1")
    assert record is not None and record.worker is None
    first = await claim_one(backend, Q, worker_id="host-a:11:aa")
    record = await backend.get(Q, "j1")
    assert record is not None and record.worker == "host-a:11:aa"
    assert await backend.fail(Q, "j1", first.token, b'{"message": "x"}', 0, KEEP_ALL)
    second = await claim_one(backend, Q, worker_id="host-b:22:bb")
    assert await backend.complete(Q, [Completion("j1", second.token, b"1")], KEEP_ALL) == [True]
    record = await backend.get(Q, "j1")
    assert record is not None
    assert (record.state, record.worker) == (JobState.COMPLETED, "host-b:22:bb")


async def test_a_stall_error_names_the_worker_that_lost_the_lease(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await claim_one(backend, Q, lease_ms=20, worker_id="host-a:11:aa")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (dead := (await backend.reap_stalled(Q, max_stalls=0))[1]) == []:
        assert loop.time() < deadline, "the lease never expired"
        await asyncio.sleep(0.02)
    assert dead == ["j1"]
    record = await backend.get(Q, "j1")
    assert record is not None
    error = orjson.loads(record.errors[0])
    assert (error["type"], error["worker"]) == ("Stalled", "host-a:11:aa")


async def test_a_registration_keeps_its_jobs_and_version(backend: Backend) -> None:
    info = WorkerInfo(
        id="host:1:aa",
        host="host",
        pid=1,
        queues=[Q, "reports"],
        concurrency=4,
        started_at=0,
        last_seen=0,
        active=2,
        jobs=[(Q, "j1"), ("reports", "r:7")],
        version="9.9.9",
    )
    await backend.register_worker(info, 60_000)
    [got] = await backend.workers()
    assert (got.jobs, got.version) == ([(Q, "j1"), ("reports", "r:7")], "9.9.9")
    await backend.register_worker(
        WorkerInfo("host:1:aa", "host", 1, [Q], 4, 0, 0, version="9.9.9"), 60_000
    )
    [got] = await backend.workers()
    assert got.jobs == []
