"""The overview's pause/resume per queue (CSRF-protected forms, admin scope as in the
API) and its
charts of recent outcomes, in real Chromium and over plain HTTP."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect

from corral import Corral
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import (
    ADMIN_KEY,
    API_KEYS,
    READ_KEY,
    WRITE_KEY,
    LiveServer,
    Serve,
    Workers,
    sse_events,
    wait_until,
)
from tests.web.dashboard.conftest import log_in


async def session(http: httpx.AsyncClient) -> str:
    """Open a session (no keys: anonymous admin) and return its CSRF token."""
    page = await http.get("/")
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def test_pause_and_resume_from_the_overview(
    page: Page, serve: Serve, url: str, corral: Corral
) -> None:
    await corral.enqueue("web.echo", [1])
    server = serve(build_app(url), api_keys=API_KEYS)
    await log_in(page, server, ADMIN_KEY)
    row = page.locator(f"tr[data-queue={QUEUE}]")
    await expect(row.locator(".if-paused.badge")).to_be_hidden()
    await row.locator("button[data-action=pause]").click()
    await expect(page.locator(".flash")).to_contain_text(f"Queue {QUEUE} paused")
    await expect(row).to_have_attribute("data-paused", "1")
    await expect(row.locator(".if-paused.badge")).to_be_visible()
    await expect(row.locator("button[data-action=pause]")).to_be_hidden()
    assert (await corral.queue(QUEUE).counts())["paused"] == 1
    await row.locator("button[data-action=resume]").click()
    await expect(page.locator(".flash")).to_contain_text(f"Queue {QUEUE} resumed")
    await expect(row).to_have_attribute("data-paused", "0")
    assert (await corral.queue(QUEUE).counts())["paused"] == 0


@pytest.mark.parametrize("key", [READ_KEY, WRITE_KEY], ids=["read", "write"])
async def test_a_key_below_admin_sees_no_pause_button_and_cannot_post_one(
    page: Page, serve: Serve, url: str, corral: Corral, key: str
) -> None:
    await corral.enqueue("web.echo", [1])
    server = serve(build_app(url), api_keys=API_KEYS)
    await log_in(page, server, key)
    await expect(page.locator(f"tr[data-queue={QUEUE}] [data-count=waiting]")).to_have_text("1")
    assert await page.locator("button[data-action]").count() == 0
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        refused = await http.post(f"/queues/{QUEUE}/pause", data={"csrf": csrf})
    assert refused.status_code == 403 and "admin is needed" in refused.text
    assert (await corral.queue(QUEUE).counts())["paused"] == 0


async def test_pause_checks_its_token_and_its_queue(server: LiveServer, corral: Corral) -> None:
    await corral.enqueue("web.echo", [1])
    async with httpx.AsyncClient(base_url=server.url) as http:
        csrf = await session(http)
        forged = await http.post(f"/queues/{QUEUE}/pause", data={"csrf": "forged"})
        assert forged.status_code == 403 and "security token" in forged.text
        unknown = await http.post("/queues/nosuchqueue/pause", data={"csrf": csrf})
        assert unknown.status_code == 404 and "no queue named" in unknown.text
        bad = await http.post("/queues/bad%20name/pause", data={"csrf": csrf})
        assert bad.status_code == 422 and "queue" in bad.text
        assert "nosuchqueue" not in await corral.queues()
        assert (await corral.queue(QUEUE).counts())["paused"] == 0
        done = await http.post(f"/queues/{QUEUE}/pause", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"] == f"/?paused={QUEUE}"
        assert (await corral.queue(QUEUE).counts())["paused"] == 1


async def test_a_pause_reaches_the_other_tabs_at_once(server: LiveServer, corral: Corral) -> None:
    await corral.enqueue("web.echo", [1])
    live = server.server.config.app.state.corral_live
    live.refresh, live.interval = 60.0, 0.1  # only the poke can make it read again
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        csrf = await session(http)
        async with http.stream("GET", "/live") as stream:
            events = sse_events(stream)
            first = await anext(events)
            assert first.name == "counts" and first.data["queues"][0]["paused"] is False
            await http.post(f"/queues/{QUEUE}/pause", data={"csrf": csrf})
            second = await anext(events)
            assert second.name == "counts" and second.data["queues"][0]["paused"] is True


async def test_history_json_and_its_span(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        hour = await http.get("/overview/history")
        assert hour.status_code == 200 and len(hour.json()["points"]) == 60
        day = await http.get("/overview/history?span=day")
        assert len(day.json()["points"]) == 96
        bad = await http.get("/overview/history?span=week")
        assert bad.status_code == 422 and "span" in bad.text


async def test_charts_show_the_recent_outcomes(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    workers.start()
    await corral.enqueue("web.echo", [1])
    await corral.enqueue("web.echo", [2])
    await corral.enqueue("web.fail", ["boom"])

    async def settled() -> bool:
        counts = await corral.queue(QUEUE).counts()
        return (counts["completed"], counts["failed"]) == (2, 1)

    await wait_until(settled)
    await page.goto(server.url + "/")
    history = page.locator("#history")
    await expect(history).to_have_attribute("data-loaded", "3")
    await expect(history.locator("[data-totals]")).to_have_text("2 completed, 1 failed")
    assert await page.locator("#chart-outcomes canvas").count() == 1
    assert await page.locator("#chart-p95 canvas").count() == 1
    await page.goto(server.url + "/?span=day")
    await expect(page.locator("#history")).to_have_attribute("data-loaded", "3")
    await expect(page.locator("#history h2")).to_have_text("All queues, last day")
