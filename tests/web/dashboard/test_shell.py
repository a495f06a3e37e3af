"""The dashboard's frame: login with keys, CSRF, security headers, escaping, mounting."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect

from corral import Corral
from corral.web import create_app
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, READ_KEY, LiveServer, Serve
from tests.web.dashboard.conftest import Pages, log_in


async def test_overview_lists_queues_without_keys(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await corral.enqueue("web.echo", [1])
    await page.goto(server.url + "/")
    row = page.locator(f"tr[data-queue={QUEUE}]")
    await expect(row.locator("[data-count=waiting]")).to_have_text("1")


async def test_keys_require_login_and_a_wrong_key_is_refused(
    pages: Pages, serve: Serve, url: str
) -> None:
    pages.allow("status of 401")
    page = await pages.new()
    server = serve(build_app(url), api_keys=API_KEYS)
    await page.goto(server.url + "/?state=failed")
    assert page.url.endswith("/login?next=%2F%3Fstate%3Dfailed")
    await page.fill("#key", "not-a-key-of-this-server")
    await page.click("button[type=submit]")
    await expect(page.locator(".flash.error")).to_contain_text("not one of this server's keys")
    await page.fill("#key", READ_KEY)
    await page.click("button[type=submit]")
    assert page.url == server.url + "/?state=failed"
    cookie = next(c for c in await page.context.cookies() if c["name"] == "corral_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert READ_KEY not in cookie["value"]


async def test_read_key_sees_no_write_sections(page: Page, serve: Serve, url: str) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    await log_in(page, server, READ_KEY)
    await expect(page.locator("nav.nav")).not_to_contain_text("Enqueue")
    await expect(page.locator("nav.nav")).not_to_contain_text("Audit")


async def test_post_without_csrf_token_is_refused(page: Page, serve: Serve, url: str) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    await log_in(page, server, ADMIN_KEY)
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        refused = await http.post("/logout", data={})
        assert refused.status_code == 403
        assert "security token" in refused.text
        wrong = await http.post("/logout", data={"csrf": "forged"})
        assert wrong.status_code == 403


async def test_pages_carry_a_strict_csp(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.get("/")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert answer.headers["x-frame-options"] == "DENY"


async def test_script_in_a_queue_name_or_argument_is_inert(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await corral.enqueue(
        "web.echo", ["<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"]
    )
    await page.goto(server.url + "/")
    assert await page.evaluate("window.pwned") is None


@pytest.mark.parametrize("prefix", ["/admin/queues"])
async def test_mounted_at_a_prefix(page: Page, url: str, prefix: str) -> None:
    outer = FastAPI()
    outer.mount(prefix, create_app(build_app(url), api_keys=API_KEYS))
    server = LiveServer(outer).start()
    try:
        await page.goto(f"{server.url}{prefix}/")
        assert page.url == f"{server.url}{prefix}/login?next=%2F"
        await page.fill("#key", ADMIN_KEY)
        await page.click("button[type=submit]")
        assert page.url == f"{server.url}{prefix}/"
        await expect(page.locator("a.brand")).to_have_attribute("href", f"{prefix}/")
        async with httpx.AsyncClient(base_url=server.url) as http:
            api = await http.get(
                f"{prefix}/api/v1/queues", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            )
        assert api.status_code == 200
    finally:
        await page.goto("about:blank")  # closes the page's live stream before the stop
        server.stop()
        server.join()
