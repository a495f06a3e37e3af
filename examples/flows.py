"""Flows: a chain passing results, a fan-out/fan-in, a failure under each policy, a job
that spawns children and waits for them, and retrying what failed::

    python examples/flows.py
"""

from __future__ import annotations

import asyncio

from corral import Corral, Dep, Flow, JobContext, WaitForChildren, chain, chord
from corral.worker import Worker

app = Corral()  # CORRAL_URL, else sqlite:///corral.db
upstream_down = True


@app.task(name="pos.fetch")
async def fetch(restaurant: int) -> list[int]:
    return [restaurant * 10 + n for n in range(3)]


@app.task(name="pos.parse")
async def parse(order_ids: list[int]) -> int:  # gets fetch's result
    return len(order_ids)


@app.task(name="pos.page")
async def page(n: int) -> int:
    return 100 + n


@app.task(name="pos.total")
async def total(ctx: JobContext) -> int:  # reads every page's result by name
    return sum((await ctx.dependency_results()).values())


@app.task(name="pos.menu", attempts=1)
async def menu() -> str:
    if upstream_down:
        raise ConnectionError("menu API down")
    return "menu ok"


@app.task(name="pos.report")
async def report(ctx: JobContext) -> dict[str, str]:
    return {name: dep.state for name, dep in (await ctx.dependencies()).items()}


@app.task(name="pos.sync_all")
async def sync_all(ctx: JobContext, pages: int) -> int:
    counts = await ctx.dependency_results()
    if not counts:  # first run: fan out, give the worker slot back, run again after
        raise WaitForChildren([page.call(n) for n in range(pages)])
    return sum(counts.values())


async def main() -> None:
    global upstream_down
    worker = Worker(app, concurrency=1)  # one slot: spawn-and-wait must give it up
    running = asyncio.create_task(worker.run())

    run = await app.start_flow(chain(fetch.call(7), parse.call()))
    print("chain:", await run.wait(timeout=10), run.results())

    run = await app.start_flow(chord([page.call(n) for n in range(60)], total.call()))
    print("chord:", await run.wait(timeout=30), run.progress, run.results()["total"])

    flow = Flow()
    m = flow.add(menu.call(), name="menu")
    flow.add(report.call(), name="fails-with-it", after=[m])
    flow.add(report.call(), name="skipped", after=[Dep(m, on_failure="skip")])
    flow.add(report.call(), name="runs-anyway", after=[Dep(m, on_failure="ignore")])
    run = await app.start_flow(flow)
    print("policies:", await run.wait(timeout=10))
    for name, job in run.jobs.items():
        assert job is not None
        error = job.error["message"] if job.error else ""
        print(f"  {name}: {job.state.value} {error}".rstrip())
    upstream_down = False
    await run.retry_failed()
    print("after retry:", await run.wait(timeout=10), run.results())

    job = await sync_all.enqueue(5)
    print("spawn-and-wait:", await job.result(timeout=10))

    worker.stop()
    await running
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
