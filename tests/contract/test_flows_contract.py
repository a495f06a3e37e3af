"""Flows (issue 20) on every backend: jobs with dependencies wait ``blocked``; each
dependency's outcome reaches its dependents in the step that records it (across
queues, through the handoff that ``pass_handoffs`` applies), and a dependency that
does not complete fails, skips or releases its dependents by the edge's policy."""

from __future__ import annotations

import orjson
import pytest

from corral.backends.base import (
    KEEP_ALL,
    Backend,
    Completion,
    FlowEdge,
    FlowJob,
    JobBrief,
    JobState,
    OnFailure,
    Retention,
)
from tests.contract.conftest import claim_one, new_job

Q = "flows"
OTHER = "flows2"
NONE = Retention(count=0)  # keep no finished job
ERROR = b'{"type":"ValueError","message":"bad row 7","traceback":"tb"}'


def fj(job_id: str, *deps: FlowEdge, queue: str = Q, data: bytes = b"[[],{}]") -> FlowJob:
    return FlowJob(queue, new_job(job_id, data=data), tuple(deps))


def on(name: str, job_id: str, queue: str = Q, **kw: object) -> FlowEdge:
    return FlowEdge(name, queue, job_id, **kw)  # type: ignore[arg-type]


async def state(backend: Backend, job_id: str, queue: str = Q) -> JobState:
    record = await backend.get(queue, job_id)
    assert record is not None, job_id
    return record.state


async def run(backend: Backend, queue: str = Q, result: bytes = b"null") -> str:
    """Claim one job and complete it; returns its id."""
    claimed = await claim_one(backend, queue)
    assert await backend.complete(queue, [Completion(claimed.id, claimed.token, result)], KEEP_ALL)
    return claimed.id


async def fail_for_good(backend: Backend, queue: str = Q) -> str:
    claimed = await claim_one(backend, queue)
    assert await backend.fail(queue, claimed.id, claimed.token, ERROR, None, KEEP_ALL)
    return claimed.id


async def pass_all(backend: Backend, *queues: str) -> None:
    for queue in queues:
        await backend.pass_handoffs(queue)


async def test_a_diamond_runs_its_shared_dependency_once_and_the_join_last(
    backend: Backend,
) -> None:
    flow = [
        fj("a"),
        fj("b", on("a", "a")),
        fj("c", on("a", "a")),
        fj("d", on("b", "b"), on("c", "c")),
    ]
    assert await backend.add_flow("f1", flow)
    assert [await state(backend, i) for i in "abcd"] == [JobState.WAITING] + [JobState.BLOCKED] * 3
    assert (await backend.counts(Q))["blocked"] == 3
    assert [r.id for r in await backend.list_jobs(Q, JobState.BLOCKED, 0, 10)] == ["b", "c", "d"]
    assert await run(backend, result=b'{"n":1}') == "a"
    assert await state(backend, "d") is JobState.BLOCKED
    assert {await run(backend), await run(backend)} == {"b", "c"}
    assert await state(backend, "d") is JobState.WAITING
    assert await run(backend) == "d"
    jobs, _ = await backend.claim(Q, 10, 30_000, "w1")
    assert jobs == []
    outcomes = await backend.dependency_outcomes(Q, "b")
    assert list(outcomes) == ["a"]
    assert outcomes["a"].state == "completed"
    assert orjson.loads(outcomes["a"].result or b"") == {"n": 1}


async def test_a_flow_is_stored_with_its_jobs_and_edges_and_added_once(backend: Backend) -> None:
    flow = [fj("a"), fj("b", on("first", "a", on_failure=OnFailure.SKIP))]
    assert await backend.add_flow("f1", flow)
    assert not await backend.add_flow("f1", flow)
    record = await backend.get_flow("f1")
    assert record is not None
    assert record.jobs == [(Q, "a", "t.x"), (Q, "b", "t.x")]
    assert record.edges == [(Q, "b", FlowEdge("first", Q, "a", OnFailure.SKIP, False))]
    assert await backend.get_flow("nope") is None
    assert (await backend.counts(Q))["waiting"] == 1
    for job_id in "ab":
        stored = await backend.get(Q, job_id)
        assert stored is not None and stored.flow == "f1"


