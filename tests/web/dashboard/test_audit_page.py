"""The audit page: admin keys only, newest first, targets linked, paged by entry id."""

from __future__ import annotations

from playwright.async_api import Page, expect

from corral import Corral
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, READ_KEY, WRITE_KEY, LiveServer, Serve
from tests.web.dashboard.conftest import Pages, log_in


async def test_nothing_recorded_yet(page: Page, server: LiveServer) -> None:
    await page.goto(server.url + "/audit")
    await expect(page.locator("#no-entries")).to_contain_text("Nothing recorded yet")


async def test_entries_newest_first_with_targets_linked(page: Page, serve: Serve, url: str) -> None:
    app = build_app(url)
    server = serve(app, api_keys=API_KEYS)
    job = await app.enqueue("web.echo", [1])
    await app.record_audit("ops-laptop", "job.retry", f"{QUEUE}/{job.id}", {"was": "failed"})
    await app.record_audit("deploy-bot", "queue.pause", QUEUE)
    await log_in(page, server, ADMIN_KEY, "/audit")
    rows = page.locator("#audit tbody tr")
    await expect(rows.locator("[data-action]")).to_have_text(["queue.pause", "job.retry"])
    await expect(rows.locator("[data-key]")).to_have_text(["deploy-bot", "ops-laptop"])
    await expect(rows.nth(1)).to_contain_text('{"was":"failed"}')
    await expect(rows.nth(0).locator("[data-target] a")).to_have_attribute(
        "href", f"/queues/{QUEUE}"
    )
    await rows.nth(1).locator("[data-target] a").click()
    await page.wait_for_url(f"**/queues/{QUEUE}/jobs/{job.id}")


async def test_pages_of_fifty_older_entries_by_id(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    for n in range(55):
        await corral.record_audit("ops", "queue.pause", f"q{n}")
    await page.goto(server.url + "/audit")
    targets = page.locator("#audit [data-target]")
    await expect(targets).to_have_count(50)
    await expect(targets.first).to_have_text("q54")
    await expect(targets.last).to_have_text("q5")
    await page.click("#audit-older")
    await expect(targets).to_have_text(["q4", "q3", "q2", "q1", "q0"])
    await expect(page.locator("#audit-older")).to_have_count(0)
    await page.click("#audit-newest")
    await expect(targets.first).to_have_text("q54")


async def test_only_admin_keys_see_the_log(pages: Pages, serve: Serve, url: str) -> None:
    app = build_app(url)
    server = serve(app, api_keys=API_KEYS)
    await app.record_audit("ops", "queue.pause", QUEUE)
    pages.allow("status of 403")
    pages.allow("status of 422")
    for key in (READ_KEY, WRITE_KEY):
        page = await pages.new()
        await log_in(page, server, key, "/audit")
        await expect(page.locator("h1")).to_have_text("Not allowed")
        await expect(page.locator("main")).to_contain_text("admin is needed")
        await expect(page.locator("main")).not_to_contain_text("queue.pause")
        await expect(page.locator("nav.nav")).not_to_contain_text("Audit")
    admin = await pages.new()
    await log_in(admin, server, ADMIN_KEY, "/audit?before=not-an-id")
    await expect(admin.locator("h1")).to_have_text("Invalid request")
    await app.close()


async def test_a_dashboard_enqueue_shows_up_by_the_viewers_key(
    page: Page, serve: Serve, url: str
) -> None:
    app = build_app(url)
    server = serve(app, api_keys=API_KEYS)
    await app.schedules.add("weekly", "web.echo", cron="0 9 * * 1")
    await log_in(page, server, ADMIN_KEY, "/enqueue")
    who = (await page.locator(".who .muted").inner_text()).split(" · ")[0]
    await page.select_option("#enq-task", "web.echo")
    await page.click("#enqueue-submit")
    job_id = await page.locator("#enqueued a").inner_text()
    await page.goto(server.url + "/schedules")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.locator("tr[data-schedule=weekly] [data-action=pause]").click()
    await expect(page.locator(".flash.ok")).to_be_visible()

    await page.goto(server.url + "/audit")
    rows = page.locator("#audit tbody tr")
    await expect(rows.locator("[data-action]")).to_have_text(["schedule.pause", "job.enqueue"])
    await expect(rows.locator("[data-key]")).to_have_text([who, who])
    await expect(rows.nth(0).locator("[data-target] a")).to_have_attribute("href", "/schedules")
    await rows.nth(1).locator("[data-target] a").click()
    await page.wait_for_url(f"**/queues/{QUEUE}/jobs/{job_id}")
    await app.close()
