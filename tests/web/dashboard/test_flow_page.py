"""The flow pages: ``/flows/<id>`` draws the jobs as boxes in columns by depth and the
edges as arrows between them (with their policies), follows the run, links each box to
its job; a flow job's page links back; ``/flows`` lists flows newest first."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from corral import Corral, Dep, Flow
from corral.web.dashboard.flow_graph import COLUMN_BOXES, layout
from corral.web.dashboard.flow_page import columns
from tests.web.conftest import LiveServer, Workers
from tests.web.dashboard.conftest import Pages

#: Reads every arrow's end points and every box, in page pixels (the SVG may be scaled).
ARROWS_JS = """() => {
  const box = (name) => {
    const r = document.querySelector(`[data-job="${name}"] .flow-box`).getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  };
  return [...document.querySelectorAll("path.flow-edge")].map((p) => {
    const m = p.getScreenCTM();
    const at = (l) => {
      const q = p.getPointAtLength(l);
      return {x: q.x * m.a + q.y * m.c + m.e, y: q.x * m.b + q.y * m.d + m.f};
    };
    const marker = (p.getAttribute("marker-end") || "").slice(5, -1);
    return {
      from: p.dataset.from, to: p.dataset.to, start: at(0), end: at(p.getTotalLength()),
      a: box(p.dataset.from), b: box(p.dataset.to),
      head: marker !== "" && document.getElementById(marker) !== null,
    };
  });
}"""


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


def test_a_wide_column_shows_its_first_jobs_and_one_box_for_the_rest() -> None:
    pages = [f"page-{n}" for n in range(60)]
    flow = {
        "jobs": [
            {"name": n, "queue": "q", "id": n, "state": "completed", "task": "t"}
            for n in ["fetch", *pages, "total"]
        ],
        "edges": [
            *(
                {"from": "fetch", "to": p, "on_failure": "fail", "pass_result": False}
                for p in pages
            ),
            *(
                {"from": p, "to": "total", "on_failure": "skip", "pass_result": False}
                for p in pages
            ),
        ],
    }
    flow["jobs"][5]["state"] = "failed"  # page-4: among the boxes drawn
    flow["jobs"][50]["state"] = "failed"  # page-49: in the rest
    graph = layout(flow, lambda queue, job_id: f"/queues/{queue}/jobs/{job_id}")
    column = [n for n in graph.nodes if n.depth == 1]
    assert len(column) == COLUMN_BOXES
    rest = column[-1]
    assert (rest.name, rest.label, rest.href) == ("+1", f"{61 - COLUMN_BOXES} more jobs", None)
    assert rest.detail == f"{60 - COLUMN_BOXES} completed, 1 failed"
    pairs = [(e.source, e.target) for e in graph.edges]
    assert len(pairs) == len(set(pairs)) == 2 * COLUMN_BOXES  # one arrow per pair of boxes
    assert ("fetch", "+1") in pairs and ("+1", "total") in pairs
    assert {e.policy for e in graph.edges if e.target == "total"} == {"skip"}
    assert graph.height < 30 * 80  # not 60 boxes tall


def _touches(arrow: dict[str, Any]) -> bool:
    """The arrow leaves its dependency's box at the right edge and ends on its
    dependent's left edge, each within the box's height (1 px of rounding)."""
    start, end, a, b = arrow["start"], arrow["end"], arrow["a"], arrow["b"]
    return (
        abs(start["x"] - a["right"]) <= 1
        and a["top"] < start["y"] < a["bottom"]
        and abs(end["x"] - b["left"]) <= 1
        and b["top"] < end["y"] < b["bottom"]
    )


async def test_a_flow_is_drawn_with_arrows_between_its_boxes_and_follows_its_run(
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
    depths = {
        name: await page.locator(f"[data-job={name}]").get_attribute("data-depth")
        for name in ("fetch", "menu", "report")
    }
    assert depths == {"fetch": "0", "menu": "1", "report": "2"}
    await expect(page.locator("[data-job=report] [data-state]")).to_have_text("blocked")
    await expect(page.locator("[data-edge-label=menu-report]")).to_have_text("ignore")
    await expect(page.locator("[data-edge-label]")).to_have_count(1)  # "fail" is not written
    await expect(page.locator("tr[data-edge=menu-report]")).to_contain_text("ignore")
    arrows = await page.evaluate(ARROWS_JS)
    assert sorted((a["from"], a["to"]) for a in arrows) == [
        ("fetch", "menu"),
        ("fetch", "report"),
        ("menu", "report"),
    ]
    assert all(_touches(a) and a["head"] for a in arrows), arrows
    workers.start()
    assert await run.wait(timeout=10) == "completed"
    await expect(page.locator("[data-flow-state]")).to_have_text("completed", timeout=10_000)
    await expect(page.locator("[data-job=menu] [data-state]")).to_have_text("failed")
    await expect(page.locator("[data-progress]")).to_have_text("3 of 3 jobs ended.")
    await expect(page.locator("path[data-edge=fetch-menu]")).to_have_class(
        "flow-edge edge-completed policy-fail"
    )
    assert all(_touches(a) for a in await page.evaluate(ARROWS_JS))  # redrawn, still joined
    response = await page.goto(f"{server.url}/flows/nope")
    assert response is not None and response.status == 404


async def test_boxes_link_to_their_jobs_and_a_flow_job_links_back(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    flow = Flow()
    fetch = flow.add(corral.call("web.echo", [1]), name="fetch")
    flow.add(corral.call("web.echo"), name="parse", after=[Dep(fetch, on_failure="skip")])
    run = await corral.start_flow(flow, flow_id="dash-2")
    await page.goto(f"{server.url}/flows/dash-2")
    await page.locator("[data-job=parse] a").click()
    parse = run.jobs["parse"]
    assert parse is not None
    await expect(page).to_have_url(f"{server.url}/queues/{parse.queue}/jobs/{parse.id}")
    await expect(page.locator("[data-waits-for] [data-job-link=fetch]")).to_be_visible()
    await expect(page.locator("[data-waits-for]")).to_contain_text("on failure: skip")
    await page.locator("[data-job-link=fetch]").click()
    await expect(page.locator("[data-needed-by] [data-job-link=parse]")).to_be_visible()
    await page.locator("#flow-link").click()
    await expect(page).to_have_url(f"{server.url}/flows/dash-2")
    lone = await corral.enqueue("web.echo", [1])
    await page.goto(f"{server.url}/queues/{lone.queue}/jobs/{lone.id}")
    await expect(page.locator("#job-flow")).to_have_count(0)


async def test_the_flows_list_is_newest_first_paged_and_linked_from_the_nav(
    page: Page, pages: Pages, server: LiveServer, corral: Corral
) -> None:
    pages.allow("status of 422")  # the made-up cursor at the end
    await page.goto(f"{server.url}/")
    await page.get_by_role("link", name="Flows", exact=True).click()
    await expect(page).to_have_url(f"{server.url}/flows")
    await expect(page.locator(".empty-state")).to_contain_text("No flows yet")
    for n in range(22):
        flow = Flow()
        a = flow.add(corral.call("web.echo", [n]), name="a")
        flow.add(corral.call("web.echo"), name="b", after=[a])
        await corral.start_flow(flow, flow_id=f"list-{n:02d}")
    await page.reload()
    rows = page.locator("#flows-table tbody tr")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_have_attribute("data-flow", "list-21")
    await expect(rows.first.locator("[data-flow-state]")).to_have_text("running")
    await expect(rows.first.locator("[data-progress]")).to_have_text("0/2")
    await page.locator("#flows-older").click()
    await expect(rows).to_have_count(2)
    assert [await r.get_attribute("data-flow") for r in await rows.all()] == [
        "list-01",
        "list-00",
    ]
    await expect(page.locator("#flows-older")).to_have_count(0)
    await rows.first.get_by_role("link").click()
    await expect(page).to_have_url(f"{server.url}/flows/list-01")
    response = await page.goto(f"{server.url}/flows?cursor=nonsense")
    assert response is not None and response.status == 422
    await expect(page.locator("main")).to_contain_text("cursor")


async def test_a_writer_cancels_and_retries_a_flow_from_its_page(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    flow = Flow()
    a = flow.add(corral.call("web.echo", [1]), name="a")
    flow.add(corral.call("web.echo"), name="b", after=[a])
    run = await corral.start_flow(flow, flow_id="dash-3")
    await page.goto(f"{server.url}/flows/dash-3")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.locator("#flow-cancel").click()
    await expect(page.locator(".flash")).to_contain_text("Cancel requested")
    await expect(page.locator("[data-flow-state]")).to_have_text("cancelled")
    await page.locator("#flow-retry").click()
    await expect(page.locator(".flash")).to_contain_text("Retried")
    workers.start()
    assert await run.wait(timeout=10) == "completed"
    entries = await corral.audit_entries()
    assert {"flow.cancel", "flow.retry"} <= {e.action for e in entries}