async def test_a_passed_result_replaces_the_first_argument(backend: Backend) -> None:
    flow = [
        fj("a"),
        fj("b", on("a", "a", pass_result=True), data=b'[[null,2],{"k":1}]'),
        fj("c", on("b", "b", pass_result=True), data=b"[[null],{}]"),
    ]
    await backend.add_flow("f1", flow)
    await run(backend, result=b'{"rows":[1,"x/y"]}')
    claimed = await claim_one(backend, Q)
    assert orjson.loads(claimed.data) == [[{"rows": [1, "x/y"]}, 2], {"k": 1}]
    await backend.complete(Q, [Completion("b", claimed.token, b"7")], KEEP_ALL)
    assert orjson.loads((await claim_one(backend, Q)).data) == [[7], {}]


async def test_a_failed_dependency_fails_its_dependents_and_theirs_by_default(
    backend: Backend,
) -> None:
    await backend.add_flow("f1", [fj("a"), fj("b", on("a", "a")), fj("c", on("b", "b"))])
    await fail_for_good(backend)
    for job_id in "bc":
        record = await backend.get(Q, job_id)
        assert record is not None and record.state is JobState.FAILED
        error = orjson.loads(record.errors[-1])
        assert error["type"] == "DependencyFailed"
    b = await backend.get(Q, "b")
    assert b is not None
    assert "ValueError: bad row 7" in orjson.loads(b.errors[-1])["message"]
    assert orjson.loads(b.errors[-1])["cause"]["message"] == "bad row 7"
    assert (await backend.counts(Q))["blocked"] == 0


async def test_a_long_failed_chain_stores_the_original_error_once_per_job(
    backend: Backend,
) -> None:
    # Each dependent keeps the first failure as its cause, not its dependency's nested
    # error: 60 levels cost 60 small records, not a quadratic pile.
    jobs = [fj("j0")] + [fj(f"j{i}", on(f"s{i - 1}", f"j{i - 1}")) for i in range(1, 60)]
    await backend.add_flow("f1", jobs)
    assert await fail_for_good(backend) == "j0"
    last = await backend.get(Q, "j59")
    assert last is not None and last.state is JobState.FAILED
    error = orjson.loads(last.errors[-1])
    assert len(last.errors[-1]) < 600
    assert error["dependency"] == "s58" and error["origin"] == "s0"
    assert error["cause"]["message"] == "bad row 7"
    assert error["message"] == "dependency s58 failed (s0 failed first): ValueError: bad row 7"


async def test_skip_cancels_the_dependent_and_ignore_runs_it(backend: Backend) -> None:
    flow = [
        fj("a"),
        fj("skipped", on("a", "a", on_failure=OnFailure.SKIP)),
        fj("runs", on("a", "a", on_failure=OnFailure.IGNORE), data=b"[[null],{}]"),
        fj("after-skip", on("s", "skipped")),
    ]
    await backend.add_flow("f1", flow)
    await fail_for_good(backend)
    assert await state(backend, "skipped") is JobState.CANCELLED
    assert await state(backend, "after-skip") is JobState.FAILED
    assert await state(backend, "runs") is JobState.WAITING
    outcome = (await backend.dependency_outcomes(Q, "runs"))["a"]
    assert outcome.state == "failed" and outcome.result is None
    assert orjson.loads(outcome.error or b"")["message"] == "bad row 7"


async def test_cancelling_a_dependency_counts_as_its_failure(backend: Backend) -> None:
    flow = [fj("a"), fj("b", on("a", "a")), fj("c", on("a", "a", on_failure=OnFailure.IGNORE))]
    await backend.add_flow("f1", flow)
    assert await backend.cancel(Q, "a") is JobState.CANCELLED
    assert await state(backend, "b") is JobState.FAILED
    assert await state(backend, "c") is JobState.WAITING
    # A blocked job cancels at once, and its dependents hear of it.
    await backend.add_flow("f2", [fj("x"), fj("y", on("x", "x")), fj("z", on("y", "y"))])
    assert await backend.cancel(Q, "y") is JobState.CANCELLED
    assert await state(backend, "z") is JobState.FAILED
    assert await state(backend, "x") is JobState.WAITING


