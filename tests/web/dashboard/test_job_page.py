"""The job page in Chromium: live progress from a real worker, actions, run again,
read-only keys."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from playwright.async_api import Page, expect

from corral import Corral, Dep, Flow, JobContext, WaitForChildren
from corral.backends.base import JobState
from corral.web.dashboard.job_page import CHILD_LINKS
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, READ_KEY, LiveServer, Serve, Workers, wait_until
from tests.web.dashboard.conftest import Pages, log_in


def job_url(server: LiveServer, queue: str, job_id: str) -> str:
    return f"{server.url}/queues/{queue}/jobs/{job_id}"


async def test_progress_updates_live_while_a_worker_runs_the_task(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    gates = [asyncio.Event(), asyncio.Event()]

    @corral.task(name="web.stepper", queue=QUEUE)
    async def stepper(ctx: JobContext) -> str:
        for done, gate in enumerate(gates, start=1):
            await ctx.progress({"done": done, "total": 4})
            await ctx.log(f"step {done}")
            await gate.wait()
        return "all done"

    job = await corral.enqueue("web.stepper")
    workers.start()

    async def progress_is(value: int) -> bool:
        await job.refresh()
        return isinstance(job.progress, dict) and job.progress["done"] == value

    await wait_until(lambda: progress_is(1))
    await page.goto(job_url(server, QUEUE, job.id))
    await expect(page.locator("#job-progress-label")).to_have_text("1 of 4 (25%)")
    await page.evaluate("window.sameDocument = true")
    # Watching the job from here on: what the task reports next arrives as events.
    await expect(page.locator("#live-dot")).to_have_attribute("data-state", "open")

    gates[0].set()
    await expect(page.locator("#job-progress-label")).to_have_text("2 of 4 (50%)")
    await expect(page.locator("#job-progress")).to_have_attribute("value", "50.0")
    await expect(page.locator("#job-logs")).to_contain_text("step 2")
    assert await page.evaluate("window.sameDocument") is True  # swapped, not reloaded

    gates[1].set()
    assert await job.wait(10) is JobState.COMPLETED
    # The state moved on: the page reloads whole, with the result.
    await expect(page.locator(".job-head .badge")).to_have_text("completed")
    await expect(page.locator("#job-result")).to_have_text('"all done"')
    assert await page.evaluate("window.sameDocument") is None


async def test_retry_a_failed_job_from_its_page(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    job = await corral.enqueue("web.fail", ["broken <b>input</b>"])
    worker = workers.start()
    assert await job.wait(10) is JobState.FAILED
    await workers.stop(worker)

    await page.goto(job_url(server, QUEUE, job.id))
    await expect(page.locator("#timeline")).to_contain_text("NoRetry: broken <b>input</b>")
    await expect(page.locator("#timeline")).to_contain_text(f"on {worker.id}")
    await page.click("#action-retry")
    await expect(page.locator(".flash.ok")).to_contain_text("Retried")
    await expect(page.locator(".job-head .badge")).to_have_text("waiting")
    await job.refresh()
    assert job.state is JobState.WAITING


async def test_run_again_with_edited_arguments_makes_a_new_job(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    old = await corral.enqueue("web.echo", [{"to": "a@b.c"}], priority=3, dedupe_key="to:a")
    await page.goto(server.url + "/")
    await page.fill("#find-job", old.id)  # /find leads to the job's page
    await page.click(".find button")
    assert page.url == job_url(server, QUEUE, old.id)
    await expect(page.locator("#job-options")).to_contain_text("Dedupe keyto:a")
    await page.fill("#rerun-args", '[{"to": "x@y.z", "n": 2}]')
    await page.click("#rerun-submit")
    await expect(page.locator("#rerun-of a")).to_have_text(old.id)
    new_id = page.url.rsplit("/", 1)[1]
    assert new_id != old.id
    new = await corral.get_job(new_id, QUEUE)
    assert (new.name, new.args, new.kwargs, new.priority) == (
        "web.echo",
        [{"to": "x@y.z", "n": 2}],
        {},
        3,
    )
    assert new.rerun_of == old.id
    await page.click("#rerun-of a")
    assert page.url == job_url(server, QUEUE, old.id)


async def test_run_again_with_bad_json_or_arguments_shows_the_form_again(
    page: Page, pages: Pages, server: LiveServer, corral: Corral
) -> None:
    pages.allow("status of 422")
    job = await corral.enqueue("web.echo", [1])
    await page.goto(job_url(server, QUEUE, job.id))
    cases: list[tuple[str, str, str]] = [
        ('[1, "two"', "{}", "positional arguments: not valid JSON"),
        ("[1]", "[]", "keyword arguments: must be a JSON object"),
        ("[1, 2]", "{}", "too many positional arguments"),
        ("[]", '{"nope": 1}', "unexpected keyword argument 'nope'"),
    ]
    for args, kwargs, message in cases:
        await page.fill("#rerun-args", args)
        await page.fill("#rerun-kwargs", kwargs)
        await page.click("#rerun-submit")
        await expect(page.locator("#rerun-error")).to_contain_text(message)
        await expect(page.locator("#rerun-args")).to_have_value(args)  # kept for fixing
    assert (await corral.queue(QUEUE).counts())["waiting"] == 1  # nothing was enqueued


async def test_read_key_sees_masked_arguments_and_no_controls(
    page: Page, serve: Serve, url: str, corral: Corral
) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    job = await corral.enqueue("web.login", ["ann", "hunter2"])
    await log_in(page, server, READ_KEY, f"/queues/{QUEUE}/jobs/{job.id}")
    await expect(page.locator("#job-args")).to_contain_text("ann")
    await expect(page.locator("#job-args")).not_to_contain_text("hunter2")
    await expect(page.locator("#job-actions")).to_have_count(0)
    await expect(page.locator("#run-again")).to_have_count(0)

    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    base = f"/queues/{QUEUE}/jobs/{job.id}"
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        forged = await http.post(f"{base}/cancel", data={})
        assert forged.status_code == 403 and "security token" in forged.text
        low = await http.post(f"{base}/cancel", data={"csrf": csrf or ""})
        assert low.status_code == 403 and "write is needed" in low.text
        again = await http.post(f"{base}/run-again", data={"csrf": csrf or "", "args": "[]"})
        assert again.status_code == 403
    await job.refresh()
    assert job.state is JobState.WAITING
    assert (await corral.queue(QUEUE).counts())["waiting"] == 1


async def test_forged_post_from_an_admin_session_is_refused(
    page: Page, serve: Serve, url: str, corral: Corral
) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    job = await corral.enqueue("web.echo", [1])
    await log_in(page, server, ADMIN_KEY, f"/queues/{QUEUE}/jobs/{job.id}")
    await expect(page.locator("#action-cancel")).to_be_visible()
    cookies: dict[str, Any] = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        for action in ("cancel", "remove"):
            refused = await http.post(f"/queues/{QUEUE}/jobs/{job.id}/{action}", data={})
            assert refused.status_code == 403
    await job.refresh()
    assert job.state is JobState.WAITING


async def test_cancel_asks_first_and_unknown_job_is_a_404_page(
    page: Page, pages: Pages, server: LiveServer, corral: Corral
) -> None:
    pages.allow("status of 404")
    job = await corral.enqueue("web.echo", [1], delay=600)
    await page.goto(job_url(server, QUEUE, job.id))
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
    await page.click("#action-cancel")
    await expect(page.locator(".job-head .badge")).to_have_text("delayed")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.click("#action-cancel")
    await expect(page.locator(".job-head .badge")).to_have_text("cancelled")

    answer = await page.goto(job_url(server, QUEUE, "no-such-job"))
    assert answer is not None and answer.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")


async def test_a_job_that_has_not_started_says_why(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    job = await corral.enqueue("web.echo", [1], delay=600)
    await corral.queue(QUEUE).pause()
    await page.goto(job_url(server, QUEUE, job.id))
    kinds = page.locator("#blockers li")
    await expect(kinds).to_have_count(3)
    assert await kinds.evaluate_all("items => items.map(i => i.dataset.kind)") == [
        "delayed",
        "paused",
        "no_worker",
    ]
    await expect(page.locator("#blockers [data-kind=no_worker]")).to_contain_text(
        "no live worker listens on queue 'web'"
    )

    done = await corral.enqueue("web.echo", [2])
    await done.cancel()
    await page.goto(job_url(server, QUEUE, done.id))
    await expect(page.locator("#blockers")).to_have_count(0)


async def test_a_job_removed_elsewhere_says_so_in_place(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    job = await corral.enqueue("web.echo", [1], delay=600)
    await page.goto(job_url(server, QUEUE, job.id))
    await expect(page.locator("#live-dot")).to_have_attribute("data-state", "open")
    assert await job.remove()
    await expect(page.locator("#job-live")).to_contain_text("This job has been removed.")
    assert page.url == job_url(server, QUEUE, job.id)


async def test_a_child_links_to_its_parent_whose_page_draws_the_children_graph(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    """A spawned child's page says which job spawned it, linking there; the parent's
    page draws how its children depend on one another as the flow page draws a flow
    (a column per depth, an arrow per dependency, non-fail policies labelled)."""

    @corral.task(name="web.importer", queue=QUEUE)
    async def importer(ctx: JobContext) -> list[str]:
        results = await ctx.dependency_results()
        if not results:
            flow = Flow()
            fetch = flow.add(corral.call("web.echo", ["rows"]), name="fetch")
            parse = flow.add(corral.call("web.echo"), name="parse", after=[fetch], pass_result=True)
            thumbs = flow.add(corral.call("web.echo", [1]), name="thumbs", after=[parse])
            index = flow.add(
                corral.call("web.echo", [2], queue="web-other"),
                name="index",
                after=[Dep(parse, on_failure="ignore")],
            )
            flow.add(corral.call("web.echo", [3]), name="store", after=[thumbs, index])
            raise WaitForChildren(flow)
        return sorted(results)

    job = await importer.enqueue()
    workers.start([QUEUE, "web-other"])
    assert await job.result(timeout=20) == ["fetch", "index", "parse", "store", "thumbs"]
    await page.set_viewport_size({"width": 1280, "height": 1000})
    await page.goto(job_url(server, "web-other", f"{job.id}.s0.3"))  # index, other queue
    spawned_by = page.locator("#spawned-by")
    await expect(spawned_by).to_contain_text(f"Spawned by web.importer {job.id}")
    await expect(spawned_by.locator(".badge")).to_have_text("completed")
    await expect(spawned_by).to_contain_text(f"in queue {QUEUE}")
    await page.locator(".job-head").screenshot(path="/tmp/corral-spawn-child-head.png")
    await page.locator("#parent-link").click()
    await expect(page).to_have_url(job_url(server, QUEUE, job.id) + "#job-children")
    await expect(page.locator("#spawned-by")).to_have_count(0)  # the parent was not spawned
    graph = page.locator("#children-graph svg")
    await expect(graph.locator(".flow-node")).to_have_count(5)
    edges = graph.locator("path.flow-edge")
    await expect(edges).to_have_count(5)
    drawn = {await e.get_attribute("data-edge") for e in await edges.all()}
    assert drawn == {
        "fetch-parse",
        "parse-thumbs",
        "parse-index",
        "thumbs-store",
        "index-store",
    }
    depths = {
        name: await graph.locator(f".flow-node[data-job='{name}']").get_attribute("data-depth")
        for name in ("fetch", "parse", "thumbs", "index", "store")
    }
    assert depths == {"fetch": "0", "parse": "1", "thumbs": "2", "index": "2", "store": "3"}
    await expect(graph.locator("[data-edge-label='parse-index']")).to_have_text("ignore")
    await expect(graph.locator(".flow-edge.edge-completed")).to_have_count(5)
    await page.locator("#job-children").screenshot(path="/tmp/corral-spawn-graph.png")
    await page.screenshot(path="/tmp/corral-spawn-parent-page.png", full_page=True)
    # Each box links to its child's page, which links back.
    await graph.locator(".flow-node[data-job='store'] a").click()
    await expect(page).to_have_url(job_url(server, QUEUE, f"{job.id}.s0.4"))
    await expect(page.locator("#parent-link")).to_have_text("web.importer")


async def test_a_parent_lists_the_children_it_spawned_and_links_to_them(
    pages: Pages, page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    """A job that spawned children (WaitForChildren) lists them on its page: how many
    in each state, then each one's name, state and id linking to its page; past
    CHILD_LINKS, "show all" lists every one. A job that spawned none has no section."""

    @corral.task(name="web.fan_out", queue=QUEUE)
    async def fan_out(ctx: JobContext, count: int) -> int:
        results = await ctx.dependency_results()
        if not results:
            calls = [corral.call("web.echo", [n]) for n in range(count - 1)]
            failing = corral.call("web.fail", ["page 7 is gone"])
            raise WaitForChildren([*calls, failing], on_failure="ignore")
        return len(results)

    count = CHILD_LINKS + 5
    job = await corral.enqueue("web.fan_out", [count])
    lone = await corral.enqueue("web.echo", [1])
    workers.start()
    assert await job.result(timeout=20) == count - 1
    await page.goto(job_url(server, QUEUE, job.id))
    section = page.locator("#job-children")
    await expect(section.locator("h2")).to_have_text("Spawned children")
    await expect(page.locator("#children-summary")).to_contain_text(
        f"{count} jobs spawned by this one"
    )
    await expect(page.locator("#children-summary .badge")).to_have_text(
        [f"{count - 1} completed", "1 failed"]
    )
    rows = page.locator("#children-table tbody tr[data-child]")
    await expect(rows).to_have_count(CHILD_LINKS)
    first = page.locator("tr[data-child=echo]")
    await expect(first).to_contain_text("completed")
    await expect(first).to_contain_text(f"{job.id}.s0.0")
    await page.set_viewport_size({"width": 1280, "height": 1100})
    await page.screenshot(path="/tmp/corral-children-light.png", full_page=True)
    await page.locator("#children-all").click()
    await expect(rows).to_have_count(count)
    failed = page.locator("tr[data-child=fail]")
    await expect(failed.locator(".badge")).to_have_text("failed")
    await failed.locator("a").click()
    await expect(page).to_have_url(job_url(server, QUEUE, f"{job.id}.s0.{count - 1}"))
    await expect(page.locator("#job-children")).to_have_count(0)  # a child spawned none
    dark = await pages.new(dark=True, width=390, height=900)
    await dark.goto(job_url(server, QUEUE, job.id))
    await expect(dark.locator("#children-table tbody tr[data-child]")).to_have_count(CHILD_LINKS)
    await dark.locator("#job-children").screenshot(path="/tmp/corral-children-phone-dark.png")
    await page.goto(job_url(server, QUEUE, lone.id))
    await expect(page.locator("#job-children")).to_have_count(0)
