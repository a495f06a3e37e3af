"""Flows run by a real worker on each backend: chains pass results, groups fan out,
chords fan in, a failing dependency follows its edge's policy, a flow cancels as a
whole, and a bad graph is refused before anything is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from corral import (
    Corral,
    Dep,
    Flow,
    InvalidFlow,
    JobContext,
    JobFilter,
    JobNotFound,
    JobState,
    Retention,
    WaitForChildren,
    chain,
    chord,
    group,
)
from tests.worker.conftest import Workers

Q = "default"


def register(app: Corral) -> dict[str, Any]:
    @app.task()
    def double(x: int) -> int:
        return x * 2

    @app.task()
    def add(x: int, y: int) -> int:
        return x + y

    @app.task()
    async def total(ctx: JobContext) -> int:
        return sum((await ctx.dependency_results()).values())

    @app.task()
    def total_sync(ctx: JobContext) -> int:
        return sum(ctx.dependency_results_sync().values())

    @app.task()
    def boom() -> None:
        raise ValueError("no rows")

    @app.task()
    async def report(ctx: JobContext) -> dict[str, str]:
        return {name: d.state for name, d in (await ctx.dependencies()).items()}

    @app.task()
    def wait_forever() -> None:  # never claimed in the cancel test (no worker)
        return None

    @app.task()
    async def nap(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    return {
        "double": double,
        "add": add,
        "total": total,
        "boom": boom,
        "total_sync": total_sync,
        "report": report,
        "wait_forever": wait_forever,
        "nap": nap,
    }


async def test_a_chain_passes_each_result_to_the_next_job(app: Corral, workers: Workers) -> None:
    t = register(app)
    run = await app.start_flow(chain(t["double"].call(3), t["add"].call(10), t["double"].call()))
    assert run.state == "running"
    assert run.progress == (0, 3)
    workers.start([Q])
    assert await run.wait(timeout=10) == "completed"
    assert run.progress == (3, 3)
    assert run.results() == {"double": 6, "add": 16, "double#2": 32}


async def test_a_chord_fans_out_and_in(app: Corral, workers: Workers) -> None:
    t = register(app)
    flow = chord(group(t["double"].call(i) for i in range(20)), t["total"].call())
    run = await app.start_flow(flow)
    workers.start([Q], concurrency=8)
    assert await run.wait(timeout=20) == "completed"
    assert run.results()["total"] == sum(2 * i for i in range(20))


async def test_a_sync_task_reads_its_dependencies(app: Corral, workers: Workers) -> None:
    t = register(app)
    run = await app.start_flow(
        chord([t["double"].call(1), t["double"].call(2)], t["total_sync"].call())
    )
    workers.start([Q])
    assert await run.wait(timeout=10) == "completed"
    assert run.results()["total_sync"] == 6


async def test_a_diamond_and_its_edges_are_visible(app: Corral, workers: Workers) -> None:
    t = register(app)
    flow = Flow()
    a = flow.add(t["double"].call(1), name="a")
    b = flow.add(t["add"].call(1), name="b", after=[a], pass_result=True)
    c = flow.add(t["double"].call(), name="c", after=[a], pass_result=True)
    flow.add(t["report"].call(), name="d", after=[b, c])
    run = await app.start_flow(flow, flow_id="diamond-1")
    workers.start([Q])
    assert await run.wait(timeout=10) == "completed"
    assert run.results() == {"a": 2, "b": 3, "c": 4, "d": {"b": "completed", "c": "completed"}}
    shown = (await app.get_flow("diamond-1")).to_dict()
    assert shown["state"] == "completed" and shown["progress"] == {"done": 4, "total": 4}
    assert {(e["from"], e["to"]) for e in shown["edges"]} == {
        ("a", "b"),
        ("a", "c"),
        ("b", "d"),
        ("c", "d"),
    }
    # Starting the same flow id again stores nothing new.
    again = await app.start_flow(flow, flow_id="diamond-1")
    assert again.state == "completed"


async def test_each_policy_when_a_dependency_fails(app: Corral, workers: Workers) -> None:
    t = register(app)
    flow = Flow()
    bad = flow.add(t["boom"].call(), name="bad")
    flow.add(t["report"].call(), name="failed-with-it", after=[bad])
    flow.add(t["report"].call(), name="skipped", after=[Dep(bad, on_failure="skip")])
    flow.add(t["report"].call(), name="runs-anyway", after=[Dep("bad", on_failure="ignore")])
    run = await app.start_flow(flow)
    workers.start([Q])
    assert await run.wait(timeout=10) == "failed"
    jobs = run.jobs
    assert jobs["bad"] is not None and jobs["bad"].state is JobState.FAILED
    dependent = jobs["failed-with-it"]
    assert dependent is not None and dependent.state is JobState.FAILED
    assert dependent.error is not None and dependent.error["type"] == "DependencyFailed"
    assert "ValueError: no rows" in dependent.error["message"]
    skipped = jobs["skipped"]
    assert skipped is not None and skipped.state is JobState.CANCELLED
    assert run.results() == {"runs-anyway": {"bad": "failed"}}


@pytest.mark.parametrize("fail_fast", [True, False])
async def test_fail_fast_cancels_the_siblings_of_a_failed_job(
    app: Corral, workers: Workers, fail_fast: bool
) -> None:
    t = register(app)
    seconds = 30 if fail_fast else 0.2
    naps = [t["nap"].call(seconds) for _ in range(4)]
    flow = chord(group(t["boom"].call(), *naps), t["total"].call(), fail_fast=fail_fast)
    run = await app.start_flow(flow)
    assert run.to_dict()["fail_fast"] is fail_fast
    workers.start([Q], concurrency=10)
    assert await run.wait(timeout=15) == "failed"
    states = {name: job.state for name, job in run.jobs.items() if job is not None}
    assert states["boom"] is JobState.FAILED
    naps_state = {s for n, s in states.items() if n.startswith("nap")}
    if fail_fast:
        assert naps_state == {JobState.CANCELLED}
        assert states["total"] is JobState.CANCELLED
        nap = run.jobs["nap"]
        assert nap is not None and nap.errors[0]["type"] == "SiblingFailed"
        assert "job boom" in nap.errors[0]["message"]
    else:
        assert naps_state == {JobState.COMPLETED}
        assert states["total"] is JobState.FAILED


async def test_a_flow_record_is_deleted_with_its_last_job(app: Corral, workers: Workers) -> None:
    @app.task(queue="brief", completed=Retention(count=0))  # keep no completed job
    def brief(x: int) -> int:
        return x

    t = register(app)
    kept = await app.start_flow(chain(t["double"].call(1), t["double"].call()))
    run = await app.start_flow(chain(brief.call(1), brief.call()))
    workers.start([Q, "brief"])
    assert await kept.wait(timeout=10) == "completed"

    async def pruned() -> bool:
        try:
            await app.get_flow(run.id)
        except JobNotFound:
            return True
        return False

    deadline = asyncio.get_running_loop().time() + 10
    while not await pruned():
        assert asyncio.get_running_loop().time() < deadline, "the flow record stayed"
        await asyncio.sleep(0.1)
    with pytest.raises(JobNotFound, match="no flow"):
        await app.get_flow(run.id)
    assert (await app.get_flow(kept.id)).state == "completed"  # its jobs are kept


async def test_cancel_reaches_every_unfinished_job(app: Corral) -> None:
    t = register(app)
    flow = chain(group(t["wait_forever"].call() for _ in range(3)), t["total"].call())
    run = await app.start_flow(flow)
    assert await run.cancel() == 4
    assert run.state == "cancelled"
    assert run.progress == (4, 4)
    assert all(j is not None and j.state is JobState.CANCELLED for j in run.jobs.values())


async def test_a_bad_graph_is_refused_before_anything_is_stored(app: Corral) -> None:
    t = register(app)
    flow = Flow()
    flow.add(t["report"].call(), name="a", after=["c"])
    flow.add(t["report"].call(), name="b", after=["a"])
    flow.add(t["report"].call(), name="c", after=["b"])
    with pytest.raises(
        InvalidFlow, match=r"cycle.*: (a -> c -> b -> a|c -> b -> a -> c|b -> a -> c -> b)$"
    ):
        await app.start_flow(flow)
    other = Flow()
    other.add(t["report"].call(), name="x", after=["nope"])
    with pytest.raises(InvalidFlow, match="'x' depends on 'nope', not in this flow"):
        await app.start_flow(other)
    with pytest.raises(InvalidFlow, match="on_failure must be one of"):
        await app.start_flow(_bad_policy(t))
    counts = await app.queue(Q).counts()
    assert sum(v for k, v in counts.items() if k != "paused") == 0


def _bad_policy(t: dict[str, Any]) -> Flow:
    flow = Flow()
    a = flow.add(t["double"].call(1))
    flow.add(t["report"].call(), after=[Dep(a, on_failure="later")])
    return flow


def test_sync_twins(store_url: str) -> None:
    app = Corral(store_url)
    try:
        t = register(app)
        run = app.start_flow_sync(chain(t["double"].call(1), t["double"].call()))
        assert app.get_flow_sync(run.id).progress == (0, 2)
        assert run.cancel_sync() == 2
        assert run.refresh_sync().state == "cancelled"
        assert run.wait_sync(timeout=1) == "cancelled"
    finally:
        app.close_sync()


async def test_retry_failed_reruns_failures_and_their_dependents_never_successes(
    app: Corral, workers: Workers, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.txt"
    broken = tmp_path / "broken"
    broken.touch()

    @app.task(attempts=1)
    def step(name: str) -> str:
        with runs.open("a") as f:
            f.write(name + "\n")
        if name == "flaky" and broken.exists():
            raise RuntimeError("upstream down")
        return name

    flow = Flow()
    a = flow.add(step.call("a"), name="a")
    flaky = flow.add(step.call("flaky"), name="flaky", after=[a])
    flow.add(step.call("last"), name="last", after=[flaky])
    run = await app.start_flow(flow)
    workers.start([Q])
    assert await run.wait(timeout=10) == "failed"
    broken.unlink()
    assert await run.retry_failed() == 2
    assert run.state == "running"
    assert await run.wait(timeout=10) == "completed"
    assert runs.read_text().split() == ["a", "flaky", "flaky", "last"]


@pytest.mark.parametrize("how", ["retry_all", "bulk_filter", "bulk_ids"])
async def test_bulk_retries_put_dependents_back_behind_their_dependency(
    app: Corral, workers: Workers, tmp_path: Path, how: str
) -> None:
    """``Queue.retry_all`` (``corral retry --all``, ``POST .../retry-failed``) and
    ``Queue.bulk("retry")`` (the dashboard's and API's bulk retry, ``corral bulk``) of
    a failed chain: the job that failed through its dependency waits ``blocked`` for
    it, then runs once it has completed; so does the one after it in another queue
    (the bulk action is on one queue only)."""
    broken = tmp_path / "broken"
    broken.touch()

    @app.task(attempts=1)
    def fetch() -> str:
        if broken.exists():
            raise RuntimeError("upstream down")
        return "rows"

    @app.task(attempts=1)
    async def parse(ctx: JobContext) -> str:
        fetched = (await ctx.dependencies())["fetch"]
        if not fetched.completed:
            raise RuntimeError(f"ran while fetch was {fetched.state}")
        return f"parsed {fetched.result}"

    @app.task(attempts=1)
    async def store(ctx: JobContext) -> str:
        return str((await ctx.dependency_results())["parse"])

    flow = Flow()
    first = flow.add(fetch.call(), name="fetch")
    second = flow.add(parse.call(), name="parse", after=[first])
    flow.add(store.options(queue="other").call(), name="store", after=[second])
    run = await app.start_flow(flow)
    worker = workers.start([Q, "other"])
    assert await run.wait(timeout=10) == "failed"
    await workers.stop(worker)
    a, b, c = run.jobs["fetch"], run.jobs["parse"], run.jobs["store"]
    assert a is not None and b is not None and c is not None
    assert [await j.wait(timeout=1) for j in (a, b, c)] == [JobState.FAILED] * 3
    broken.unlink()
    queue = app.queue(Q)
    if how == "retry_all":
        assert await queue.retry_all() == 2
    elif how == "bulk_filter":
        result = await queue.bulk("retry", filter=JobFilter(JobState.FAILED))
        assert (result.matched, result.changed) == (2, 2)
    else:  # the dependent first, as a selection may list it
        result = await queue.bulk("retry", ids=[b.id, a.id])
        assert (result.matched, result.changed) == (2, 2)
    for job in (a, b, c):
        await job.refresh()
    assert (a.state, b.state, c.state) == (JobState.WAITING, JobState.BLOCKED, JobState.BLOCKED)
    workers.start([Q, "other"])
    assert await b.result(timeout=10) == "parsed rows"
    assert await c.result(timeout=10) == "parsed rows"
    assert await run.wait(timeout=10) == "completed"


async def test_spawn_and_wait_releases_the_slot(app: Corral, workers: Workers) -> None:
    t = register(app)

    @app.task()
    async def sync_pages(ctx: JobContext, pages: int) -> int:
        counts = await ctx.dependency_results()
        if not counts:
            raise WaitForChildren([t["double"].call(n) for n in range(pages)])
        return sum(counts.values())

    job = await sync_pages.enqueue(6)
    # One slot: the children can only run if the parked parent gave its slot up.
    workers.start([Q], concurrency=1)
    assert await job.result(timeout=10) == sum(2 * n for n in range(6))
    await job.refresh()
    assert job.attempts == 1


async def test_children_may_form_a_chain_or_a_chord(app: Corral, workers: Workers) -> None:
    """WaitForChildren takes a flow: a chain of children passes results along, a chord
    fans in, and the parent runs again once every child has ended, reading each
    child's result by name; a second wait adds children under new names."""
    t = register(app)

    @app.task()
    async def parent(ctx: JobContext) -> dict[str, int]:
        results = await ctx.dependency_results()
        if not results:
            raise WaitForChildren(
                chain(t["double"].call(1), t["double"].call(), t["double"].call())
            )
        if len(results) == 3:
            raise WaitForChildren(
                chord([t["double"].call(5), t["double"].call(6)], t["total"].call())
            )
        return results

    job = await parent.enqueue()
    workers.start([Q], concurrency=1)
    assert await job.result(timeout=20) == {
        "double": 2,
        "double#2": 4,
        "double#3": 8,
        "double#4": 10,
        "double#5": 12,
        "total": 22,
    }
    await job.refresh()
    assert job.attempts == 1


