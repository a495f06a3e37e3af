"""Job ids that look like another job's storage: ``V``, ``V:err``, ``V:log``, ``V:x:err``.

Ids may contain ``:``; each of these jobs must stay a job of its own through every
transition that touches its errors, logs or keys (on Redis they once shared keys).
"""

from __future__ import annotations

from corral.backends.base import Backend, Completion, JobState, Retention
from tests.contract.conftest import claim_one, enqueue, new_job

Q = "order:ids"
LEASE = 30_000
KEEP = Retention()
IDS = ["V", "V:err", "V:log", "V:x:err", "V:x:log", "order:42"]


def _error(job_id: str) -> bytes:
    return b'{"type":"ValueError","message":"' + job_id.encode() + b'"}'


async def _states(backend: Backend) -> dict[str, JobState | None]:
    out: dict[str, JobState | None] = {}
    for job_id in IDS:
        record = await backend.get(Q, job_id)
        out[job_id] = None if record is None else record.state
    return out


async def _log_and_fail_all(backend: Backend, retry_in_ms: int | None) -> None:
    """Claim every job (in line order), log a line and fail it."""
    jobs, _ = await backend.claim(Q, len(IDS), LEASE, "w1")
    assert sorted(j.id for j in jobs) == sorted(IDS)
    for job in jobs:
        assert await backend.update(Q, job.id, job.token, logs=[f"log of {job.id}"]) is True
        assert await backend.fail(Q, job.id, job.token, _error(job.id), retry_in_ms, KEEP)


async def test_ids_sharing_a_prefix_keep_their_own_errors_and_logs(backend: Backend) -> None:
    for job_id in IDS:  # one by one: each enqueue must answer "created"
        await enqueue(backend, Q, job_id)
    await _log_and_fail_all(backend, 0)  # retried at once
    await _log_and_fail_all(backend, None)  # dead-lettered
    for job_id in IDS:
        record = await backend.get(Q, job_id)
        assert record is not None, job_id
        assert record.state is JobState.FAILED, job_id
        assert record.errors == [_error(job_id)] * 2, job_id
        assert record.logs == [f"log of {job_id}".encode()] * 2, job_id
    assert (await backend.counts(Q))["failed"] == len(IDS)

    # Retry them all, then complete them: each ends completed with its own history.
    assert await backend.retry(Q, IDS) == [True] * len(IDS)
    jobs, _ = await backend.claim(Q, len(IDS), LEASE, "w1")
    done = [Completion(j.id, j.token, b"1") for j in jobs]
    assert await backend.complete(Q, done, KEEP) == [True] * len(IDS)
    assert set((await _states(backend)).values()) == {JobState.COMPLETED}
    for job_id in IDS:
        record = await backend.get(Q, job_id)
        assert record is not None and len(record.errors) == 2, job_id


async def test_removing_or_cleaning_one_id_leaves_the_others(backend: Backend) -> None:
    await enqueue(backend, Q, *IDS)
    await _log_and_fail_all(backend, None)

    assert await backend.remove(Q, "V") is True
    states = await _states(backend)
    assert states.pop("V") is None
    assert set(states.values()) == {JobState.FAILED}
    for job_id in states:
        record = await backend.get(Q, job_id)
        assert record is not None and record.errors == [_error(job_id)], job_id

    # Retry one, complete it, then clean the failed set: the completed one stays.
    assert await backend.retry(Q, ["V:err"]) == [True]
    job = await claim_one(backend, Q)
    assert job.id == "V:err"
    assert await backend.complete(Q, [Completion(job.id, job.token, b"1")], KEEP) == [True]
    assert await backend.clean(Q, JobState.FAILED, 0, 100) == len(IDS) - 2
    states = await _states(backend)
    assert states == {job_id: None for job_id in IDS} | {"V:err": JobState.COMPLETED}
    record = await backend.get(Q, "V:err")
    assert record is not None and record.logs == [b"log of V:err"]


async def test_retention_of_one_id_leaves_the_others(backend: Backend) -> None:
    # "V" finishes last and is kept; retention deletes the older ones only.
    await enqueue(backend, Q, "V:err", "V:log", "V")
    for job_id in ("V:err", "V:log", "V"):
        job = await claim_one(backend, Q)
        assert job.id == job_id
        assert await backend.update(Q, job.id, job.token, logs=["x"]) is True
        assert await backend.fail(Q, job.id, job.token, _error(job.id), None, Retention(count=1))
    record = await backend.get(Q, "V")
    assert record is not None and record.state is JobState.FAILED
    assert record.errors == [_error("V")] and record.logs == [b"x"]
    assert await backend.get(Q, "V:err") is None
    assert await backend.get(Q, "V:log") is None
    assert await backend.enqueue(Q, [new_job("V:err"), new_job("V:log")]) == [None, None]
    for job_id in ("V:err", "V:log"):
        record = await backend.get(Q, job_id)
        assert record is not None and record.state is JobState.WAITING, job_id
        assert record.errors == [] and record.logs == [], job_id