async def test_a_stalled_dependency_failing_for_good_fails_its_dependent(
    backend: Backend,
) -> None:
    await backend.add_flow("f1", [fj("a"), fj("b", on("a", "a"))])
    await backend.claim(Q, 1, 1, "w1")
    import asyncio

    await asyncio.sleep(0.01)  # the 1 ms lease has run out (no race: nothing renews it)
    _, failed = await backend.reap_stalled(Q, 0)
    assert failed == ["a"]
    assert await state(backend, "b") is JobState.FAILED


async def test_outcomes_cross_queues_through_an_idempotent_handoff(backend: Backend) -> None:
    flow = [
        fj("a"),
        fj("b", on("a", "a"), queue=OTHER, data=b"[[null],{}]"),
        fj("c", on("b", "b", queue=OTHER)),
    ]
    flow[1] = FlowJob(OTHER, new_job("b", data=b"[[null],{}]"), (on("a", "a", pass_result=True),))
    assert await backend.add_flow("f1", flow)
    await run(backend, result=b'"from a"')
    await pass_all(backend, Q, OTHER)
    await pass_all(backend, Q, OTHER)  # nothing twice
    claimed = await claim_one(backend, OTHER)
    assert orjson.loads(claimed.data) == [["from a"], {}]
    assert await backend.fail(OTHER, "b", claimed.token, ERROR, None, KEEP_ALL)
    await pass_all(backend, OTHER)
    assert await state(backend, "c") is JobState.FAILED
    assert await backend.pass_handoffs(Q) == 0


async def test_fan_in_of_a_thousand(backend: Backend) -> None:
    n = 1000
    flow = [fj(f"c{i}") for i in range(n)]
    flow.append(fj("join", *(on(f"c{i}", f"c{i}") for i in range(n))))
    await backend.add_flow("f1", flow)
    for start in range(0, n, 250):
        jobs, _ = await backend.claim(Q, 250, 30_000, "w1")
        assert len(jobs) == 250 and all(j.id != "join" for j in jobs)
        await backend.complete(
            Q, [Completion(j.id, j.token, str(start).encode()) for j in jobs], KEEP_ALL
        )
    assert await state(backend, "join") is JobState.WAITING
    assert len(await backend.dependency_outcomes(Q, "join")) == n


async def test_retry_puts_back_failed_jobs_and_their_dependents_only(backend: Backend) -> None:
    flow = [
        fj("ok"),
        fj("bad"),
        fj("join", on("ok", "ok", pass_result=True), on("bad", "bad"), data=b"[[null],{}]"),
        fj("after", on("join", "join", on_failure=OnFailure.SKIP)),
    ]
    await backend.add_flow("f1", flow)
    first = await claim_one(backend, Q)
    second = await claim_one(backend, Q)
    by_id = {first.id: first, second.id: second}
    await backend.complete(Q, [Completion("ok", by_id["ok"].token, b'"kept"')], KEEP_ALL)
    assert await backend.fail(Q, "bad", by_id["bad"].token, ERROR, None, KEEP_ALL)
    assert [await state(backend, i) for i in ("join", "after")] == [
        JobState.FAILED,
        JobState.CANCELLED,
    ]
    assert await backend.retry_flow("f1") == 3
    assert await state(backend, "ok") is JobState.COMPLETED
    assert await state(backend, "bad") is JobState.WAITING
    assert [await state(backend, i) for i in ("join", "after")] == [JobState.BLOCKED] * 2
    assert await run(backend) == "bad"
    claimed = await claim_one(backend, Q)
    assert claimed.id == "join" and claimed.attempt == 1
    assert orjson.loads(claimed.data) == [["kept"], {}]
    await backend.complete(Q, [Completion("join", claimed.token, b"1")], KEEP_ALL)
    assert await run(backend) == "after"
    outcomes = await backend.dependency_outcomes(Q, "after")
    assert outcomes["join"].state == "completed"


async def test_retry_waits_for_the_flow_to_end_and_needs_a_flow(backend: Backend) -> None:
    from corral.errors import InvalidTransition, JobNotFound

    await backend.add_flow("f1", [fj("a"), fj("b", on("a", "a"))])
    with pytest.raises(InvalidTransition, match="still running"):
        await backend.retry_flow("f1")
    with pytest.raises(JobNotFound):
        await backend.retry_flow("nope")
    await run(backend)
    await run(backend)
    assert await backend.retry_flow("f1") == 0


