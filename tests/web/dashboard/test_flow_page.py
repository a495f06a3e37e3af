"""The flow page: jobs in columns by depth with their states, the edges with their
policies, refreshed while the flow runs."""

from __future__ import annotations

from playwright.async_api import Page, expect

from corral import Corral, Dep, Flow
from corral.web.dashboard.flow_page import columns
from tests.web.conftest import LiveServer, Workers
from tests.web.dashboard.conftest import Pages


def test_columns_put_each_job_right_of_what_it_waits_for() -> None:
    flow = {
        "jobs": [{"name": n} for n in ("d", "a", "b", "c")],
        "edges": [
            {"from": "a", "to": "b"},
            {"from": "b", "to": "d"},
            {"from": "a", "to": "c"},
            {"from": "c", "to": "d"},
        ],
    }
    assert [[j["name"] for j in col] for col in columns(flow)] == [["a"], ["b", "c"], ["d"]]


async def test_a_flow_is_drawn_and_follows_its_run(
    page: Page, pages: Pages, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    pages.allow("status of 404")  # the unknown flow at the end
    flow = Flow()
    fetch = flow.add(corral.call("web.echo", [1]), name="fetch")
    bad = flow.add(corral.call("web.fail", ["no menu"]), name="menu", after=[fetch])
    flow.add(corral.call("web.echo"), name="report", after=[fetch, Dep(bad, on_failure="ignore")])
    run = await corral.start_flow(flow, flow_id="dash-1")
    await page.goto(f"{server.url}/flows/dash-1")
    await expect(page.locator("[data-flow-state]")).to_have_text("running")
    await expect(page.locator(".flow-column")).to_have_count(3)
    await expect(page.locator("[data-job=report] [data-state]")).to_have_text("blocked")
    await expect(page.locator("[data-edge=menu-report]")).to_contain_text("ignore")
    workers.start()
    assert await run.wait(timeout=10) == "completed"
    await expect(page.locator("[data-flow-state]")).to_have_text("completed", timeout=10_000)
    await expect(page.locator("[data-job=menu] [data-state]")).to_have_text("failed")
    await expect(page.locator("[data-progress]")).to_have_text("3 of 3 jobs ended.")
    response = await page.goto(f"{server.url}/flows/nope")
    assert response is not None and response.status == 404
