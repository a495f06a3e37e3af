"""The notification outbox (issue 17), the same on every backend: an entry is written
in the step that ends a job with notifications, whatever path ends it, holding the
outcome as recorded; taken entries are held, then due again unless acknowledged."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson

from corral.backends.base import KEEP_ALL, Backend, Completion, Retention
from tests.contract.conftest import claim_one, new_job

Q = "mail"
LEASE = 30_000
ERROR = b'{"type":"ValueError","message":"bad row 7","traceback":"tb"}'


async def add(backend: Backend, job_id: str, notify: str, **fields: object) -> None:
    job = dataclasses.replace(new_job(job_id, **fields), notify=notify)  # type: ignore[arg-type]
    assert await backend.enqueue(Q, [job]) == [None]


async def take_all(backend: Backend, hold_ms: int = 60_000):
    return await backend.take_outbox(Q, 100, hold_ms)


async def test_completion_writes_one_entry_with_the_recorded_outcome(backend: Backend) -> None:
    await add(backend, "j1", "completed,failed", name="reports.send", options=b'{"attempts":2}')
    before = await backend.time_ms()
    claimed = await claim_one(backend, Q)
    assert await backend.complete(Q, [Completion("j1", claimed.token, b'{"rows":5962}')], KEEP_ALL)
    [entry] = await take_all(backend)
    assert (entry.queue, entry.job_id, entry.event, entry.task, entry.attempt) == (
        Q,
        "j1",
        "completed",
        "reports.send",
        1,
    )
    assert orjson.loads(entry.result or b"") == {"rows": 5962}
    assert entry.error is None
    assert orjson.loads(entry.options) == {"attempts": 2}
    assert entry.created_at is not None and entry.created_at <= before + 5
    assert entry.started_at is not None and entry.finished_at is not None
    assert entry.created_at <= entry.started_at <= entry.finished_at


async def test_a_job_without_notifications_or_for_other_outcomes_writes_none(
    backend: Backend,
) -> None:
    await add(backend, "plain", "")
    await add(backend, "only-failed", "failed")
    for _ in range(2):
        claimed = await claim_one(backend, Q)
        await backend.complete(Q, [Completion(claimed.id, claimed.token, b"1")], KEEP_ALL)
    assert await take_all(backend) == []
    assert await backend.outbox_size(Q) == 0


async def test_final_failure_carries_the_last_error_but_a_retry_writes_nothing(
    backend: Backend,
) -> None:
    await add(backend, "j1", "failed")
    claimed = await claim_one(backend, Q)
    assert await backend.fail(
        Q, "j1", claimed.token, b'{"type":"E","message":"first"}', 0, KEEP_ALL
    )
    assert await take_all(backend) == []
    claimed = await claim_one(backend, Q)
    assert await backend.fail(Q, "j1", claimed.token, ERROR, None, KEEP_ALL)
    [entry] = await take_all(backend)
    assert (entry.event, entry.attempt) == ("failed", 2)
    assert orjson.loads(entry.error or b"")["message"] == "bad row 7"
    assert entry.result is None


async def test_every_path_to_cancelled_writes_an_entry(backend: Backend) -> None:
    await add(backend, "waiting", "cancelled")
    await add(backend, "running", "cancelled")
    await backend.cancel(Q, "waiting")
    claimed = await claim_one(backend, Q)
    await backend.cancel(Q, "running")  # asks the worker to stop
    assert [e.job_id for e in await take_all(backend)] == ["waiting"]
    await backend.abort(Q, "running", claimed.token, b'{"type":"JobCancelled","message":"asked"}')
    [entry] = await take_all(backend)
    assert (entry.job_id, entry.event) == ("running", "cancelled")
    assert orjson.loads(entry.error or b"")["type"] == "JobCancelled"


async def test_a_job_failed_by_the_reaper_writes_an_entry(backend: Backend) -> None:
    await add(backend, "j1", "failed")
    await claim_one(backend, Q, lease_ms=1)
    await asyncio.sleep(0.01)
    _, dead = await backend.reap_stalled(Q, max_stalls=0)
    assert dead == ["j1"]
    [entry] = await take_all(backend)
    assert entry.event == "failed"
    assert orjson.loads(entry.error or b"")["type"] == "Stalled"


async def test_the_entry_outlives_the_job_removed_by_retention(backend: Backend) -> None:
    await add(backend, "j1", "completed")
    claimed = await claim_one(backend, Q)
    await backend.complete(Q, [Completion("j1", claimed.token, b'"ok"')], Retention(count=0))
    assert await backend.get(Q, "j1") is None
    [entry] = await take_all(backend)
    assert (entry.job_id, entry.result) == ("j1", b'"ok"')


async def test_taken_entries_are_held_then_due_again_until_acknowledged(backend: Backend) -> None:
    for i in range(3):
        await add(backend, f"j{i}", "completed")
        claimed = await claim_one(backend, Q)
        await backend.complete(Q, [Completion(claimed.id, claimed.token, b"1")], KEEP_ALL)
    first = await backend.take_outbox(Q, 2, 60_000)
    assert [e.job_id for e in first] == ["j0", "j1"]
    # Held: a second relay gets only the one left.
    assert [e.job_id for e in await backend.take_outbox(Q, 10, 1)] == ["j2"]
    await backend.ack_outbox(Q, [first[0].ref])
    assert await backend.outbox_size(Q) == 2
    # j2 was held for 1 ms only: due again; j1 still held.
    async with asyncio.timeout(2):
        while not (again := await backend.take_outbox(Q, 10, 60_000)):
            await asyncio.sleep(0.005)
    assert [e.job_id for e in again] == ["j2"]
    await backend.ack_outbox(Q, [e.ref for e in again] + [first[1].ref, first[1].ref])
    assert await backend.outbox_size(Q) == 0


async def test_a_retried_failed_job_notifies_again_when_it_fails_again(backend: Backend) -> None:
    await add(backend, "j1", "failed")
    claimed = await claim_one(backend, Q)
    await backend.fail(Q, "j1", claimed.token, ERROR, None, KEEP_ALL)
    assert await backend.retry(Q, ["j1"]) == [True]
    claimed = await claim_one(backend, Q)
    await backend.fail(Q, "j1", claimed.token, ERROR, None, KEEP_ALL)
    entries = await take_all(backend)
    assert [(e.job_id, e.event) for e in entries] == [("j1", "failed")] * 2
    assert entries[0].ref != entries[1].ref


async def test_counters_count_per_window_and_reset(backend: Backend) -> None:
    before = await backend.time_ms()
    counts = [await backend.bump_counter("fail:reports", 60_000) for _ in range(3)]
    after = await backend.time_ms()
    assert [n for n, _ in counts] == [1, 2, 3]
    ends = {end for _, end in counts}
    # The first bump opened the window: it ends a window's length after it.
    assert len(ends) == 1 and before + 60_000 <= ends.pop() <= after + 60_000
    assert (await backend.bump_counter("fail:other", 60_000))[0] == 1
    assert await backend.read_counter("fail:reports", counts[0][1]) == 3
    assert await backend.read_counter("fail:reports", counts[0][1] + 60_000) == 0
    # A tiny window: the next bump after it ends starts again from one.
    n, end = await backend.bump_counter("short", 20)
    async with asyncio.timeout(2):
        while await backend.time_ms() < end:
            await asyncio.sleep(0.005)
    assert (await backend.bump_counter("short", 20))[0] == 1 <= n
    # The ended window is still readable (a digest reads it after its end, maybe late:
    # for at least COUNTER_KEPT_MS), and a bump forgets only windows older than that.
    await asyncio.sleep(0.05)
    assert (await backend.bump_counter("short", 20))[0] == 1
    assert await backend.read_counter("short", end) == n


async def test_endpoint_states_are_stored_and_forgotten(backend: Backend) -> None:
    assert await backend.endpoints() == {}
    await backend.set_endpoint("webhook:ab", b'{"disabled":true}')
    await backend.set_endpoint("webhook:cd", b"{}")
    await backend.set_endpoint("webhook:ab", b'{"disabled":false}')
    assert await backend.endpoints() == {"webhook:ab": b'{"disabled":false}', "webhook:cd": b"{}"}
    await backend.set_endpoint("webhook:cd", None)
    assert await backend.endpoints() == {"webhook:ab": b'{"disabled":false}'}
