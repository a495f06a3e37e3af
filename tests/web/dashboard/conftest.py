"""Real headless Chromium (Debian's package, driven by Playwright) against a real
dashboard server on loopback.

Every page a test opens is watched: a console error (a Content-Security-Policy
violation, a script error, a failed asset) fails the test at teardown.

One Chromium serves the whole session (launching one per test cost ~0.5 s each); every
test still gets fresh browser contexts (own cookies, storage and cache). Playwright's
objects belong to the event loop that started them, so the tests here and their async
fixtures run on pytest-asyncio's session loop.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from corral import Corral
from tests.web.apps import build_app
from tests.web.conftest import LiveServer, Serve, Workers

HERE = Path(__file__).parent

CHROMIUM = os.environ.get("CORRAL_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        message = f"{CHROMIUM} not found: install Debian's chromium (scripts/test does as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


#: The browser tests that run in the inner loop: a smoke test per page family (module),
#: so a page that breaks still turns a test red there. Every other test here that opens
#: a browser is marked slow (CI runs them all). tests/web/dashboard/test_smoke_names.py
#: checks that each name is a test of its module.
SMOKE = {
    "test_audit_page.py::test_entries_newest_first_with_targets_linked",
    "test_enqueue_page.py::test_enqueue_with_options_links_to_the_new_job",
    "test_flow_page.py::test_a_flow_is_drawn_with_arrows_between_its_boxes_and_follows_its_run",
    "test_job_page.py::test_progress_updates_live_while_a_worker_runs_the_task",
    "test_jobs_pages_on_redis.py::test_tabs_count_each_state_and_paging_reads_every_job_once",
    "test_live_browser.py::test_overview_counts_change_live_after_an_enqueue",
    "test_notify_page.py::test_lists_states_and_an_admin_enables_them",
    "test_overview_actions.py::test_pause_and_resume_from_the_overview",
    "test_phone_width.py::test_pages_fit_a_phone",
    "test_queue_page.py::test_tabs_count_each_state_and_paging_reads_every_job_once",
    "test_schedules_page.py::test_admin_pauses_resumes_and_runs_a_schedule_now",
    "test_search_and_bulk.py::test_search_is_bounded_continues_and_bulk_applies_to_all_matching",
    "test_shell.py::test_keys_require_login_and_a_wrong_key_is_refused",
    "test_shell.py::test_post_without_csrf_token_is_refused",
    "test_shell.py::test_script_in_a_queue_name_or_argument_is_inert",
    "test_user_flows.py::test_a_failed_job_is_retried_from_its_page_and_completes_live",
    "test_workers_page.py::test_a_worker_with_a_job_in_hand",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The async tests of this directory run on the session loop (the browser's); the
    browser tests outside :data:`SMOKE` are marked slow."""
    for item in items:
        if not item.path.is_relative_to(HERE):
            continue
        if item.get_closest_marker("asyncio"):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)
        function = getattr(item, "originalname", item.name)
        uses_browser = "browser" in getattr(item, "fixturenames", ())
        if uses_browser and f"{item.path.name}::{function}" not in SMOKE:
            item.add_marker(pytest.mark.slow)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _chromium(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(_chromium: Browser) -> AsyncIterator[Browser]:
    """The session's Chromium; the contexts a test opened are closed after it."""
    assert _chromium.is_connected(), "Chromium crashed in an earlier test"
    yield _chromium
    for context in list(_chromium.contexts):
        await context.close()


# The async fixtures of tests/web/conftest.py, on the session loop like the tests here.


@pytest_asyncio.fixture(loop_scope="session")
async def corral(url: str) -> AsyncIterator[Corral]:
    """The test's own app instance on the same backend (for workers and direct checks)."""
    app = build_app(url)
    try:
        yield app
    finally:
        await app.close()


@pytest_asyncio.fixture(loop_scope="session")
async def workers(corral: Corral) -> AsyncIterator[Workers]:
    running = Workers(corral)
    try:
        yield running
    finally:
        await running.stop_all()


@pytest_asyncio.fixture(loop_scope="session")
async def client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        yield http


class Pages:
    """Opens pages (light or dark, desktop or phone width) and collects console errors."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []
        self.allowed: list[str] = []

    def allow(self, text: str) -> None:
        """A console error containing ``text`` is expected (say, a 401 answer)."""
        self.allowed.append(text)

    async def new(
        self, *, dark: bool = False, width: int = 1280, height: int = 800, **options: Any
    ) -> Page:
        context = await self.browser.new_context(
            color_scheme="dark" if dark else "light",
            viewport={"width": width, "height": height},
            **options,
        )
        self.contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(10_000)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def pages(browser: Browser, serve: Serve) -> AsyncIterator[Pages]:
    # Asking for ``serve`` first makes its teardown (stopping the servers) run after the
    # pages close: a page left on a live view may still be fetching from its server.
    opened = Pages(browser)
    try:
        yield opened
    finally:
        await opened.close()
    errors = [e for e in opened.errors if not any(a in e for a in opened.allowed)]
    assert not errors, "browser console errors:\n" + "\n".join(errors)


@pytest_asyncio.fixture(loop_scope="session")
async def page(pages: Pages) -> Page:
    """A light, 1280 px wide page."""
    return await pages.new()


async def log_in(page: Page, server: LiveServer, key: str, path: str = "/") -> None:
    """Log in through the form, as a person would."""
    await page.goto(f"{server.url}{path}")
    await page.fill("#key", key)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


Login = Callable[[Page, LiveServer, str], Any]
