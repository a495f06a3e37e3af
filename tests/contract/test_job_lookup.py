"""Finding which queue holds a job id (``find_job_queue``), the search behind a job
lookup without a queue."""

from __future__ import annotations

from corral.backends.base import Backend
from tests.contract.conftest import enqueue


async def test_finds_the_queue_holding_the_id(backend: Backend) -> None:
    for name in ("alpha", "beta", "gamma"):
        await enqueue(backend, name, f"{name}-job")
    assert await backend.find_job_queue("beta-job") == "beta"
    assert await backend.find_job_queue("gamma-job") == "gamma"


async def test_an_id_in_no_queue_is_none(backend: Backend) -> None:
    assert await backend.find_job_queue("nobody") is None
    await enqueue(backend, "alpha", "a1")
    assert await backend.find_job_queue("nobody") is None


async def test_an_id_in_two_queues_is_found_in_the_first_by_name(backend: Backend) -> None:
    # Ids are unique per queue only; the first of the sorted queue names wins, as when
    # the queues were searched one by one in the order of ``queues()``.
    await enqueue(backend, "zeta", "shared")
    await enqueue(backend, "beta", "shared")
    await enqueue(backend, "mu", "shared")
    assert await backend.find_job_queue("shared") == "beta"
