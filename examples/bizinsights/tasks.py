"""The Corral app and BizInsights' tasks, on three queues: ``reports``,
``integration-sync`` and ``alerts``.

Every task runs inside the Flask app's context (``FlaskCorral``), so it reads its
database path from ``current_app.config``. The queue-wide defaults of the Bull
version (3 attempts, exponential backoff from 2 s, keep the last 100 completed and
500 failed jobs) are the app's retention and :data:`DEFAULTS`."""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from corral import Backoff, Corral, JobContext, NoRetry, Retention
from corral.contrib.flask import FlaskCorral
from corral.notify import NotifySettings

from . import db

QUEUES = ["reports", "integration-sync", "alerts"]
#: Bull's defaultJobOptions: ``attempts: 3, backoff: {type: "exponential", delay: 2000}``.
DEFAULTS: dict[str, Any] = {"attempts": 3, "backoff": Backoff("exponential", base=2.0)}
#: How far back each kind of report looks.
PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 30}

corral = Corral(
    completed=Retention(count=100),  # removeOnComplete: 100
    failed=Retention(count=500),  # removeOnFail: 500
    notifications=NotifySettings(templates=str(Path(__file__).parent / "templates")),
)
jobs = FlaskCorral(corral=corral)


def _db() -> str:
    return str(current_app.config["DATABASE"])


# -- reports ---------------------------------------------------------------------


@corral.task(name="reports.generate", queue="reports", **DEFAULTS)
def generate_report(ctx: JobContext, organization_id: int, report_type: str) -> dict[str, Any]:
    """Summarise the organisation's orders over the report's period into a CSV file.
    The email to the recipients is a notification of this job (see reports.py)."""
    org = db.one(_db(), "SELECT * FROM organizations WHERE id = ?", organization_id)
    if org is None:
        raise NoRetry(f"organization {organization_id} no longer exists")
    if report_type not in PERIOD_DAYS:
        raise NoRetry(f"unknown report type {report_type!r}")
    zone = ZoneInfo(org["timezone"])
    now = datetime.now(zone)
    since = (now - timedelta(days=PERIOD_DAYS[report_type])).astimezone(UTC)
    ctx.progress_sync({"step": "query", "percent": 10})
    orders = db.all_rows(
        _db(),
        "SELECT id, total_cents, placed_at FROM orders"
        " WHERE organization_id = ? AND placed_at >= ? ORDER BY placed_at",
        organization_id,
        since.isoformat(),
    )
    ctx.progress_sync({"step": "render", "percent": 60})
    folder = Path(current_app.config["REPORTS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"org{organization_id}-{report_type}-{now:%Y%m%d-%H%M%S}-{ctx.id[-6:]}.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["order", "placed_at", "total"])
        for order in orders:
            writer.writerow([order["id"], order["placed_at"], f"{order['total_cents'] / 100:.2f}"])
    revenue = sum(o["total_cents"] for o in orders)
    ctx.progress_sync({"step": "done", "percent": 100})
    return {
        "organization": org["name"],
        "reportType": report_type,
        "period": f"{PERIOD_DAYS[report_type]}d",
        "orders": len(orders),
        "revenue": f"{revenue / 100:.2f}",
        "currency": org["currency"],
        "timezone": org["timezone"],
        "generatedAt": now.isoformat(timespec="seconds"),
        "file": str(path.resolve()),
    }


# -- integrations ------------------------------------------------------------------


def fetch_shopify_orders(shop: str, hour: datetime) -> list[dict[str, Any]]:
    """A stand-in for Shopify's orders API: a few orders per hour, the same ones for
    the same shop and hour (so a sync run twice imports nothing new). A shop named
    ``*-down.myshopify.com`` is unreachable, to show retries with backoff."""
    if shop.endswith("-down.myshopify.com"):
        raise ConnectionError(f"{shop} did not answer (503)")
    seed = hashlib.sha256(f"{shop}{hour:%Y%m%d%H}".encode()).digest()
    return [
        {
            "id": f"{shop}#{hour:%Y%m%d%H}-{n}",
            "total_cents": 1000 + seed[n] * 37,
            "placed_at": (hour + timedelta(minutes=seed[n + 8] % 60)).isoformat(),
        }
        for n in range(1 + seed[0] % 4)
    ]


@corral.task(name="integrations.sync", queue="integration-sync", **DEFAULTS)
def sync_integration(ctx: JobContext, integration_id: int) -> dict[str, Any]:
    """Pull the last 24 hours of orders of one integration (idempotent: order ids
    are primary keys)."""
    row = db.one(_db(), "SELECT * FROM integrations WHERE id = ?", integration_id)
    if row is None:
        raise NoRetry(f"integration {integration_id} no longer exists")
    if row["platform"] != "SHOPIFY":
        # The seed's Stripe, Google Analytics, Facebook Ads and WooCommerce stubs.
        raise NoRetry(f"{row['platform']} sync is not implemented yet")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    imported = 0
    for back in range(24):
        hour = now - timedelta(hours=back)
        orders = fetch_shopify_orders(row["shop"], hour)
        with db.connect(_db()) as conn:
            for order in orders:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?, ?)",
                    (order["id"], integration_id, row["organization_id"],
                     order["total_cents"], order["placed_at"]),
                )  # fmt: skip
                imported += cursor.rowcount
        ctx.progress_sync({"hoursDone": back + 1, "hours": 24, "imported": imported})
    with db.connect(_db()) as conn:
        conn.execute(
            "UPDATE integrations SET last_synced_at = ? WHERE id = ?",
            (datetime.now(UTC).isoformat(), integration_id),
        )
    return {"integration": integration_id, "platform": row["platform"], "imported": imported}