async def test_a_stale_handoff_from_before_a_retry_is_ignored(backend: Backend) -> None:
    flow = [fj("a"), fj("x"), fj("b", on("a", "a"), on("x", "x"), queue=OTHER)]
    await backend.add_flow("f1", flow)
    jobs, _ = await backend.claim(Q, 2, 30_000, "w1")
    tokens = {j.id: j.token for j in jobs}
    await backend.fail(Q, "x", tokens["x"], ERROR, None, KEEP_ALL)
    await backend.pass_handoffs(Q)
    assert await state(backend, "b", OTHER) is JobState.FAILED
    await backend.fail(Q, "a", tokens["a"], ERROR, None, KEEP_ALL)
    # a's failure is still on its way to b (not passed) when the flow is retried.
    assert await backend.retry_flow("f1") == 3
    await backend.pass_handoffs(Q)
    assert await state(backend, "b", OTHER) is JobState.BLOCKED
    await run(backend)
    await run(backend)
    await backend.pass_handoffs(Q)
    assert await state(backend, "b", OTHER) is JobState.WAITING


async def test_a_parked_job_waits_for_its_children_without_its_lease(backend: Backend) -> None:
    assert await backend.enqueue(Q, [new_job("parent")]) == [None]
    parent = await claim_one(backend, Q)
    children = [
        FlowJob(Q, new_job("parent.s0.0"), (), "page"),
        FlowJob(OTHER, new_job("parent.s0.1"), (), "page#2"),
    ]
    assert not await backend.park(Q, "parent", "stale", "parent.s0", children)
    assert await state(backend, "parent") is JobState.ACTIVE
    assert await backend.spawned(Q, "parent") == []
    assert await backend.park(Q, "parent", parent.token, "parent.s0", children)
    spawned = [(Q, "parent.s0.0", "page"), (OTHER, "parent.s0.1", "page#2")]
    assert await backend.spawned(Q, "parent") == spawned
    record = await backend.get(Q, "parent")
    assert record is not None and record.state is JobState.BLOCKED
    assert record.attempts == 0  # the parked run gave its attempt back
    jobs, _ = await backend.claim(Q, 10, 30_000, "w1")
    assert [j.id for j in jobs] == ["parent.s0.0"]
    await backend.complete(Q, [Completion(jobs[0].id, jobs[0].token, b"3")], KEEP_ALL)
    assert await state(backend, "parent") is JobState.BLOCKED
    await run(backend, OTHER, result=b"4")
    await pass_all(backend, OTHER)
    assert await state(backend, "parent") is JobState.WAITING
    again = await claim_one(backend, Q)
    assert again.id == "parent" and again.attempt == 1
    outcomes = await backend.dependency_outcomes(Q, "parent")
    assert {n: o.result for n, o in outcomes.items()} == {"page": b"3", "page#2": b"4"}
    # A second wait adds to the list, after the first; its 11th child after its 3rd.
    more = [FlowJob(Q, new_job(f"parent.s2.{n}"), (), f"more#{n}") for n in range(11)]
    assert await backend.park(Q, "parent", again.token, "parent.s2", more)
    assert await backend.spawned(Q, "parent") == [
        *spawned,
        *((Q, f"parent.s2.{n}", f"more#{n}") for n in range(11)),
    ]


