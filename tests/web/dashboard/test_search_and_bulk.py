"""The queue page's search (bounded scan, continue) and bulk actions (on ticked jobs
and on everything a search matches, each confirmed first), in Chromium."""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest
from playwright.async_api import Page, expect

from corral import Corral
from corral.backends.base import JobState
from corral.web.dashboard import bulk_page, queue_page
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import API_KEYS, READ_KEY, LiveServer, Serve, Workers
from tests.web.dashboard.conftest import Pages, log_in


async def _ids_on(page: Page) -> list[str]:
    found = await page.locator("#jobs tbody tr[data-job]").evaluate_all(
        "rows => rows.map(r => r.dataset.job)"
    )
    return [str(i) for i in found]


async def test_bulk_retry_of_ticked_then_of_all_failed_jobs(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    failing = [await corral.enqueue("web.fail", [f"broken {n}"]) for n in range(3)]
    worker = workers.start()
    for job in failing:
        assert await job.wait(10) is JobState.FAILED
    await workers.stop(worker)

    await page.goto(f"{server.url}/queues/{QUEUE}?state=failed")
    errors = page.locator("#jobs tbody td.error-cell")
    await expect(errors.first).to_have_text(re.compile(r"^NoRetry: broken \d$"))
    ticked = (await _ids_on(page))[:2]
    for job_id in ticked:
        await page.check(f"input[name=ids][value='{job_id}']")
    await page.click("[data-bulk=selected-retry]")
    await expect(page.locator("#bulk-confirm h1")).to_contain_text("Retry 2 selected failed jobs?")
    assert (await corral.queue(QUEUE).counts())["failed"] == 3  # asked, not done
    await page.click("#bulk-go")
    await expect(page.locator(".flash.ok")).to_have_text("2 of 2 matching jobs retried.")
    states = {j.id: (await corral.get_job(j.id, QUEUE)).state for j in failing}
    assert sorted(i for i, s in states.items() if s is JobState.WAITING) == sorted(ticked)

    await page.click("[data-bulk=matching-retry]")
    await expect(page.locator("#bulk-confirm h1")).to_contain_text("Retry all 1 failed job?")
    await page.click("#bulk-go")
    await expect(page.locator(".flash.ok")).to_have_text("1 of 1 matching job retried.")
    assert (await corral.queue(QUEUE).counts())["waiting"] == 3


async def test_search_is_bounded_continues_and_bulk_applies_to_all_matching(
    page: Page, server: LiveServer, corral: Corral, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_page, "SCAN", 10)
    echo = corral.tasks["web.echo"]
    values = [f"needle-{n}" if n in (2, 13, 21) else f"hay-{n}" for n in range(25)]
    jobs = await corral.enqueue_many([echo.call(v) for v in values])
    needles = sorted(j.id for j, v in zip(jobs, values, strict=True) if v.startswith("needle"))

    await page.goto(f"{server.url}/queues/{QUEUE}?state=waiting")
    await page.fill("#f-text", "NEEDLE")
    await page.click("#search-go")
    seen: list[str] = []
    for scanned in (10, 10, 5):  # 25 jobs, at most 10 read per request
        await expect(page.locator("#scan-note")).to_contain_text(f"Scanned {scanned} waiting")
        seen += await _ids_on(page)
        if scanned == 10:
            await page.click("#scan-continue")
    await expect(page.locator("#scan-note")).to_contain_text("the end of the list")
    await expect(page.locator("#scan-continue")).to_have_count(0)
    assert sorted(seen) == needles

    await page.click("[data-bulk=matching-cancel]")
    confirm = page.locator("#bulk-confirm")
    await expect(confirm.locator("h1")).to_contain_text("Cancel every waiting job that matches?")
    await expect(confirm).to_contain_text("arguments or id contain “NEEDLE”")
    await page.click("#bulk-go")
    await expect(page.locator(".flash.ok")).to_have_text("3 of 3 matching jobs cancelled.")
    assert page.url.endswith("&text=NEEDLE&bulk=cancel&matched=3&changed=3&skipped=0")
    counts = await corral.queue(QUEUE).counts()
    assert (counts["waiting"], counts["cancelled"]) == (22, 3)
    entry = (await corral.audit_entries(1))[0]
    assert (entry.action, entry.target) == ("queue.bulk", QUEUE)
    assert entry.detail == {"action": "cancel", "by": "filter", "matched": 3, "changed": 3}


async def test_bad_search_fields_are_named(
    page: Page, pages: Pages, server: LiveServer, corral: Corral
) -> None:
    pages.allow("status of 422")
    await corral.enqueue("web.echo", [1])
    await page.goto(f"{server.url}/queues/{QUEUE}?state=waiting&since=yesterday")
    await expect(page.locator(".flash.error")).to_contain_text("since: 'yesterday' is not a date")
    await page.goto(
        f"{server.url}/queues/{QUEUE}?state=waiting&since=2026-01-02T00:00&until=2026-01-01T00:00"
    )
    await expect(page.locator(".flash.error")).to_contain_text("since must be before until")
    await expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(0)


async def test_read_key_sees_no_bulk_controls_and_cannot_post_them(
    page: Page, serve: Serve, url: str, corral: Corral
) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    job = await corral.enqueue("web.echo", [1])
    await log_in(page, server, READ_KEY, f"/queues/{QUEUE}?state=waiting")
    await expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(1)
    await expect(page.locator("[data-bulk]")).to_have_count(0)
    await expect(page.locator("input[name=ids]")).to_have_count(0)
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    form = {"action": "cancel", "state": "waiting", "ids": job.id, "confirm": "yes"}
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        forged = await http.post(f"/queues/{QUEUE}/bulk?target=selected", data=form)
        assert forged.status_code == 403
        low = await http.post(
            f"/queues/{QUEUE}/bulk?target=selected", data={**form, "csrf": csrf or ""}
        )
        assert low.status_code == 403 and "write is needed" in low.text
    assert (await corral.queue(QUEUE).counts())["waiting"] == 1


async def test_a_bulk_action_that_does_not_apply_to_the_state_is_named(
    page: Page, pages: Pages, server: LiveServer, corral: Corral
) -> None:
    pages.allow("status of 422")
    await corral.enqueue("web.echo", [1])
    await page.goto(f"{server.url}/queues/{QUEUE}?state=waiting")
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    form = {"csrf": csrf or "", "action": "retry", "state": "waiting", "confirm": "yes"}
    answer = await page.request.post(f"{server.url}/queues/{QUEUE}/bulk?target=matching", form=form)
    assert answer.status == 422
    assert "retry applies to cancelled, failed jobs, not waiting ones" in await answer.text()


async def test_a_slow_bulk_on_a_filter_shows_its_progress_then_the_result(
    page: Page, server: LiveServer, corral: Corral, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_page, "QUICK", 0.0)
    await corral.enqueue_many([corral.tasks["web.echo"].call(n) for n in range(3)])
    await page.goto(f"{server.url}/queues/{QUEUE}?state=waiting")
    await page.click("[data-bulk=matching-cancel]")
    # Another writer holds the store: the run can read, but not cancel, until it lets go.
    lock = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        await page.click("#bulk-go")
        await expect(page.locator("#bulk-run h1")).to_have_text("Cancelling every waiting job")
        await expect(page.locator("#bulk-counts")).to_contain_text("Working")
        assert (await corral.queue(QUEUE).counts())["waiting"] == 3
    finally:
        lock.execute("COMMIT")
        lock.close()
    await expect(page.locator(".flash.ok")).to_have_text("3 of 3 matching jobs cancelled.")
    assert (await corral.queue(QUEUE).counts())["cancelled"] == 3


async def test_an_unknown_bulk_run_is_a_404_page(
    page: Page, pages: Pages, server: LiveServer
) -> None:
    pages.allow("status of 404")
    answer = await page.goto(f"{server.url}/queues/{QUEUE}/bulk/not-a-real-token")
    assert answer is not None and answer.status == 404
    await expect(page.locator("[role=alert]")).to_contain_text("no such bulk action here")