@corral.task(name="integrations.sync_all", queue="integration-sync", cron="0 * * * *", **DEFAULTS)
def sync_all_integrations() -> dict[str, Any]:
    """Hourly: one sync job per integration. The dedupe key makes a sync already
    waiting or running (a manual one, say) absorb this one instead of doubling it."""
    rows = db.all_rows(_db(), "SELECT id FROM integrations ORDER BY id")
    calls = [
        sync_integration.options(dedupe_key=f"sync:{row['id']}").call(row["id"]) for row in rows
    ]
    made = corral.enqueue_many_sync(calls) if calls else []
    return {"integrations": len(rows), "jobs": [job.id for job in made]}


# -- alerts ------------------------------------------------------------------------


@corral.task(name="alerts.check", queue="alerts", cron="*/30 * * * *", **DEFAULTS)
def check_alerts(check_type: str = "all") -> dict[str, Any]:
    """Every 30 minutes: integrations not synced for 2 hours (``integration``) and
    organisations without an order for a day (``performance``) raise alerts."""
    if check_type not in ("all", "integration", "performance"):
        raise NoRetry(f"unknown check type {check_type!r}")
    now = datetime.now(UTC)
    raised: list[tuple[int, str, str]] = []
    if check_type in ("all", "integration"):
        stale = (now - timedelta(hours=2)).isoformat()
        for row in db.all_rows(
            _db(),
            "SELECT * FROM integrations WHERE last_synced_at IS NULL OR last_synced_at < ?",
            stale,
        ):
            when = row["last_synced_at"] or "never"
            message = f"{row['platform']} {row['shop']} last synced: {when}"
            raised.append((row["organization_id"], "integration", message))
    if check_type in ("all", "performance"):
        day = (now - timedelta(days=1)).isoformat()
        for org in db.all_rows(
            _db(),
            "SELECT * FROM organizations o WHERE NOT EXISTS"
            " (SELECT 1 FROM orders WHERE organization_id = o.id AND placed_at >= ?)",
            day,
        ):
            raised.append((org["id"], "performance", f"{org['name']}: no orders in 24 hours"))
    with db.connect(_db()) as conn:
        conn.executemany(
            "INSERT INTO alerts (organization_id, kind, message) VALUES (?, ?, ?)", raised
        )
    return {"checkType": check_type, "alerts": len(raised)}
