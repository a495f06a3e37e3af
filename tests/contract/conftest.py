"""Fixtures for the backend conformance suite.

Every test in this package is written against :class:`corral.backends.base.Backend`
only, so the same tests run unchanged on every backend. To add a backend, write an
async factory below and add one line to ``FACTORIES``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from corral.backends.base import Backend, ClaimedJob, NewJob

# (pytest request, per-test tmp_path) -> a connected backend on an empty store.
# Factories pull the fixtures they need through ``request.getfixturevalue`` so that,
# say, a SQLite run never starts redis-server.
BackendFactory = Callable[[pytest.FixtureRequest, Path], Awaitable[Backend]]


async def _redis_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    from corral.backends.redis import RedisBackend

    redis_url: str = request.getfixturevalue("redis_url")  # FLUSHALLed for this test
    backend = RedisBackend(redis_url)
    await backend.connect()
    return backend


async def _redis_eval_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Redis with the scripts run by EVALSHA, as on Redis 6.2 (no functions)."""
    from corral.backends.redis import RedisBackend

    class EvalBackend(RedisBackend):
        use_functions = False

    backend = EvalBackend(request.getfixturevalue("redis_url"))
    await backend.connect()
    return backend


async def _redis_cluster_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Redis Cluster: 3 primaries with a replica each; the test's queues spread over them."""
    from corral.backends.redis import RedisBackend

    backend = RedisBackend(request.getfixturevalue("redis_cluster_url"))
    await backend.connect()
    return backend


async def _redis_sentinel_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Redis through Sentinel (a primary and a replica): the same scripts and semantics."""
    from corral.backends.redis import RedisBackend

    backend = RedisBackend(request.getfixturevalue("sentinel_url"))
    await backend.connect()
    return backend


async def _sqlite_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    from corral.backends.sqlite import SQLiteBackend

    backend = SQLiteBackend(f"sqlite:///{tmp_path / 'corral.db'}")
    await backend.connect()
    return backend


FACTORIES: dict[str, BackendFactory] = {
    "redis": _redis_backend,
    "redis-eval": _redis_eval_backend,
    "redis-cluster": _redis_cluster_backend,
    "redis-sentinel": _redis_sentinel_backend,
    "sqlite": _sqlite_backend,
}


#: Deployments whose runs are marked slow: further passes of the whole suite over Redis,
#: run in CI (scripts/test) rather than the inner loop. The EVALSHA pass repeats the
#: Redis one with the scripts loaded the Redis 6.2 way; tests/backends/redis/
#: test_scripts.py keeps that loading path in the inner loop.
SLOW = {"redis-eval", "redis-cluster", "redis-sentinel"}


@pytest.fixture(
    params=[pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in FACTORIES],
    ids=list(FACTORIES),
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A connected backend of each kind, on an empty store; closed afterwards."""
    b = await FACTORIES[request.param](request, tmp_path)
    try:
        yield b
    finally:
        await b.close()


# -- helpers (import them: ``from tests.contract.conftest import new_job``) -----------


def new_job(
    job_id: str,
    *,
    name: str = "t.x",
    data: bytes = b"[[],{}]",
    priority: int = 0,
    delay_ms: int = 0,
    run_at_ms: int = 0,
    options: bytes = b"",
    group: str = "",
    dedupe_key: str = "",
    dedupe_ms: int = 0,
    debounce_ms: int = 0,
) -> NewJob:
    """A NewJob with harmless defaults."""
    return NewJob(
        id=job_id,
        name=name,
        data=data,
        priority=priority,
        delay_ms=delay_ms,
        run_at_ms=run_at_ms,
        options=options,
        group=group,
        dedupe_key=dedupe_key,
        dedupe_ms=dedupe_ms,
        debounce_ms=debounce_ms,
    )


async def enqueue(backend: Backend, queue: str, *job_ids: str, **fields: object) -> None:
    """Enqueue fresh jobs (same extra fields for each) and check they were created."""
    created = await backend.enqueue(queue, [new_job(i, **fields) for i in job_ids])  # type: ignore[arg-type]
    assert created == [None] * len(job_ids)


async def claim_one(
    backend: Backend, queue: str, *, lease_ms: int = 30_000, worker_id: str = "w1"
) -> ClaimedJob:
    """Claim exactly one job, failing the test when there is none."""
    jobs, _ = await backend.claim(queue, 1, lease_ms, worker_id)
    assert len(jobs) == 1, f"expected one claimable job in {queue!r}, got {jobs!r}"
    return jobs[0]
