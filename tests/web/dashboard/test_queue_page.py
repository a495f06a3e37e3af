"""The queue page in Chromium: state tabs with counts, paging, removal from a job page."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, expect

from corral import Corral
from corral.web.dashboard.queue_page import PAGE_SIZE
from tests.web.apps import QUEUE
from tests.web.conftest import LiveServer, Workers, wait_until


async def _ids_on(page: Page) -> list[str]:
    return [
        str(i)
        for i in await page.locator("#jobs tbody tr[data-job]").evaluate_all(
            "rows => rows.map(r => r.dataset.job)"
        )
    ]


async def test_tabs_count_each_state_and_paging_reads_every_job_once(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    total = PAGE_SIZE + 7
    calls = [corral.tasks["web.echo"].call(n) for n in range(total)]
    jobs = await corral.enqueue_many(calls)
    await corral.enqueue("web.echo", ["later"], delay=600)

    await page.goto(f"{server.url}/queues/{QUEUE}?state=waiting")
    tabs = page.locator("#state-tabs")
    await expect(tabs.locator("[data-state=waiting] .count")).to_have_text(str(total))
    await expect(tabs.locator("[data-state=delayed] .count")).to_have_text("1")
    await expect(tabs.locator('[aria-current="page"]')).to_have_attribute("data-state", "waiting")

    first = await _ids_on(page)
    assert len(first) == PAGE_SIZE
    await page.click("#page-next")
    second = await _ids_on(page)
    assert len(second) == total - PAGE_SIZE
    await expect(page.locator("#page-next")).to_have_count(0)
    assert sorted(first + second) == sorted(j.id for j in jobs)

    await page.click("#state-tabs [data-state=delayed]")
    await expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(1)


async def test_removing_a_job_asks_first_and_lands_on_its_queue(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    job = await corral.enqueue("web.echo", [1])
    await page.goto(f"{server.url}/queues/{QUEUE}/jobs/{job.id}")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.click("#action-remove")
    await expect(page.locator(".flash.ok")).to_have_text(f"Job {job.id} removed.")
    assert page.url.startswith(f"{server.url}/queues/{QUEUE}?")
    assert (await corral.queue(QUEUE).counts())["waiting"] == 0


async def test_tab_counts_follow_the_live_feed(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await corral.enqueue("web.echo", [1])
    await page.goto(f"{server.url}/queues/{QUEUE}?state=waiting")
    waiting = page.locator("#state-tabs [data-state=waiting] .count")
    await expect(waiting).to_have_text("1")
    await expect(page.locator("#live-dot")).to_have_attribute("data-state", "open")
    await page.evaluate("window.sameDocument = true")
    await corral.enqueue("web.echo", [2])
    await expect(waiting).to_have_text("2")
    assert await page.evaluate("window.sameDocument") is True


async def test_the_header_says_who_serves_the_queue(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    await corral.enqueue("web.echo", [1], delay=600)
    await corral.enqueue("web.echo", [2])
    await page.goto(f"{server.url}/queues/{QUEUE}")
    await expect(page.locator("#queue-summary")).to_have_text("0 live workers serve this queue")
    await expect(page.locator("#queue-health")).to_have_text(
        "jobs waiting and no live worker serves the queue"
    )
    worker = workers.start()
    await wait_until(lambda: corral.queue(QUEUE).workers())
    await page.reload()
    await expect(page.locator("#queue-summary")).to_have_text("1 live worker serves this queue")
    await expect(page.locator("#queue-health")).to_have_count(0)
    await workers.stop(worker)
