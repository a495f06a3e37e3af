"""Screenshots of every dashboard page, light and dark, for the README.

    python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

Builds a small shop on a temporary SQLite file (emails, order syncs, reports, webhooks
that fail, a CSV import in progress, schedules, audit entries, a disabled and a
failing notification endpoint, a store's nightly sync as a flow), runs two workers on it,
serves the dashboard on a free loopback port behind an admin key, logs in through the
form with headless Chromium (Playwright) and saves one PNG per page and colour scheme
(``prefers-color-scheme`` through Playwright's ``color_scheme``) as
``<page>-<light|dark>.png``. Needs the web extra and Playwright's Python package.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from corral import Corral, Dep, Flow, JobContext, NoRetry
from corral.web import create_app
from corral.web.auth import ApiKey, Scope
from corral.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
KEY = "screenshots-admin-key-0123456789"
#: The flags the dashboard tests use for Debian's Chromium (tests/web/dashboard/conftest.py).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH, HEIGHT = 1280, 800


def build_shop(url: str) -> Corral:
    """The demo app: a few queues of plausible work (the server and the workers each
    build their own instance on the same file)."""
    app = Corral(url)

    @app.task(name="emails.send", queue="emails")
    async def send_email(to: str, subject: str) -> dict[str, str]:
        await asyncio.sleep(0.01)
        return {"to": to, "message_id": f"<{abs(hash((to, subject))) % 10**8}@mail.example>"}

    @app.task(name="sync.orders", queue="sync")
    async def sync_orders(ctx: JobContext, store: str, pages: int = 4) -> dict[str, Any]:
        orders = 0
        for page in range(1, pages + 1):
            await asyncio.sleep(0.02)
            orders += 17 + page * 3
            await ctx.progress({"page": page, "pages": pages})
            await ctx.log(f"page {page}/{pages}: {orders} orders so far")
        return {"store": store, "orders": orders}

    @app.task(name="reports.build", queue="reports", cron="0 9 * * 1")
    async def build_report(month: str = "2026-11") -> dict[str, Any]:
        await asyncio.sleep(0.03)
        return {"month": month, "rows": 1284}

    @app.task(name="webhooks.deliver", queue="webhooks", attempts=3, backoff=0.05)
    async def deliver(ctx: JobContext, url: str, event: str) -> None:
        await asyncio.sleep(0.01)
        if ctx.attempt < 3:
            raise ConnectionError(f"503 Service Unavailable from {url}")
        raise NoRetry(f"410 Gone from {url}: the endpoint was removed")

    @app.task(name="imports.csv", queue="imports")
    async def import_csv(ctx: JobContext, file: str, rows: int = 10_000) -> int:
        await ctx.log(f"reading {file}: {rows:,} rows, 14 columns")
        for done in range(0, rows + 1, 100):
            await ctx.progress(round(done * 100 / rows))
            if done and done % 1000 == 0:
                await ctx.log(f"{done:,} rows imported, 0 rejected")
            await asyncio.sleep(0.5 if done >= 1600 else 0.005)
        return rows

    flow_tasks(app)
    return app


def flow_tasks(app: Corral) -> None:
    """The tasks of the nightly sync flow (see :func:`fill`)."""

    @app.task(name="sync.menu", queue="sync")
    async def sync_menu(store: str) -> dict[str, Any]:
        return {"store": store, "pages": 4}

    @app.task(name="sync.page", queue="sync")
    async def sync_page(page: int) -> int:
        await asyncio.sleep(0.01)
        return 40 + page

    @app.task(name="sync.prices", queue="sync", attempts=1)
    async def sync_prices(store: str) -> None:
        raise NoRetry(f"the price list of {store} is missing")

    @app.task(name="sync.total", queue="sync")
    async def sync_total(ctx: JobContext) -> int:
        results = await ctx.dependency_results()
        return sum(v for v in results.values() if isinstance(v, int))


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def fill(app: Corral) -> dict[str, str]:
    """Jobs in every state, schedules and audit entries; returns job ids worth a page."""
    stores = ["lisbon-01", "porto-02", "faro-03", "braga-04", "coimbra-05", "aveiro-06"]
    for n in range(24):
        await app.enqueue("emails.send", [f"customer{n}@example.com", "Your order has shipped"])
    for store in stores:
        await app.enqueue("sync.orders", [store], {"pages": 5}, group=store)
    for month in ("2026-09", "2026-10", "2026-11"):
        await app.enqueue("reports.build", [month])
    hooks = ["https://hooks.partner.example/orders", "https://crm.example/api/events"]
    failing = [
        await app.enqueue("webhooks.deliver", [hooks[n % 2], "order.paid"]) for n in range(5)
    ]
    await app.enqueue("emails.send", ["later@example.com", "Reminder"], delay=3600)
    await app.enqueue("reports.build", ["2026-12"], delay=86400, priority=5)
    importing = await app.enqueue("imports.csv", ["s3://shop-imports/2026-12-04/products.csv"])

    # A store's nightly sync as a flow: pages after the menu, the total after the pages
    # (and after the prices, whatever they do), an archive skipped when the prices fail,
    # then a slow import still running when the pages are shot.
    nightly = Flow()
    menu = nightly.add(app.call("sync.menu", ["lisbon-01"]), name="menu")
    pages = [
        nightly.add(app.call("sync.page", [n]), name=f"page-{n}", after=[menu]) for n in range(1, 5)
    ]
    prices = nightly.add(app.call("sync.prices", ["lisbon-01"]), name="prices", after=[menu])
    total = nightly.add(
        app.call("sync.total"), name="total", after=[*pages, Dep(prices, on_failure="ignore")]
    )
    nightly.add(
        app.call("reports.build", ["2026-12"]),
        name="archive",
        after=[Dep(prices, on_failure="skip")],
    )
    nightly.add(
        app.call("imports.csv", ["s3://shop-imports/2026-12-04/lisbon-01-menu.csv"]),
        name="import-menu",
        after=[total],
    )
    await app.start_flow(nightly, flow_id="nightly-lisbon-01-2026-12-04")

    await app.schedules.add("weekly-sales", "reports.build", cron="0 9 * * 1", args=["auto"])
    await app.schedules.add("orders-sync", "sync.orders", every=900, args=["all-stores"])
    await app.schedules.add(
        "nightly-digest",
        "emails.send",
        cron="30 2 * * *",
        tz="Europe/Lisbon",
        args=["ops@example.com", "Nightly digest"],
    )
    await app.schedules.add(
        "newsletter", "emails.send", cron="0 8 1 * *", args=["list@example.com", "News"]
    )
    await app.schedules.pause("newsletter")

    for who, action, target, detail in [
        ("deploy-bot", "queue.pause", "webhooks", {"reason": "partner maintenance"}),
        ("deploy-bot", "queue.resume", "webhooks", None),
        ("ana", "job.retry", f"webhooks/{failing[0].id}", None),
        ("ana", "job.enqueue", f"imports/{importing.id}", {"task": "imports.csv"}),
        ("ops-laptop", "queue.bulk", "webhooks", {"action": "retry", "matched": 3, "changed": 3}),
        ("ops-laptop", "schedule.pause", "newsletter", None),
        ("ana", "notify.enable", "webhook:5c0ffee4d2a17b39", None),
    ]:
        await app.record_audit(who, action, target, detail)

    # Endpoint states as deliveries leave them (corral.notify.deliver): one answered 410,
    # one mail server turns messages away for now.
    backend = await app.backend()
    now = time.time()
    for key, state in [
        (
            "webhook:9f2c4e1a7b3d5e60",
            {
                "label": "https://hooks.partner.example",
                "disabled": True,
                "reason": "https://hooks.partner.example answered 410 Gone",
                "at": now - 3 * 3600,
            },
        ),
        (
            "email:ops-alerts",
            {
                "label": "ops@example.com",
                "failing": True,
                "reason": "SMTP 451 4.7.1 from mail.example.com: greylisted, try again later",
                "at": now - 240,
            },
        ),
    ]:
        await backend.set_endpoint(key, orjson.dumps(state))
    return {"failed": failing[0].id, "importing": importing.id}


class Server:
    """uvicorn on a free loopback port, in a thread (as the dashboard tests run it)."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise SystemExit("screenshots: the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def settle(page: Page) -> None:
    await page.wait_for_load_state("load")
    # Local times, htmx swaps and chart sizing happen just after load.
    await page.wait_for_timeout(400)