async def test_parked_children_may_depend_on_one_another_across_queues(
    backend: Backend,
) -> None:
    """A chain of children (other queue, parent's queue, other queue): each starts
    blocked until the one before ends, gets its result, and the parent waits for all."""
    assert await backend.enqueue(Q, [new_job("parent")]) == [None]
    parent = await claim_one(backend, Q)
    children = [
        FlowJob(OTHER, new_job("parent.s0.0"), (), "a"),
        FlowJob(
            Q,
            new_job("parent.s0.1", data=b"[[null],{}]"),
            (on("a", "parent.s0.0", queue=OTHER, pass_result=True),),
            "b",
        ),
        FlowJob(OTHER, new_job("parent.s0.2"), (on("b", "parent.s0.1"),), "c"),
    ]
    assert await backend.park(Q, "parent", parent.token, "parent.s0", children)
    assert [name for _, _, name in await backend.spawned(Q, "parent")] == ["a", "b", "c"]
    assert await backend.spawned(Q, "parent.s0.1") == []  # a dependency, not its child
    # Who waits for each child: the parent (for all), and the next child of the chain.
    waiting = [
        (dq, di, e.name, e.job_id, e.on_failure, e.pass_result)
        for queue, ids in ((OTHER, ["parent.s0.0", "parent.s0.2", "nope"]), (Q, ["parent.s0.1"]))
        for dq, di, e in await backend.dependents(queue, ids)
    ]
    assert sorted(waiting) == [
        (Q, "parent", "a", "parent.s0.0", OnFailure.FAIL, False),
        (Q, "parent", "b", "parent.s0.1", OnFailure.FAIL, False),
        (Q, "parent", "c", "parent.s0.2", OnFailure.FAIL, False),
        (Q, "parent.s0.1", "a", "parent.s0.0", OnFailure.FAIL, True),
        (OTHER, "parent.s0.2", "b", "parent.s0.1", OnFailure.FAIL, False),
    ]
    assert await backend.dependents(Q, ["parent"]) == []
    assert await state(backend, "parent.s0.1") is JobState.BLOCKED
    assert await state(backend, "parent.s0.2", OTHER) is JobState.BLOCKED
    assert await run(backend, OTHER, result=b"1") == "parent.s0.0"
    await pass_all(backend, OTHER)
    assert await state(backend, "parent") is JobState.BLOCKED
    middle = await claim_one(backend, Q)
    assert middle.id == "parent.s0.1"
    assert orjson.loads(middle.data) == [[1], {}]
    await backend.complete(Q, [Completion(middle.id, middle.token, b"2")], KEEP_ALL)
    await pass_all(backend, Q)
    assert await state(backend, "parent") is JobState.BLOCKED
    assert await run(backend, OTHER, result=b"3") == "parent.s0.2"
    await pass_all(backend, OTHER)
    assert await state(backend, "parent") is JobState.WAITING
    outcomes = await backend.dependency_outcomes(Q, "parent")
    assert {n: o.result for n, o in outcomes.items()} == {"a": b"1", "b": b"2", "c": b"3"}
    # Kept once handed over: a finished child still names its parent.
    assert [di for _, di, _ in await backend.dependents(OTHER, ["parent.s0.2"])] == ["parent"]


async def test_a_failing_child_fails_its_parked_parent_by_default(backend: Backend) -> None:
    assert await backend.enqueue(Q, [new_job("parent")]) == [None]
    parent = await claim_one(backend, Q)
    child = FlowJob(Q, new_job("parent.s0.0"), (), "c")
    assert await backend.park(Q, "parent", parent.token, "parent.s0", [child])
    await fail_for_good(backend)
    assert await state(backend, "parent") is JobState.FAILED


async def test_removing_or_draining_an_unfinished_job_reaches_its_dependents(
    backend: Backend,
) -> None:
    flow = [
        fj("a"),
        fj("b", on("a", "a")),
        fj("c", on("b", "b", on_failure=OnFailure.IGNORE)),
        fj("x"),
        fj("y", on("x", "x")),
    ]
    await backend.add_flow("f1", flow)
    assert await backend.remove(Q, "b")
    assert await state(backend, "c") is JobState.WAITING
    assert (await backend.dependency_outcomes(Q, "c"))["b"].state == "cancelled"
    assert await backend.drain(Q, False) == 3  # a, x and c
    assert await state(backend, "y") is JobState.FAILED


async def test_flows_are_listed_newest_first_and_paged_without_gaps(backend: Backend) -> None:
    for n in range(5):
        assert await backend.add_flow(f"f{n}", [fj(f"a{n}"), fj(f"b{n}", on("a", f"a{n}"))])
    assert not await backend.add_flow("f2", [fj("a2")])  # listed once, at its first time
    listed = await backend.list_flows(10)
    assert sorted(r.id for r in listed) == [f"f{n}" for n in range(5)]
    assert [(r.created_at, r.id) for r in listed] == sorted(
        ((r.created_at, r.id) for r in listed), reverse=True
    )
    assert listed[0].jobs and listed[0].edges  # whole records
    seen: list[str] = []
    before = None
    while True:
        page = await backend.list_flows(2, before)
        seen += [r.id for r in page]
        if len(page) < 2:
            break
        before = (page[-1].created_at, page[-1].id)
    assert seen == [r.id for r in listed]
    assert await backend.list_flows(3, (listed[-1].created_at, listed[-1].id)) == []


