"""The live overview in real Chromium: counts change in place after an enqueue, and the
page reconnects by itself after a server restart (the header's dot shows it)."""

from __future__ import annotations

import socket
import threading

import pytest
from playwright.async_api import Page, expect

from corral import Corral
from corral.web import create_app
from corral.web.dashboard.live import LiveHub
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import LiveServer
from tests.web.dashboard.conftest import Pages


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


def quick(server: LiveServer) -> LiveServer:
    live: LiveHub = server.server.config.app.state.corral_live
    live.interval, live.retry_ms = 0.1, 200
    return server


class ServerOnPort(LiveServer):
    """A LiveServer on a given port: the same address again, as after a restart."""

    def __init__(self, app: object, port: int) -> None:
        super().__init__(app)
        self.sock.close()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )


async def test_overview_counts_change_live_after_an_enqueue(
    page: Page, server: LiveServer, corral: Corral
) -> None:
    await corral.enqueue("web.echo", [1])
    quick(server)
    await page.goto(server.url + "/")
    await expect(page.locator("#live-dot")).to_have_class("live-dot on")
    waiting = page.locator(f"tr[data-queue={QUEUE}] [data-count=waiting]")
    await expect(waiting).to_have_text("1")
    await page.evaluate(
        "window.heard = 0; document.addEventListener('corral:counts', () => window.heard++)"
    )
    await corral.enqueue("web.echo", [2])
    await expect(waiting).to_have_text("2")  # no reload: the same document
    assert await page.evaluate("window.heard") >= 1
    # A queue born while the page is open gets a row of its own.
    await corral.enqueue("web.echo", [3], queue="newcomer")
    await expect(page.locator("tr[data-queue=newcomer] [data-count=waiting]")).to_have_text("1")


async def test_the_page_reconnects_after_a_server_restart(pages: Pages, sqlite_url: str) -> None:
    # The first server goes down hard (its open streams cut, as in a crash) and comes
    # back on the same port: the browser's retries meet refused connections meanwhile.
    pages.allow("ERR_CONNECTION_REFUSED")
    pages.allow("ERR_INCOMPLETE_CHUNKED_ENCODING")
    page = await pages.new()
    corral = build_app(sqlite_url)
    first = quick(LiveServer(create_app(build_app(sqlite_url))).start())
    first.server.config.timeout_graceful_shutdown = 0.1
    second: LiveServer | None = None
    try:
        await page.goto(first.url + "/")
        dot = page.locator("#live-dot")
        await expect(dot).to_have_attribute("data-state", "open")
        first.stop()
        first.join()
        await expect(dot).not_to_have_attribute("data-state", "open")
        await expect(dot).to_have_class("live-dot off")
        second = quick(ServerOnPort(create_app(build_app(sqlite_url)), first.port).start())
        await expect(dot).to_have_attribute("data-state", "open")
        await corral.enqueue("web.echo", [1])
        await expect(page.locator(f"tr[data-queue={QUEUE}] [data-count=waiting]")).to_have_text("1")
    finally:
        await corral.close()
        first.stop()
        if second is not None:
            second.server.config.timeout_graceful_shutdown = 0.1
            second.stop()
            second.join()
