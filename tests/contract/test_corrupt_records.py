"""A job whose stored JSON (arguments, progress, result, an error) cannot be decoded
is still read, listed, retried and removed; decoding flags the field with its raw text
and leaves the other fields and the other jobs alone."""

from __future__ import annotations

import pytest

from corral.backends.base import Backend, JobState, Retention, WorkerInfo
from corral.stored import read_fields
from tests.contract.conftest import claim_one, enqueue
from tests.corrupt import FIELDS, write_raw, write_raw_worker

Q = "corrupt"
GARBAGE = b'\xff{"broken'
GARBAGE_TEXT = '\ufffd{"broken'  # as shown: undecodable bytes replaced


async def _three_failed_jobs(backend: Backend) -> None:
    await enqueue(backend, Q, "a", "b", "c", data=b'[["x"],{"k":1}]')
    for _ in range(3):
        job = await claim_one(backend, Q)
        assert await backend.update(Q, job.id, job.token, progress=b'{"page":2}')
        error = b'{"type":"E","message":"m","attempt":1}'
        assert await backend.fail(Q, job.id, job.token, error, None, Retention())


@pytest.mark.parametrize("field", FIELDS)
async def test_a_corrupt_field_is_flagged_and_every_job_still_lists(
    backend: Backend, field: str
) -> None:
    await _three_failed_jobs(backend)
    await write_raw(backend, Q, "b", field, GARBAGE)

    records = await backend.list_jobs(Q, JobState.FAILED, 0, 10)
    assert sorted(r.id for r in records) == ["a", "b", "c"]
    fields = {r.id: read_fields(r) for r in records}
    assert fields["b"].corrupt == {field: GARBAGE_TEXT}
    for intact in (fields["a"], fields["c"]):
        assert intact.corrupt == {}
        assert (intact.args, intact.kwargs, intact.progress) == (["x"], {"k": 1}, {"page": 2})
        assert intact.errors == [{"type": "E", "message": "m", "attempt": 1}]
    broken = fields["b"]
    if field != "args":
        assert (broken.args, broken.kwargs) == (["x"], {"k": 1})
    if field == "errors":
        assert broken.errors == [
            {
                "type": "Unreadable",
                "message": "the stored error is not a JSON object",
                "raw": GARBAGE_TEXT,
            }
        ]

    record = await backend.get(Q, "b")
    assert record is not None and read_fields(record).corrupt == {field: GARBAGE_TEXT}
    assert await backend.retry(Q, ["b"]) == [True]
    assert await backend.remove(Q, "b") is True
    assert await backend.get(Q, "b") is None


@pytest.mark.parametrize("raw", [b"[1, 2, 3]", b'{"args": []}', b"[[], []]", b'"text"'], ids=str)
async def test_arguments_of_the_wrong_shape_are_flagged(backend: Backend, raw: bytes) -> None:
    await enqueue(backend, Q, "a")
    await write_raw(backend, Q, "a", "args", raw)
    record = await backend.get(Q, "a")
    assert record is not None
    decoded = read_fields(record)
    assert decoded.corrupt == {"args": raw.decode()}
    assert (decoded.args, decoded.kwargs) == ([], {})


async def test_an_unreadable_worker_record_still_lists_flagged(backend: Backend) -> None:
    now = await backend.time_ms()
    for worker_id in ("w1", "w2"):
        info = WorkerInfo(worker_id, "host-a", 1, ["q"], 4, now, now)
        await backend.register_worker(info, 60_000)
    await write_raw_worker(backend, "w1", GARBAGE)
    workers = await backend.workers()
    assert len(workers) == 2
    broken, intact = sorted(workers, key=lambda w: w.id)
    assert (broken.id, broken.host, broken.extra) == (
        "?",
        "(unreadable record)",
        {"corrupt": GARBAGE_TEXT},
    )
    assert (intact.id, intact.host, intact.queues) == ("w2", "host-a", ["q"])