def fan_in(*, join_policy: OnFailure = OnFailure.FAIL) -> list[FlowJob]:
    """A group of four in Q and one in OTHER, then a join waiting for all five."""
    group = [FlowJob(Q, new_job(i), (), i) for i in "abcd"] + [
        FlowJob(OTHER, new_job("e"), (), "e")
    ]
    edges = [on(j.name, j.job.id, j.queue, on_failure=join_policy) for j in group]
    return [*group, FlowJob(Q, new_job("join"), tuple(edges), "join")]


async def test_fail_fast_cancels_every_unfinished_job_of_the_flow(backend: Backend) -> None:
    assert await backend.add_flow("f1", fan_in(), fail_fast=True)
    record = await backend.get_flow("f1")
    assert record is not None and record.fail_fast
    running = await claim_one(backend, Q)
    assert running.id == "a"
    assert await fail_for_good(backend) == "b"
    await pass_all(backend, Q, OTHER)
    for job_id, queue in [("c", Q), ("d", Q), ("join", Q), ("e", OTHER)]:
        cancelled = await backend.get(queue, job_id)
        assert cancelled is not None and cancelled.state is JobState.CANCELLED, job_id
        error = orjson.loads(cancelled.errors[-1])
        assert error["type"] == "SiblingFailed" and error["job"] == "b", error
        assert "job b (b) of the flow failed: ValueError: bad row 7" in error["message"]
    # The running one is asked to stop, and gets the same reason.
    active = await backend.get(Q, "a")
    assert active is not None and active.state is JobState.ACTIVE and active.cancel_requested
    assert orjson.loads(active.errors[-1])["type"] == "SiblingFailed"
    _, cancel = await backend.renew(Q, [("a", running.token)], 30_000)
    assert cancel == ["a"]
    assert await backend.release(Q, [("a", running.token)]) == 1
    assert await state(backend, "a") is JobState.CANCELLED
    for queue in (Q, OTHER):
        assert (await backend.claim(queue, 10, 30_000, "w1"))[0] == []
        counts = await backend.counts(queue)
        assert counts["waiting"] == counts["blocked"] == counts["active"] == 0
    # A retry puts them back, and fail fast fires again on the next failure.
    assert await backend.retry_flow("f1") == 6
    assert await fail_for_good(backend) in "abcd"
    await pass_all(backend, Q, OTHER)
    assert await state(backend, "e", OTHER) is JobState.CANCELLED
    assert (await backend.counts(Q))["waiting"] == 0


async def test_without_fail_fast_the_siblings_of_a_failed_job_run(backend: Backend) -> None:
    assert await backend.add_flow("f1", fan_in())
    record = await backend.get_flow("f1")
    assert record is not None and not record.fail_fast
    assert await fail_for_good(backend) == "a"
    await pass_all(backend, Q, OTHER)
    assert await state(backend, "join") is JobState.FAILED
    assert {await run(backend) for _ in range(3)} == {"b", "c", "d"}
    assert await run(backend, OTHER) == "e"
    assert [await state(backend, i) for i in "bcd"] == [JobState.COMPLETED] * 3


async def test_fail_fast_spares_the_flow_when_every_edge_ignores_the_failure(
    backend: Backend,
) -> None:
    assert await backend.add_flow("f1", fan_in(join_policy=OnFailure.IGNORE), fail_fast=True)
    assert await fail_for_good(backend) == "a"
    await pass_all(backend, Q, OTHER)
    assert [await state(backend, i) for i in "bcd"] == [JobState.WAITING] * 3
    assert await state(backend, "e", OTHER) is JobState.WAITING
    # A failing sink (nothing waits for it) is not ignored: the rest is cancelled.
    await backend.add_flow("f2", [fj("y"), fj("x"), fj("z", on("x", "x"))], fail_fast=True)
    for _ in "bcd":
        await run(backend)
    assert await fail_for_good(backend) == "y"
    assert await state(backend, "x") is JobState.CANCELLED
    assert await state(backend, "z") is JobState.CANCELLED


