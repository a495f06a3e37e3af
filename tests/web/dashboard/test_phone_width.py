"""At phone width no page scrolls sideways: wide tables scroll inside their card."""

from __future__ import annotations

from corral import Corral
from tests.web.conftest import LiveServer
from tests.web.dashboard.conftest import Pages


async def test_pages_fit_a_phone(pages: Pages, server: LiveServer, corral: Corral) -> None:
    job = await corral.enqueue("web.echo", [1])
    await corral.schedules.add("weekly-sales-report", "web.echo", cron="0 9 * * 1")
    await corral.record_audit("ops-laptop", "job.retry", f"{job.queue}/{job.id}", {"n": 1})
    page = await pages.new(width=390, height=800)
    for path in ("/", "/schedules", "/workers", "/enqueue", "/audit"):
        await page.goto(server.url + path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
