"""The enqueue page: a registered task, JSON arguments checked against its signature,
options; anything wrong shows the form again and stores nothing."""

from __future__ import annotations

import inspect

import httpx
from fastapi import FastAPI
from playwright.async_api import Page, expect

from corral import Corral, JobContext
from corral.backends.base import JobState
from corral.web import create_app
from corral.web.dashboard.enqueue_page import signature_text
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import API_KEYS, READ_KEY, WRITE_KEY, LiveServer, Serve
from tests.web.dashboard.conftest import Pages, log_in


def test_signatures_read_like_python() -> None:
    async def sync(ctx: JobContext, store: str, *tags: str, pages: int = 4) -> dict[str, int]:
        return {}

    signature = inspect.signature(sync)
    params = list(signature.parameters.values())[1:]
    shown = signature_text(signature.replace(parameters=params))
    assert shown == "(store: str, *tags: str, pages: int = 4)"


async def test_the_chosen_tasks_signature_shows_under_the_picker(
    page: Page, server: LiveServer
) -> None:
    await page.goto(server.url + "/enqueue?task=web.echo")
    line = page.locator("#enq-signature")
    await expect(line).to_have_text(f"web.echo(value: Any = None) → {QUEUE}")
    await page.select_option("#enq-task", "web.login")
    await expect(line).to_contain_text("web.login(user: str, password: str, *tokens: str)")
    await expect(page.locator("#enq-queue")).to_have_attribute("placeholder", QUEUE)


async def _stored(corral: Corral) -> int:
    return sum((await corral.queue(QUEUE).counts()).values())


