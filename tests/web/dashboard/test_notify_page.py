"""The notifications page: disabled and failing endpoints with their reason, Enable
for admin keys (audited), nothing to act with for read keys; the overview's warning
while an endpoint is disabled."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
from playwright.async_api import Page, expect

from corral import Corral
from tests.web.apps import build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, READ_KEY, WRITE_KEY, LiveServer, Serve
from tests.web.dashboard.conftest import Pages, log_in

GONE = "webhook:0a1b2c3d4e5f6071"
FLAKY = "email:ops"
AT = 1_764_000_000.0


async def set_states(app: Corral) -> None:
    backend = await app.backend()
    gone = {"label": "https://hooks.example.com", "disabled": True, "reason": "answered 410 Gone"}
    flaky = {"label": "ops@example.com", "failing": True, "reason": "SMTP 451: try again later"}
    await backend.set_endpoint(GONE, orjson.dumps(gone | {"at": AT}))
    await backend.set_endpoint(FLAKY, orjson.dumps(flaky | {"at": AT + 60}))


async def test_every_endpoint_fine_says_how_to_attach_notifications(
    page: Page, server: LiveServer
) -> None:
    await page.goto(server.url + "/")
    await expect(page.locator("#queues")).to_be_visible()
    await expect(page.locator("#endpoints-warning")).to_have_count(0)
    await page.click("nav.nav a:text-is('Notifications')")
    await page.wait_for_url("**/notifications")
    empty = page.locator("#no-endpoints")
    await expect(empty).to_contain_text("Every endpoint is fine")
    await expect(empty).to_contain_text("Notifications")
    await expect(empty).to_contain_text("app.notify(Email(")
    await expect(page.locator("#notify-queue")).to_have_attribute("href", "/queues/corral.notify")


async def test_lists_states_and_an_admin_enables_them(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await set_states(corral)
    await page.goto(server.url + "/notifications")
    rows = page.locator("#endpoints tbody tr")
    # Disabled first: nothing reaches it until someone acts.
    await expect(rows).to_have_count(2)
    gone, flaky = rows.nth(0), rows.nth(1)
    await expect(gone).to_have_attribute("data-endpoint", GONE)
    await expect(gone.locator("[data-label]")).to_have_text("https://hooks.example.com")
    await expect(gone.locator("[data-state]")).to_have_text("disabled")
    await expect(gone.locator("[data-reason]")).to_have_text("answered 410 Gone")
    since = datetime.fromtimestamp(AT, UTC).isoformat()
    await expect(gone.locator("[data-since] time")).to_have_attribute("datetime", since)
    await expect(flaky.locator("[data-key]")).to_have_text(FLAKY)
    await expect(flaky.locator("[data-state]")).to_have_text("failing")
    await expect(flaky.locator("[data-reason]")).to_have_text("SMTP 451: try again later")

    await gone.locator("[data-action=enable]").click()
    flash = page.locator(".flash.ok")
    await expect(flash).to_contain_text(f"Endpoint {GONE} enabled")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-endpoint", FLAKY)
    assert [s.key for s in await corral.notify_endpoints()] == [FLAKY]
    [entry] = await corral.audit_entries(1)
    assert (entry.key, entry.action, entry.target) == ("anonymous", "notify.enable", GONE)

    await rows.first.locator("[data-action=enable]").click()
    await expect(page.locator("#no-endpoints")).to_be_visible()
    assert await corral.notify_endpoints() == []
    await page.goto(server.url + "/audit")
    link = page.locator("#audit tbody tr").first.locator("[data-target] a")
    await expect(link).to_have_attribute("href", "/notifications")


async def test_read_keys_see_no_button_and_forged_posts_are_refused(
    pages: Pages, serve: Serve, url: str
) -> None:
    app = build_app(url)
    server = serve(app, api_keys=API_KEYS)
    await set_states(app)
    sessions = {}
    for key in (READ_KEY, WRITE_KEY, ADMIN_KEY):
        page = await pages.new()
        await log_in(page, server, key, "/notifications")
        await expect(page.locator("#endpoints tbody tr")).to_have_count(2)
        buttons = page.locator("#endpoints [data-action=enable]")
        await expect(buttons).to_have_count(2 if key == ADMIN_KEY else 0)
        cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
        csrf = await page.locator("meta[name=csrf-token]").get_attribute("content")
        sessions[key] = (cookies, csrf)

    enable = f"/notifications/{GONE}/enable"
    for key in (READ_KEY, WRITE_KEY):
        cookies, csrf = sessions[key]
        async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
            refused = await http.post(enable, data={"csrf": csrf})
        assert refused.status_code == 403 and "admin is needed" in refused.text
    cookies, csrf = sessions[ADMIN_KEY]
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        forged = await http.post(enable, data={"csrf": "forged"})
        assert forged.status_code == 403 and "security token" in forged.text
        missing = await http.post(enable, data={})
        assert missing.status_code == 403 and "security token" in missing.text
        unknown = await http.post("/notifications/webhook:nope/enable", data={"csrf": csrf})
        assert unknown.status_code == 404 and "no endpoint" in unknown.text
    assert {s.key for s in await app.notify_endpoints()} == {GONE, FLAKY}
    assert await app.audit_entries(10) == []
    await app.close()


async def test_overview_warns_while_an_endpoint_is_disabled(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    backend = await corral.backend()
    failing = {"label": "ops@example.com", "failing": True, "reason": "timeout", "at": AT}
    await backend.set_endpoint(FLAKY, orjson.dumps(failing))
    await page.goto(server.url + "/")
    await expect(page.locator("#queues")).to_be_visible()
    # Failing endpoints are retried on their own: only a disabled one needs a person.
    await expect(page.locator("#endpoints-warning")).to_have_count(0)

    await set_states(corral)
    await page.reload()
    warning = page.locator("#endpoints-warning")
    await expect(warning).to_contain_text("1 notification endpoint is disabled")
    await warning.locator("a").click()
    await page.wait_for_url("**/notifications")
    await page.locator(f"tr[data-endpoint='{GONE}'] [data-action=enable]").click()
    await expect(page.locator(".flash.ok")).to_be_visible()
    await page.goto(server.url + "/")
    await expect(page.locator("#queues")).to_be_visible()
    await expect(page.locator("#endpoints-warning")).to_have_count(0)
