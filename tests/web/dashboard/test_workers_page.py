"""The workers page: each live worker with its jobs in hand; without one, a start command
that works as shown (run here for real)."""

from __future__ import annotations

import importlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from playwright.async_api import Page, expect

from corral import Corral, __version__
from corral.web.dashboard import workers_page
from corral.web.dashboard.workers_page import start_command
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import LiveServer, Serve, Workers, wait_until

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def shop(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A module of the user's, importable by name, holding the served app."""
    (tmp_path / "shop_tasks.py").write_text(
        "from tests.web.apps import build_app\napp = build_app()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CORRAL_URL", url)
    module = importlib.import_module("shop_tasks")
    yield module
    sys.modules.pop("shop_tasks", None)


def test_the_command_names_the_apps_module_and_an_absolute_sqlite_file(
    shop: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert start_command(shop.app)[1] is True
    assert start_command(Corral("sqlite:///jobs.db")) == (
        f"corral worker MODULE:APP --url sqlite:///{tmp_path / 'jobs.db'}",
        False,
    )
    secret = start_command(Corral("redis://user:hunter2@cache:6379/0"))
    assert "hunter2" not in secret[0] and secret[1] is False


async def test_no_worker_shows_a_start_command_that_works_as_shown(
    page: Page, serve: Serve, shop: ModuleType, tmp_path: Path
) -> None:
    server = serve(shop.app)
    await page.goto(server.url + "/workers")
    command = await page.locator("#no-workers #start-command").inner_text()
    assert command.startswith("corral worker shop_tasks:app --url sqlite:///")
    argv = shlex.split(command)
    assert argv[0] == "corral"
    environment = {k: v for k, v in os.environ.items() if k != "CORRAL_URL"}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path), str(ROOT), environment.get("PYTHONPATH", "")]
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "corral", *argv[1:], "--log-level", "warning"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def shown() -> bool:
            await page.reload()
            return await page.locator(".worker").count() == 1

        await wait_until(shown, timeout=20, interval=0.3)
        card = page.locator(".worker")
        await expect(card.locator(".worker-name")).to_contain_text(f"pid {worker.pid}")
        await expect(card.locator("[data-queues]")).to_have_text(QUEUE)
    finally:
        worker.terminate()
        worker.wait(10)


async def test_a_worker_with_a_job_in_hand(
    page: Page, server: LiveServer, corral: Corral, workers: Workers
) -> None:
    worker = workers.start(concurrency=3)
    job = await corral.enqueue("web.block", [30])

    async def holding() -> bool:
        return any(w.jobs == [(QUEUE, job.id)] for w in await corral.workers())

    await wait_until(holding)
    await page.goto(server.url + "/workers")
    card = page.locator(f"[data-worker='{worker.id}']")
    await expect(card.locator("[data-active]")).to_have_text("1")
    await expect(card).to_contain_text("of 3 busy")
    await expect(card.locator("[data-version]")).to_have_text(f"v{__version__}")
    await expect(card.locator("[data-queues] a")).to_have_text([QUEUE])
    await expect(card.locator(".worker-name")).to_contain_text(f"pid {os.getpid()}")
    await card.locator(f"[data-jobs] a:text-is('{job.id}')").click()
    await page.wait_for_url(f"**/queues/{QUEUE}/jobs/{job.id}")
    await expect(page.locator(".badge.state-active")).to_be_visible()
    await job.cancel()


async def test_an_app_built_in_a_function_gets_a_placeholder(
    page: Page, serve: Serve, url: str
) -> None:
    server = serve(build_app(url))
    await page.goto(server.url + "/workers")
    await expect(page.locator("#start-command")).to_contain_text("corral worker MODULE:APP --url")
    await expect(page.locator("#no-workers")).to_contain_text("Put in the import path")


async def test_the_list_refreshes_itself_when_a_worker_starts(
    page: Page, server: LiveServer, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers_page, "REFRESH_SECONDS", 1)
    await page.goto(server.url + "/workers")
    await expect(page.locator("#no-workers")).to_be_visible()
    worker = workers.start()
    await expect(page.locator(f"[data-worker='{worker.id}']")).to_be_visible(timeout=5000)
    await expect(page.locator("#no-workers")).to_have_count(0)
    await expect(page.locator("#workers")).to_have_count(1)  # swapped, not nested
