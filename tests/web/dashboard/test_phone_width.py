"""At phone width no page scrolls sideways: wide tables scroll inside their card."""

from __future__ import annotations

import orjson

from corral import Corral, chain
from tests.web.conftest import LiveServer
from tests.web.dashboard.conftest import Pages


async def test_pages_fit_a_phone(pages: Pages, server: LiveServer, corral: Corral) -> None:
    job = await corral.enqueue("web.echo", [1])
    await corral.schedules.add("weekly-sales-report", "web.echo", cron="0 9 * * 1")
    await corral.record_audit("ops-laptop", "job.retry", f"{job.queue}/{job.id}", {"n": 1})
    reason = "HTTP 503 from https://hooks.partner.example: upstream connect error " * 3
    state = {"label": "https://hooks.partner.example", "failing": True, "reason": reason}
    await (await corral.backend()).set_endpoint("webhook:0a1b2c3d4e5f6071", orjson.dumps(state))
    calls = [corral.call("web.echo", [1]), *(corral.call("web.echo") for _ in range(3))]
    await corral.start_flow(chain(*calls), flow_id="nightly-menu-sync-2026-12-04")
    page = await pages.new(width=390, height=800)
    flow_pages = ("/flows", "/flows/nightly-menu-sync-2026-12-04")
    for path in (
        "/",
        "/schedules",
        "/workers",
        "/notifications",
        "/enqueue",
        "/audit",
        *flow_pages,
    ):
        await page.goto(server.url + path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
