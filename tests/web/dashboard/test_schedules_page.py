"""The schedules page: every schedule in words with its fire times; run now, pause and
resume with the API's scopes."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from corral import Corral
from corral.web.dashboard.schedules_page import cron_words, interval_words
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, READ_KEY, WRITE_KEY, LiveServer, Serve
from tests.web.dashboard.conftest import Pages, log_in


def test_intervals_and_cron_in_words() -> None:
    assert interval_words(300) == "Every 5 minutes"
    assert interval_words(3600) == "Every hour"
    assert interval_words(90) == "Every 90 seconds"
    assert interval_words(0.5) == "Every 0.5 seconds"
    assert cron_words("0 9 * * 1") == "At 09:00, only on Monday"
    assert cron_words("@daily") == "At 00:00"


async def test_no_schedules_says_how_to_make_one(page: Page, server: LiveServer) -> None:
    await page.goto(server.url + "/schedules")
    empty = page.locator("#no-schedules")
    await expect(empty).to_contain_text("No schedules yet")
    await expect(empty).to_contain_text('cron="0 9 * * 1"')


async def test_schedules_in_words_with_fire_times(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await corral.schedules.add("weekly", "web.echo", cron="0 9 * * 1", args=["w"])
    await corral.schedules.add("often", "web.echo", every=300, tz="UTC")
    await corral.schedules.add("paris", "web.echo", cron="30 7 * * *", tz="Europe/Paris")
    next_at = (await corral.schedules.get("weekly")).next_run_at
    assert next_at is not None
    await page.goto(server.url + "/schedules")
    weekly = page.locator("tr[data-schedule=weekly]")
    await expect(weekly.locator("[data-words]")).to_contain_text("At 09:00, only on Monday")
    await expect(weekly.locator("[data-next] time")).to_have_attribute(
        "datetime", next_at.isoformat()
    )
    await expect(weekly.locator("[data-last]")).to_contain_text("never")
    await expect(weekly).to_contain_text(QUEUE)
    often = page.locator("tr[data-schedule=often] [data-words]")
    await expect(often).to_contain_text("Every 5 minutes")
    paris = page.locator("tr[data-schedule=paris] [data-words]")
    await expect(paris).to_contain_text("At 07:30 (Europe/Paris)")


async def test_admin_pauses_resumes_and_runs_a_schedule_now(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await corral.schedules.add("weekly", "web.echo", cron="0 9 * * 1", args=["now"])
    await page.goto(server.url + "/schedules")
    row = page.locator("tr[data-schedule=weekly]")
    page.once("dialog", lambda dialog: dialog.accept())
    await row.locator("[data-action=pause]").click()
    await expect(page.locator(".flash.ok")).to_have_text("Schedule weekly paused.")
    await expect(row.locator("[data-paused]")).to_be_visible()
    await expect(row.locator("[data-next]")).to_contain_text("not while paused")
    assert (await corral.schedules.get("weekly")).spec.paused

    await row.locator("[data-action=resume]").click()
    await expect(page.locator(".flash.ok")).to_have_text("Schedule weekly resumed.")
    await expect(row.locator("[data-paused]")).to_have_count(0)
    assert not (await corral.schedules.get("weekly")).spec.paused

    await row.locator("[data-action=run]").click()
    await page.wait_for_url("**/jobs/weekly@now-*")
    job = await corral.get_job(page.url.rsplit("/", 1)[1], QUEUE)
    assert job.name == "web.echo" and job.args == ["now"]


async def test_scopes_and_csrf_on_schedule_actions(page: Page, serve: Serve, url: str) -> None:
    app = build_app(url)
    server = serve(app, api_keys=API_KEYS)
    await app.schedules.add("weekly", "web.echo", cron="0 9 * * 1")
    await log_in(page, server, READ_KEY, "/schedules")
    row = page.locator("tr[data-schedule=weekly]")
    await expect(row).to_contain_text("At 09:00")
    await expect(row.locator("button")).to_have_count(0)
    read_cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    csrf = await page.locator("meta[name=csrf-token]").get_attribute("content")

    writer = await page.context.browser.new_context()  # type: ignore[union-attr]
    write_page = await writer.new_page()
    await log_in(write_page, server, WRITE_KEY, "/schedules")
    await expect(write_page.locator("tr[data-schedule=weekly] button")).to_have_text(["Run now"])
    write_cookies = {c["name"]: c["value"] for c in await writer.cookies()}
    write_csrf = await write_page.locator("meta[name=csrf-token]").get_attribute("content")
    await writer.close()

    async with httpx.AsyncClient(base_url=server.url, cookies=read_cookies) as http:
        refused = await http.post("/schedules/weekly/run", data={"csrf": csrf})
        assert refused.status_code == 403 and "write is needed" in refused.text
    async with httpx.AsyncClient(base_url=server.url, cookies=write_cookies) as http:
        paused = await http.post("/schedules/weekly/pause", data={"csrf": write_csrf})
        assert paused.status_code == 403 and "admin is needed" in paused.text
        forged = await http.post("/schedules/weekly/run", data={})
        assert forged.status_code == 403 and "security token" in forged.text
    schedule = await app.schedules.get("weekly")
    assert not schedule.spec.paused
    assert sum((await app.queue(QUEUE).counts()).values()) == 0
    await app.close()


async def test_forged_admin_post_is_refused_and_an_unknown_schedule_is_a_404(
    page: Page, serve: Serve, url: str
) -> None:
    app = build_app(url)
    server = serve(app, api_keys=API_KEYS)
    await app.schedules.add("weekly", "web.echo", cron="0 9 * * 1")
    await log_in(page, server, ADMIN_KEY, "/schedules")
    csrf = await page.locator("meta[name=csrf-token]").get_attribute("content")
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        forged = await http.post("/schedules/weekly/pause", data={"csrf": "forged"})
        assert forged.status_code == 403 and "security token" in forged.text
        answer = await http.post("/schedules/nope/pause", data={"csrf": csrf})
    assert answer.status_code == 404 and "no schedule named" in answer.text
    assert not (await app.schedules.get("weekly")).spec.paused
    await app.close()


async def test_arguments_shown_with_secrets_masked_for_read_keys(
    pages: Pages, serve: Serve, url: str
) -> None:
    app = build_app(url)
    server = serve(app, api_keys=API_KEYS)
    await app.schedules.add(
        "nightly-login", "web.login", cron="@daily", args=["ann", "hunter2", "t1"]
    )
    await app.schedules.add(
        "digest", "web.secrets", every=60, args=[1], kwargs={"api_key": "k-123", "to": "ops"}
    )
    shown = {}
    for key in (ADMIN_KEY, READ_KEY):
        page = await pages.new()
        await log_in(page, server, key, "/schedules")
        shown[key] = [
            await page.locator(f"tr[data-schedule={name}] [data-arguments]").inner_text()
            for name in ("nightly-login", "digest")
        ]
    assert shown[ADMIN_KEY] == ['("ann", "hunter2", "t1")', '(1, api_key="k-123", to="ops")']
    # web.login(user, password, *tokens): named by the signature, as on the job page.
    assert shown[READ_KEY] == ['("ann", ***, ***)', '(1, api_key=***, to="ops")']
    await app.close()
