"""The Corral app and the sync task: pull a restaurant's order history from the POS,
page by page, into the orders database, reporting progress; email the owner when done.

Workers run it: ``corral worker examples.pos_sync.tasks:app`` (``python -m
examples.pos_sync`` starts two). Environment: ``CORRAL_URL`` / ``REDIS_URL`` (else
``sqlite:///corral.db``), ``POS_API_URL`` (the POS), ``POS_APP_URL`` (the web app, for
links in emails), ``POS_ORDERS_DB`` (``pos_orders.db``), ``CORRAL_SMTP_URL`` and
``CORRAL_EMAIL_FROM`` (the email), ``CORRAL_CONCURRENCY`` (jobs per worker).
"""

from __future__ import annotations

import email.utils
import logging
import os
import sqlite3
import time
from contextlib import closing

import httpx

from corral import Corral, JobContext, Retry
from corral.notify import Email, NotifySettings

# One INFO line per POS request is noise next to Corral's one line per job outcome.
logging.getLogger("httpx").setLevel(logging.WARNING)

APP_URL = os.environ.get("POS_APP_URL", "http://127.0.0.1:8000").rstrip("/")
POS_API_URL = os.environ.get("POS_API_URL", "http://127.0.0.1:8001").rstrip("/")

app = Corral(
    notifications=NotifySettings(
        # job_url in templates: the sync's page on Corral's dashboard, mounted in app.py.
        context={"dashboard_url": f"{APP_URL}/corral", "app_url": APP_URL},
    )
)


def ready_email(to: str) -> Email:
    """The owner's "orders are ready" email, attached to their sync job."""
    return Email(
        to=to,
        subject="✅ Your {{ '{:,}'.format(result.orders) }} orders are ready!",
        text=(
            "We synced {{ '{:,}'.format(result.orders) }} orders from your POS "
            "({{ result.pages }} pages).\n\n"
            "View Dashboard → {{ app_url }}/dashboard/{{ result.restaurantId }}\n\n"
            "Sync details: {{ job_url }}\n"
        ),
        events=["completed"],
    )


# -- the orders database (the seed's MongoDB) ---------------------------------------


def orders_db() -> sqlite3.Connection:
    db = sqlite3.connect(os.environ.get("POS_ORDERS_DB", "pos_orders.db"), timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS orders (
            restaurant_id TEXT, order_id TEXT, total REAL, placed_at INTEGER,
            PRIMARY KEY (restaurant_id, order_id));
        CREATE TABLE IF NOT EXISTS checkpoints (job_id TEXT PRIMARY KEY, next_page INTEGER);
        """
    )
    return db


def order_count(restaurant_id: str) -> int:
    with closing(orders_db()) as db:
        row = db.execute("SELECT count(*) FROM orders WHERE restaurant_id = ?", [restaurant_id])
        return int(row.fetchone()[0])


# -- the task -----------------------------------------------------------------------


def retry_after(response: httpx.Response, default: float) -> float:
    """Retry-After in seconds (a number or an HTTP date), else ``default``."""
    value = response.headers.get("Retry-After", "")
    if value.replace(".", "", 1).isdigit():
        return float(value)
    when = email.utils.parsedate_to_datetime(value) if value else None
    return max(0.0, when.timestamp() - time.time()) if when else default


@app.task(name="pos.sync", queue="sync", attempts=3, backoff="exponential", timeout=600)
def sync_orders(ctx: JobContext, restaurant_id: str, pos_type: str = "toast") -> dict[str, object]:
    """Fetch every page of the restaurant's order history. A 429 or 503 hands the job
    back until Retry-After without spending an attempt; the next run resumes at the
    page it stopped on (checkpointed with the orders, which are upserted: a page
    written twice counts once)."""
    with closing(orders_db()) as db, httpx.Client(base_url=POS_API_URL, timeout=30) as pos:
        row = db.execute("SELECT next_page FROM checkpoints WHERE job_id = ?", [ctx.id]).fetchone()
        page, total_pages, estimated = (row[0] if row else 1), None, None
        while total_pages is None or page <= total_pages:
            ctx.raise_if_cancelled()
            response = pos.get(f"/restaurants/{restaurant_id}/orders", params={"page": page})
            if response.status_code in (429, 503):
                wait = retry_after(response, default=5.0)
                raise Retry(f"POS answered {response.status_code}", delay=wait, count_attempt=False)
            response.raise_for_status()  # anything else: a real failure, retried with backoff
            body = response.json()
            total_pages, estimated = body["totalPages"], body["totalOrders"]
            with db:  # the page's orders and the checkpoint in one transaction
                db.executemany(
                    "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?)",
                    [(restaurant_id, o["id"], o["total"], o["placedAt"]) for o in body["orders"]],
                )
                db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", [ctx.id, page + 1])
            processed = db.execute(
                "SELECT count(*) FROM orders WHERE restaurant_id = ?", [restaurant_id]
            ).fetchone()[0]
            ctx.progress_sync(
                {
                    "currentPage": page,
                    "totalPages": total_pages,
                    "ordersProcessed": processed,
                    "estimatedTotal": estimated,
                }
            )
            page += 1
        with db:
            db.execute("DELETE FROM checkpoints WHERE job_id = ?", [ctx.id])
        return {"restaurantId": restaurant_id, "orders": processed, "pages": total_pages}
