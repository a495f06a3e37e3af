"""A result reaches ``job.result()`` unchanged, or the job fails saying why (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from corral import Corral, JobFailed
from tests.worker.conftest import Workers


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ((1, 2), "is a tuple, which JSON turns into a list"),
        ({"at": datetime(2026, 1, 1, tzinfo=UTC)}, "at ['at'] is a datetime"),
        ([UUID(int=7)], "at [0] is a UUID"),
    ],
)
async def test_a_result_json_would_change_fails_the_job_without_retry(
    app: Corral, workers: Workers, value: object, needle: str
) -> None:
    runs = 0

    @app.task(name="changed.result", attempts=3, backoff=0)
    async def changed() -> object:
        nonlocal runs
        runs += 1
        return value

    workers.start()
    job = await changed.enqueue()
    with pytest.raises(JobFailed) as info:
        await job.result(timeout=5)
    assert info.value.error["type"] == "corral.errors.SerializationError"
    assert f"the result of task 'changed.result' {needle}" in info.value.error["message"]
    assert runs == 1


async def test_an_oversize_result_fails_the_job_without_retry(redis_url: str) -> None:
    app = Corral(redis_url, max_result_bytes=1000)
    runs = 0

    @app.task(name="big.result", attempts=3, backoff=0)
    async def big(n: int) -> str:
        nonlocal runs
        runs += 1
        return "x" * n

    workers = Workers(app)
    try:
        workers.start()
        assert await (await big.enqueue(998)).result(timeout=5) == "x" * 998  # 1,000 bytes
        job = await big.enqueue(999)
        with pytest.raises(JobFailed) as info:
            await job.result(timeout=5)
        assert info.value.error["type"] == "corral.errors.PayloadTooLarge"
        assert (
            "encodes to 1,001 bytes, over the limit of 1,000 bytes" in info.value.error["message"]
        )
        assert runs == 2
    finally:
        await workers.stop_all()
        await app.close()


def test_max_result_bytes_must_be_a_positive_integer() -> None:
    from corral.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_result_bytes must be an integer >= 1"):
        Corral("sqlite:///:memory:", max_result_bytes=0)
