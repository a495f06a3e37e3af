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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The async tests of this directory run on the session loop (the browser's)."""
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("asyncio"):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


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