async def shoot(
    browser: Browser, base: str, ids: dict[str, str], out: Path, scheme: str
) -> list[Path]:
    context = await browser.new_context(
        color_scheme=scheme,  # type: ignore[arg-type]
        viewport={"width": WIDTH, "height": HEIGHT},
        timezone_id="UTC",
        locale="en-GB",
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    saved: list[Path] = []

    async def save(name: str) -> None:
        path = out / f"{name}-{scheme}.png"
        await page.screenshot(path=str(path), full_page=True)
        saved.append(path)

    await page.goto(base + "/")
    await settle(page)
    await save("login")
    await page.fill("#key", KEY)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#queues")
    await page.wait_for_selector("#chart-outcomes .uplot")
    await settle(page)
    await save("overview")

    shots = [
        ("queue", "/queues/sync?state=completed"),
        ("queue-failed", "/queues/webhooks?state=failed"),
        ("job-failed", f"/queues/webhooks/jobs/{ids['failed']}"),
        ("job-active", f"/queues/imports/jobs/{ids['importing']}"),
        ("schedules", "/schedules"),
        ("workers", "/workers"),
        ("notifications", "/notifications"),
        ("enqueue", "/enqueue?task=sync.orders"),
        ("audit", "/audit"),
        ("flows", "/flows"),
        ("flow", "/flows/nightly-lisbon-01-2026-12-04"),
    ]
    for name, path in shots:
        await page.goto(base + path)
        await settle(page)
        await save(name)

    await page.goto(base + "/enqueue")
    await page.select_option("#enq-task", "sync.orders")
    await page.fill("#enq-args", '["lisbon-01"]')
    await page.fill("#enq-kwargs", '{"pages": 3, "dry_run": true}')
    await page.click("#enqueue-submit")
    await page.wait_for_selector("#enqueue-error")
    await settle(page)
    await save("enqueue-error")

    await context.close()
    if errors:
        raise SystemExit("screenshots: script errors on the pages:\n" + "\n".join(errors))
    return saved


async def main(out: Path, chromium: str) -> None:
    logging.getLogger("corral").setLevel(logging.WARNING)  # no line per demo job
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="corral-shots-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'shop.db'}"
        app = build_shop(url)
        ids = await fill(app)
        workers = [
            Worker(app, ["emails", "webhooks", "sync"], concurrency=8, heartbeat=1, block=0.5),
            Worker(app, ["reports", "imports"], concurrency=4, heartbeat=1, block=0.5),
        ]
        running = [asyncio.create_task(w.run()) for w in workers]

        async def busy() -> bool:
            counts = {q.name: q.counts for q in await app.overview()}
            in_hand = [job for w in await app.workers() for job in w.jobs]
            return (
                counts["emails"]["completed"] == 24
                and counts["webhooks"]["failed"] == 5
                and counts["sync"]["completed"] == 6 + 6  # the orders, the flow's syncs
                and counts["reports"]["completed"] == 3
                and ("imports", ids["importing"]) in in_hand
                and (await app.get_flow("nightly-lisbon-01-2026-12-04")).progress[0] == 8
            )

        await until(busy, "the demo jobs to run")
        served = build_shop(url)
        keys = [ApiKey("ana", KEY, Scope.ADMIN)]
        with Server(create_app(served, api_keys=keys)) as server:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=chromium, args=CHROMIUM_ARGS
                )
                for scheme in ("light", "dark"):
                    for path in await shoot(browser, server.url, ids, out, scheme):
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                await browser.close()
        for worker in workers:
            worker.stop(graceful=False)
        await asyncio.gather(*running, return_exceptions=True)
        await app.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--chromium", default=os.environ.get("CORRAL_CHROMIUM", "/usr/bin/chromium")
    )
    options = parser.parse_args()
    asyncio.run(main(options.out, options.chromium))
