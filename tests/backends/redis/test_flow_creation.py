"""Creating a flow over several queues on Redis when the producer dies half-way.

Standalone Redis and Sentinel: the record and every queue's jobs are one script, so a
producer stopped at any point stored all of the flow or nothing. Redis Cluster: a
creation intent (in the ``{flows}`` slot) holds every step; a producer stopped after
writing it is rolled forward by whoever passes handoffs (the workers), each step at
most once. Either way no job is left ``blocked`` for ever and none runs twice.
(Cluster: ``CORRAL_TEST_TOPOLOGIES=redis-cluster``.)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from corral.backends.base import KEEP_ALL, Completion, FlowEdge, FlowJob, JobState
from corral.backends.redis import RedisBackend
from corral.backends.redis import flows as redis_flows
from corral.faults import CRASH_EXIT_CODE
from tests.contract.conftest import new_job

pytestmark = pytest.mark.backends("redis")

Q1, Q2 = "fc-one", "fc-two"


class Died(BaseException):
    """The producer stops here (as if killed): nothing after this point runs."""


@pytest.fixture
async def backends(store_url: str) -> AsyncIterator[tuple[RedisBackend, RedisBackend]]:
    """A producer's backend and a worker's (two processes' connections)."""
    producer, worker = RedisBackend(store_url), RedisBackend(store_url)
    await producer.connect()
    await worker.connect()
    try:
        yield producer, worker
    finally:
        await producer.close()
        await worker.close()


def flow() -> list[FlowJob]:
    """a (Q1) -> b (Q2) -> c (Q1): a blocked step in each queue, then the root."""
    return [
        FlowJob(Q1, new_job("f.a"), (), "a"),
        FlowJob(Q2, new_job("f.b"), (FlowEdge("a", Q1, "f.a"),), "b"),
        FlowJob(Q1, new_job("f.c"), (FlowEdge("b", Q2, "f.b"),), "c"),
    ]


def die_after_steps(backend: RedisBackend, steps: int) -> None:
    """The producer stops before running its ``steps + 1``-th flow_add script."""
    scripts = backend._scripts_or_fail()
    real = scripts.run
    ran = 0

    async def run(name: str, keys: list[str], args: list[Any]) -> Any:
        nonlocal ran
        if name == "flow_add":
            if ran >= steps:
                raise Died
            ran += 1
        return await real(name, keys, args)

    scripts.run = run  # type: ignore[method-assign]


async def work(backend: RedisBackend, rounds: int = 20) -> Counter[str]:
    """A worker's loop: pass handoffs (which rolls creations forward), run what is
    waiting; until nothing is left to run. Returns how often each job ran."""
    ran: Counter[str] = Counter()
    for _ in range(rounds):
        busy = False
        for queue in (Q1, Q2):
            await backend.pass_handoffs(queue)
            jobs, _ = await backend.claim(queue, 10, 30_000, "w1")
            for job in jobs:
                ran[job.id] += 1
                busy = True
                done = [Completion(job.id, job.token, b'"ok"')]
                assert await backend.complete(queue, done, KEEP_ALL)
        counts = [await backend.counts(q) for q in (Q1, Q2)]
        if not busy and not any(c["blocked"] or c["waiting"] for c in counts):
            break
    return ran


@pytest.mark.parametrize("steps", [0, 1, 2])
async def test_a_producer_dying_mid_creation_never_leaves_jobs_blocked(
    backends: tuple[RedisBackend, RedisBackend], steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer, worker = backends
    monkeypatch.setattr(redis_flows, "INTENT_AGE_MS", 0, raising=False)
    die_after_steps(producer, steps)
    # One server runs one script: a producer stopped after it has finished.
    with contextlib.suppress(Died):
        await producer.add_flow("f", flow())
    ran = await work(worker)
    for queue in (Q1, Q2):
        assert (await worker.counts(queue))["blocked"] == 0, f"jobs left blocked in {queue}"
    if await worker.get_flow("f") is None:  # one server: nothing was stored at all
        assert ran == {}
        assert [await worker.get(Q1, "f.a"), await worker.get(Q2, "f.b")] == [None, None]
        return
    assert ran == {"f.a": 1, "f.b": 1, "f.c": 1}
    for queue, job_id in ((Q1, "f.a"), (Q2, "f.b"), (Q1, "f.c")):
        record = await worker.get(queue, job_id)
        assert record is not None and record.state is JobState.COMPLETED


async def test_starting_the_same_flow_again_finishes_a_creation_cut_short(
    backends: tuple[RedisBackend, RedisBackend],
) -> None:
    producer, worker = backends
    die_after_steps(producer, 1)
    with contextlib.suppress(Died):
        await producer.add_flow("f", flow())
    assert not await worker.add_flow("f", flow())  # stored already (in part)
    assert await work(worker) == {"f.a": 1, "f.b": 1, "f.c": 1}


async def test_a_step_applied_before_the_producer_died_is_not_applied_again(
    backends: tuple[RedisBackend, RedisBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step ran, the intent was not deleted; meanwhile the root ran and was
    deleted (retention): rolling the intent forward must not add it again."""
    producer, worker = backends
    if not producer._cluster_url:
        pytest.skip("one script on one server: there is no intent to roll forward")
    monkeypatch.setattr(redis_flows, "INTENT_AGE_MS", 0, raising=False)
    client: Any = producer._client_or_fail()
    real_eval = client.eval

    async def eval_(script: str, count: int, *keys_and_args: Any) -> Any:
        if "DEL" in script:  # the intent is about to be deleted: stop before
            raise Died
        return await real_eval(script, count, *keys_and_args)

    client.eval = eval_
    with pytest.raises(Died):
        await producer.add_flow("f", flow())
    jobs, _ = await worker.claim(Q1, 10, 30_000, "w1")
    assert [j.id for j in jobs] == ["f.a"]
    assert await worker.complete(Q1, [Completion("f.a", jobs[0].token, b"1")], KEEP_ALL)
    assert await worker.remove(Q1, "f.a")
    assert await worker.finish_flows(older_than_ms=0) == 1
    assert await worker.get(Q1, "f.a") is None
    assert await worker.finish_flows(older_than_ms=0) == 0  # the intent is gone
    assert await work(worker) == {"f.b": 1, "f.c": 1}


PRODUCER = """
import asyncio, sys
from corral.backends.redis import RedisBackend
from tests.backends.redis.test_flow_creation import flow

async def main():
    backend = RedisBackend(sys.argv[1])
    await backend.connect()
    await backend.add_flow("f", flow())

asyncio.run(main())
"""


@pytest.mark.parametrize("point", ["flow_intent_written", "flow_step_applied"])
async def test_a_producer_killed_mid_creation_leaves_a_flow_the_workers_finish(
    store_url: str,
    backends: tuple[RedisBackend, RedisBackend],
    point: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real producer process, killed (``os._exit``) right after writing the
    creation intent or after its first step (Cluster); on one server the one script
    runs whole and the process ends normally."""
    _, worker = backends
    monkeypatch.setattr(redis_flows, "INTENT_AGE_MS", 0, raising=False)
    root = Path(__file__).resolve().parents[3]
    env = {
        **os.environ,
        "CORRAL_FAULTS": f"{point}=1",
        "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PRODUCER, store_url], env=env, timeout=60, capture_output=True
    )
    expected = CRASH_EXIT_CODE if worker._cluster_url else 0
    assert done.returncode == expected, done.stderr.decode()[-2000:]
    assert await work(worker) == {"f.a": 1, "f.b": 1, "f.c": 1}
    for queue in (Q1, Q2):
        assert (await worker.counts(queue))["blocked"] == 0