async def test_get_many_reads_jobs_of_a_queue_in_order(backend: Backend) -> None:
    await backend.add_flow("f1", [fj("a"), fj("b", on("a", "a"))])
    got = await backend.get_many(Q, ["b", "nope", "a"])
    assert [r.id if r else None for r in got] == ["b", None, "a"]
    assert [r.state if r else None for r in got] == [JobState.BLOCKED, None, JobState.WAITING]
    assert await backend.get_many(Q, []) == []


async def test_job_briefs_are_the_records_state_name_and_attempts(backend: Backend) -> None:
    # A flow listing reads these instead of whole jobs: they must agree with the records
    # in every state a job of a flow can be in (waiting ones store no state on Redis).
    jobs = [fj("a"), fj("b", on("a", "a")), fj("c"), fj("d"), fj("e", on("a", "a"))]
    await backend.add_flow("f1", jobs)
    assert await run(backend) == "a"  # completed; b and e now waiting
    second = await claim_one(backend, Q)  # active
    await backend.cancel(Q, "d")
    ids = ["a", "b", "c", "d", "e", "nope", second.id]
    briefs = await backend.job_briefs(Q, ids)
    records = await backend.get_many(Q, ids)
    assert briefs == [None if r is None else JobBrief(r.state, r.name, r.attempts) for r in records]
    states = {b.state for b in briefs if b is not None}
    assert {JobState.COMPLETED, JobState.ACTIVE, JobState.WAITING, JobState.CANCELLED} <= states
    assert briefs[5] is None
    assert await backend.job_briefs(Q, []) == []


async def test_a_flow_record_goes_with_its_last_job_and_live_flows_stay(
    backend: Backend,
) -> None:
    async def prune() -> None:
        for queue in (Q, OTHER):
            await backend.prune_flows(queue)

    await backend.add_flow("f1", [fj("a"), fj("b", on("a", "a"))])
    assert [await run(backend), await run(backend)] == ["a", "b"]
    await backend.add_flow("live", [fj("x"), fj("y", on("x", "x"))])
    await backend.add_flow("half", [fj("p"), fj("q", on("p", "p"))])
    assert await backend.remove(Q, "q")  # one job gone, the other still waiting
    assert await backend.remove(Q, "a")
    await prune()
    assert await backend.get_flow("f1") is not None  # b is still there
    assert await backend.remove(Q, "b")
    await prune()
    assert await backend.get_flow("f1") is None
    assert "f1" not in [r.id for r in await backend.list_flows(10)]
    for flow_id in ("live", "half"):
        assert await backend.get_flow(flow_id) is not None, flow_id
    # The id is free again: the same flow starts afresh.
    assert await backend.add_flow("f1", [fj("a"), fj("b", on("a", "a"))])
    assert await state(backend, "b") is JobState.BLOCKED
    # Retention deleting the last job (here, of a flow over two queues) counts too.
    await backend.add_flow("f2", [fj("m", queue=OTHER), fj("n", on("m", "m", OTHER))])
    claimed = await claim_one(backend, OTHER)
    assert await backend.complete(OTHER, [Completion(claimed.id, claimed.token, b"1")], NONE)
    await pass_all(backend, OTHER)
    await prune()
    assert await backend.get_flow("f2") is not None  # n is waiting
    assert await backend.cancel(Q, "n", NONE) is JobState.CANCELLED
    await prune()
    assert await backend.get_flow("f2") is None
    assert await backend.prune_flows(Q) == 0
    for flow_id in ("live", "half", "f1"):
        assert await backend.get_flow(flow_id) is not None, flow_id