async def test_spawned_children_know_their_parent_and_how_they_depend(
    app: Corral, workers: Workers
) -> None:
    """Each child of a chain spawned across two queues (the middle one in another, so
    another slot on Redis Cluster) names its parent, and the parent gives the chain's
    edges between its children's names; a plain job, and a flow's job whose id looks
    like a child's, have no parent."""
    t = register(app)

    @app.task()
    async def importer(ctx: JobContext) -> list[int]:
        results = await ctx.dependency_results()
        if not results:
            raise WaitForChildren(
                chain(
                    t["double"].call(1),
                    t["double"].options(queue="other").call(),
                    t["double"].call(),
                )
            )
        return sorted(results.values())

    job = await importer.enqueue()
    # A flow whose jobs' ids have the shape of the importer's children's: not its.
    look_alike = chain(t["double"].call(1), t["double"].call())
    run = await app.start_flow(look_alike, flow_id=f"{job.id}.s9")
    workers.start([Q, "other"])
    assert await job.result(timeout=20) == [2, 4, 8]
    children = await job.children()
    assert [(c.queue, c.id) for c in children.values()] == [
        (Q, f"{job.id}.s0.0"),
        ("other", f"{job.id}.s0.1"),
        (Q, f"{job.id}.s0.2"),
    ]
    for child in children.values():
        parent = await child.parent()
        assert parent is not None and (parent.queue, parent.id) == (Q, job.id)
        assert parent.state is JobState.COMPLETED
    assert await job.child_edges() == [
        {"from": "double", "to": "double#2", "on_failure": "fail", "pass_result": True},
        {"from": "double#2", "to": "double#3", "on_failure": "fail", "pass_result": True},
    ]
    assert await job.parent() is None
    assert await run.wait(timeout=10) == "completed"
    flow_jobs = [await app.get_job(i, q) for q, i, _ in run.record.jobs]
    assert [j.id for j in flow_jobs] == [f"{job.id}.s9.0", f"{job.id}.s9.1"]
    assert [await j.parent() for j in flow_jobs] == [None, None]


async def test_children_that_are_not_valid_fail_the_parent_naming_why(
    app: Corral, workers: Workers
) -> None:
    t = register(app)

    @app.task()
    async def bad_parent() -> None:
        raise WaitForChildren([])

    @app.task()
    async def fast_parent() -> None:
        raise WaitForChildren(group(t["double"].call(1), fail_fast=True))

    job = await bad_parent.enqueue()
    fast = await fast_parent.enqueue()
    workers.start([Q])
    assert await job.wait(timeout=10) is JobState.FAILED
    assert job.error is not None and "at least one child" in job.error["message"]
    assert await fast.wait(timeout=10) is JobState.FAILED
    assert fast.error is not None and "cannot fail fast" in fast.error["message"]


async def test_a_blocked_job_says_it_waits_for_its_dependencies(app: Corral) -> None:
    t = register(app)
    run = await app.start_flow(chain(t["double"].call(1), t["double"].call()))
    second = run.jobs["double#2"]
    assert second is not None
    kinds = [b.kind for b in await second.blockers()]
    assert kinds == ["dependencies", "no_worker"]