async def test_enqueue_with_options_links_to_the_new_job(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await page.goto(server.url + "/enqueue")
    await page.select_option("#enq-task", "web.echo")
    await page.fill("#enq-kwargs", '{"value": {"order": 1001}}')
    await page.fill("#enq-priority", "5")
    await page.fill("#enq-delay", "60")
    await page.fill("#enq-group", "restaurant-42")
    await page.fill("#enq-dedupe", "order-1001")
    await page.click("#enqueue-submit")
    link = page.locator("#enqueued a")
    await expect(page.locator("#enqueued")).to_contain_text(f"Enqueued on {QUEUE}")
    job_id = await link.inner_text()
    job = await corral.get_job(job_id, QUEUE)
    assert job.name == "web.echo" and job.kwargs == {"value": {"order": 1001}}
    assert job.state is JobState.DELAYED and job.priority == 5
    assert job.group == "restaurant-42" and job.dedupe_key == "order-1001"
    await expect(page.locator("#enq-task")).to_have_value("web.echo")

    # The same dedupe key again: the standing job, not a second one.
    await page.fill("#enq-dedupe", "order-1001")
    await page.click("#enqueue-submit")
    await expect(page.locator("#enqueued")).to_contain_text("An existing job stands")
    await expect(link).to_have_text(job_id)
    assert await _stored(corral) == 1

    await link.click()
    await page.wait_for_url(f"**/queues/{QUEUE}/jobs/{job_id}")


async def test_bad_json_or_arguments_show_the_form_again_and_store_nothing(
    pages: Pages, server: LiveServer, corral: Corral
) -> None:
    pages.allow("status of 422")
    page = await pages.new()
    await page.goto(server.url + "/enqueue")
    await page.select_option("#enq-task", "web.login")
    await page.fill("#enq-args", '["ann", ')
    await page.click("#enqueue-submit")
    error = page.locator("#enqueue-error")
    await expect(error).to_contain_text("positional arguments: not valid JSON")
    await expect(page.locator("#enq-args")).to_have_value('["ann", ')
    await expect(page.locator("#enq-task")).to_have_value("web.login")

    await page.fill("#enq-args", '{"user": "ann"}')
    await page.click("#enqueue-submit")
    await expect(error).to_contain_text("positional arguments: must be a JSON list")

    await page.fill("#enq-args", '["ann"]')
    await page.click("#enqueue-submit")
    await expect(error).to_contain_text("task 'web.login': missing a required argument: 'password'")
    await page.fill("#enq-kwargs", '{"password": "pw", "colour": "red"}')
    await page.click("#enqueue-submit")
    await expect(error).to_contain_text("unexpected keyword argument 'colour'")
    assert await _stored(corral) == 0


async def test_bad_options_and_unknown_tasks_are_named(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await page.goto(server.url + "/enqueue")  # the session and its CSRF token
    csrf = await page.locator("meta[name=csrf-token]").get_attribute("content")
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    cases = {
        "priority: must be a whole number, got 'high'": {"task": "web.echo", "priority": "high"},
        "priority 5000 is out of range [-1000, 1000]": {"task": "web.echo", "priority": "5000"},
        "delay: must be a number of seconds": {"task": "web.echo", "delay": "soon"},
        "invalid queue name": {"task": "web.echo", "queue": "no spaces"},
        "no task named 'web.nope'": {"task": "web.nope"},
        "task: pick a task": {"task": ""},
    }
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as http:
        for message, form in cases.items():
            answer = await http.post("/enqueue", data={"csrf": csrf, **form})
            assert answer.status_code == 422, form
            assert message in answer.text.replace("&#39;", "'"), (message, answer.text[-600:])
    assert await _stored(corral) == 0


async def test_read_key_cannot_see_or_post_the_form(pages: Pages, serve: Serve, url: str) -> None:
    app = build_app(url)
    server = serve(app, api_keys=API_KEYS)
    pages.allow("status of 403")
    reader = await pages.new()
    await log_in(reader, server, READ_KEY, "/enqueue")
    await expect(reader.locator("h1")).to_have_text("Not allowed")
    await expect(reader.locator("main")).to_contain_text("write is needed")
    read_csrf = await reader.locator("meta[name=csrf-token]").get_attribute("content")
    read_cookies = {c["name"]: c["value"] for c in await reader.context.cookies()}

    writer = await pages.new()
    await log_in(writer, server, WRITE_KEY, "/enqueue")
    write_cookies = {c["name"]: c["value"] for c in await writer.context.cookies()}
    form = {"task": "web.echo", "args": "[1]"}
    async with httpx.AsyncClient(base_url=server.url, cookies=read_cookies) as http:
        refused = await http.post("/enqueue", data={"csrf": read_csrf, **form})
        assert refused.status_code == 403 and "write is needed" in refused.text
    async with httpx.AsyncClient(base_url=server.url, cookies=write_cookies) as http:
        forged = await http.post("/enqueue", data=form)
        assert forged.status_code == 403 and "security token" in forged.text
    assert await _stored(app) == 0
    await app.close()


async def test_an_app_without_tasks_says_so(page: Page, serve: Serve, url: str) -> None:
    server = serve(Corral(url))
    await page.goto(server.url + "/enqueue")
    await expect(page.locator("#no-tasks")).to_contain_text("registers no task")


async def test_any_task_name_when_the_server_allows_unregistered(
    page: Page, serve: Serve, url: str, corral: Corral
) -> None:
    server = serve(build_app(url), allow_unregistered=True)
    await page.goto(server.url + "/enqueue")
    await page.fill("#enq-task", "billing.invoice")
    await page.fill("#enq-queue", "billing")
    await page.fill("#enq-args", '[42, "EUR"]')
    await page.click("#enqueue-submit")
    job_id = await page.locator("#enqueued a").inner_text()
    job = await corral.get_job(job_id, "billing")
    assert job.name == "billing.invoice" and job.args == [42, "EUR"]


async def test_the_pages_work_mounted_at_a_prefix(page: Page, url: str) -> None:
    prefix = "/admin/queues"
    outer = FastAPI()
    outer.mount(prefix, create_app(build_app(url)))
    server = LiveServer(outer).start()
    try:
        await page.goto(f"{server.url}{prefix}/enqueue")
        await page.select_option("#enq-task", "web.echo")
        await page.click("#enqueue-submit")
        assert page.url.startswith(f"{server.url}{prefix}/enqueue?")
        await page.locator("#enqueued a").click()
        await page.wait_for_url(f"{server.url}{prefix}/queues/{QUEUE}/jobs/*")
        for name in ("Schedules", "Workers", "Audit"):
            await page.click(f"nav.nav a:text-is('{name}')")
            await page.wait_for_url(f"{server.url}{prefix}/{name.lower()}")
            await expect(page.locator("h1")).not_to_have_text("Not found")
    finally:
        await page.goto("about:blank")
        server.stop()
        server.join()