async def test_retrying_one_job_puts_back_what_failed_through_it_only(
    backend: Backend,
) -> None:
    flow = [
        fj("a"),
        fj("e"),
        fj("g"),
        fj("b", on("a", "a")),
        fj("c", on("b", "b")),
        fj("d", on("a", "a", on_failure=OnFailure.SKIP)),
        fj("x", on("a", "a", on_failure=OnFailure.IGNORE)),
        fj("f", on("a", "a"), on("g", "g")),  # g fails too: f would fail again
    ]
    await backend.add_flow("f1", flow)
    assert await fail_for_good(backend) == "a"
    assert await run(backend) == "e"
    assert await fail_for_good(backend) == "g"
    assert await run(backend) == "x"
    assert await backend.retry_flow("f1", [("flows", "e")]) == 0  # completed: nothing
    assert await backend.retry_flow("f1", [(Q, "a")]) == 4
    states = {i: await state(backend, i) for i in "abcdefgx"}
    assert states == {
        "a": JobState.WAITING,
        "b": JobState.BLOCKED,
        "c": JobState.BLOCKED,
        "d": JobState.BLOCKED,
        "e": JobState.COMPLETED,
        "f": JobState.FAILED,
        "g": JobState.FAILED,
        "x": JobState.COMPLETED,
    }
    assert await run(backend) == "a"
    assert {await run(backend), await run(backend)} == {"b", "d"}
    assert await run(backend) == "c"
    assert (await backend.claim(Q, 10, 30_000, "w1"))[0] == []  # x, e not run again
    assert await state(backend, "x") is JobState.COMPLETED


async def test_retrying_several_jobs_at_once_is_retrying_each_dependencies_first(
    backend: Backend,
) -> None:
    """Bulk retries pass every failed job of a flow they meet as roots: a root failed by
    another root goes back blocked behind it, a fan-in waits on all its retried
    dependencies, and a root failed by a dependency that is not retried stays out."""
    flow = [
        fj("a"),
        fj("g"),
        fj("b", on("a", "a")),
        fj("f", on("a", "a"), on("g", "g")),
        fj("h"),
        fj("k", on("h", "h")),
    ]
    await backend.add_flow("f1", flow)
    assert await fail_for_good(backend) == "a"
    assert await fail_for_good(backend) == "g"
    assert await fail_for_good(backend) == "h"
    # b before a, as a bulk walk may meet them; k without h (its dependency failed it).
    assert await backend.retry_flow("f1", [(Q, "b"), (Q, "f"), (Q, "a"), (Q, "g"), (Q, "k")]) == 4
    states = {i: await state(backend, i) for i in "abfghk"}
    assert states == {
        "a": JobState.WAITING,
        "g": JobState.WAITING,
        "b": JobState.BLOCKED,
        "f": JobState.BLOCKED,
        "h": JobState.FAILED,
        "k": JobState.FAILED,
    }
    assert {await run(backend), await run(backend)} == {"a", "g"}
    assert {await run(backend), await run(backend)} == {"b", "f"}


async def test_a_fan_in_retried_one_dependency_at_a_time_waits_for_each(
    backend: Backend,
) -> None:
    """``job.retry()`` of each failed dependency of a fan-in in turn: the second retry
    takes the fan-in back, and it waits for the first one too (still running: its old
    failure is forgotten), not only for the second."""
    await backend.add_flow("f1", [fj("a1"), fj("a2"), fj("t", on("a1", "a1"), on("a2", "a2"))])
    assert await fail_for_good(backend) == "a1"
    assert await fail_for_good(backend) == "a2"
    assert await backend.retry_flow("f1", [(Q, "a1")]) == 1  # t: a2 would fail it again
    assert await state(backend, "t") is JobState.FAILED
    assert await backend.retry_flow("f1", [(Q, "a2")]) == 2
    jobs, _ = await backend.claim(Q, 10, 30_000, "w1")
    assert sorted(j.id for j in jobs) == ["a1", "a2"]
    a1, a2 = sorted(jobs, key=lambda j: j.id)
    assert await backend.complete(Q, [Completion(a2.id, a2.token, b"2")], KEEP_ALL)
    assert await state(backend, "t") is JobState.BLOCKED  # a1 still runs
    assert await backend.complete(Q, [Completion(a1.id, a1.token, b"1")], KEEP_ALL)
    assert await run(backend) == "t"
    outcomes = await backend.dependency_outcomes(Q, "t")
    assert {n: (o.state, o.result) for n, o in outcomes.items()} == {
        "a1": ("completed", b"1"),
        "a2": ("completed", b"2"),
    }
