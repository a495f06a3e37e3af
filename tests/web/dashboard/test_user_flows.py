"""Click-through flows of the dashboard in Chromium, each driven by real workers on a
real store: a script in an error message stays text, a full rate limit is named as
the reason a job waits, search finds a job by id, argument and error, and a failed
job is retried from its page until it completes."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Page, Route, expect

from corral import Corral
from corral.backends.base import JobState
from tests.web.apps import QUEUE
from tests.web.conftest import LiveServer, Workers, wait_until

PAYLOAD = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"


def job_url(server: LiveServer, job_id: str) -> str:
    return f"{server.url}/queues/{QUEUE}/jobs/{job_id}"


async def _ids_on(page: Page) -> list[str]:
    found = await page.locator("#jobs tbody tr[data-job]").evaluate_all(
        "rows => rows.map(r => r.dataset.job)"
    )
    return [str(i) for i in found]


async def test_script_in_an_error_message_shows_as_text_on_the_job_and_queue_pages(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    job = await corral.enqueue("web.fail", [PAYLOAD])
    worker = workers.start()
    assert await job.wait(10) is JobState.FAILED
    await workers.stop(worker)
    assert job.error is not None and job.error["message"] == PAYLOAD

    await page.goto(job_url(server, job.id))
    detail = page.locator("#timeline .error-text", has_text="window.pwned=1")
    await expect(detail).to_have_text(f"corral.errors.NoRetry: {PAYLOAD}")
    await expect(detail).to_be_visible()
    await expect(page.locator("#timeline script, #timeline img")).to_have_count(0)
    assert await page.evaluate("window.pwned") is None

    await page.goto(f"{server.url}/queues/{QUEUE}?state=failed")
    cell = page.locator(f"#jobs tr[data-job='{job.id}'] td.error-cell")
    await expect(cell).to_have_text(f"NoRetry: {PAYLOAD}")
    await expect(cell).to_be_visible()
    await expect(page.locator("#jobs script, #jobs img")).to_have_count(0)
    assert await page.evaluate("window.pwned") is None


async def test_a_job_held_by_a_full_rate_limit_says_so(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    await corral.queue(QUEUE).set_limits(rate=(1, 60))
    first = await corral.enqueue("web.echo", [1])
    second = await corral.enqueue("web.echo", [2])
    workers.start()
    assert await first.wait(10) is JobState.COMPLETED
    # The worker keeps polling; the one start a minute allows is used up.
    await second.refresh()
    assert second.state is JobState.WAITING

    await page.goto(job_url(server, second.id))
    kinds = page.locator("#blockers li")
    await expect(kinds).to_have_count(1)
    rate = page.locator("#blockers [data-kind=rate_limit]")
    await expect(rate).to_have_text(
        re.compile(
            r"^rate limit: 1 of 1 jobs this minute; the window resets at \d\d:\d\d:\d\d UTC$"
        )
    )
    await second.refresh()
    assert second.state is JobState.WAITING


async def test_search_finds_a_job_by_id_argument_and_error(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    echo = corral.tasks["web.echo"]
    hay = await corral.enqueue_many([echo.call(f"hay-{n}") for n in range(4)])
    needle = await corral.enqueue("web.echo", ["needle-7Q"])
    broken = [await corral.enqueue("web.fail", [m]) for m in ("disk full", "bad token")]
    worker = workers.start()
    for job in broken:
        assert await job.wait(10) is JobState.FAILED
    for job in [*hay, needle]:
        assert await job.wait(10) is JobState.COMPLETED
    await workers.stop(worker)

    async def search(state: str, field: str, value: str) -> list[str]:
        await page.goto(f"{server.url}/queues/{QUEUE}?state={state}")
        await page.fill(field, value)
        await page.click("#search-go")
        await expect(page.locator("#scan-note")).to_contain_text("the end of the list")
        return await _ids_on(page)

    assert await search("completed", "#f-text", "NEEDLE-7q") == [needle.id]
    assert await search("completed", "#f-text", hay[2].id) == [hay[2].id]
    assert await search("failed", "#f-error", "DISK") == [broken[0].id]
    assert await search("failed", "#f-error", "no such error") == []
    await expect(page.locator("#jobs tbody")).to_contain_text("No matches.")

    # The header's box goes straight to a job's page by its id.
    await page.fill("#find-job", broken[1].id)
    await page.click(".find button")
    assert page.url == job_url(server, broken[1].id)
    await expect(page.locator(".job-id")).to_have_text(broken[1].id)
    await expect(page.locator("#timeline")).to_contain_text("NoRetry: bad token")


async def test_a_failed_job_is_retried_from_its_page_and_completes_live(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    broken = asyncio.Event()
    broken.set()
    release = asyncio.Event()

    @corral.task(name="web.flaky", queue=QUEUE, attempts=1)
    async def flaky(order: str) -> str:
        if broken.is_set():
            raise RuntimeError(f"upstream refused {order}")
        await release.wait()
        return f"shipped {order}"

    job = await corral.enqueue("web.flaky", ["order-42"])
    worker = workers.start()
    assert await job.wait(10) is JobState.FAILED
    await workers.stop(worker)

    await page.goto(f"{server.url}/queues/{QUEUE}?state=failed")
    cell = page.locator(f"#jobs tr[data-job='{job.id}'] td.error-cell")
    await expect(cell).to_have_text("RuntimeError: upstream refused order-42")
    await page.click(f"#jobs tr[data-job='{job.id}'] a")
    assert page.url == job_url(server, job.id)
    await expect(page.locator(".job-head .badge")).to_have_text("failed")
    await page.click("#timeline details.tb summary")
    traceback = page.locator("#timeline details.tb pre")
    await expect(traceback).to_be_visible()
    await expect(traceback).to_contain_text("Traceback (most recent call last)")
    await expect(traceback).to_contain_text('raise RuntimeError(f"upstream refused {order}")')

    # The retried job's page opens its live stream only once the job has started:
    # the start happens between the render and the subscription, and must still show.
    streams = asyncio.Event()

    async def hold(route: Route) -> None:
        await streams.wait()
        await route.continue_()

    await page.route("**/live?*", hold)
    broken.clear()
    await page.click("#action-retry")
    await expect(page.locator(".flash.ok")).to_contain_text("Retried")
    await expect(page.locator(".job-head .badge")).to_have_text("waiting")
    workers.start()

    async def started() -> bool:
        await job.refresh()
        return job.state is JobState.ACTIVE

    await wait_until(started)
    streams.set()
    await expect(page.locator(".job-head .badge")).to_have_text("active")
    await expect(page.locator("#live-dot")).to_have_attribute("data-state", "open")
    await page.evaluate("window.sameDocument = true")
    release.set()
    assert await job.wait(10) is JobState.COMPLETED
    await expect(page.locator(".job-head .badge")).to_have_text("completed")
    await expect(page.locator("#job-result")).to_have_text('"shipped order-42"')
    assert await page.evaluate("window.sameDocument") is None  # the page reloaded itself
    assert (await corral.queue(QUEUE).counts())["failed"] == 0
