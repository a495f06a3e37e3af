"""Example app: the tasks a web app hands to Corral.

Run a worker for it with:  corral worker examples.tasks:app
"""

from __future__ import annotations

import asyncio

from corral import Corral, JobContext, NoRetry, Retry

app = Corral()  # CORRAL_URL, else REDIS_URL, else sqlite:///corral.db


@app.task(name="pos.sync", queue="sync", attempts=5, backoff="exponential", timeout=600)
async def sync_orders(ctx: JobContext, restaurant_id: str, pages: int = 3) -> dict[str, int]:
    """A paginated POS sync that reports progress the UI can show."""
    orders = 0
    for page in range(1, pages + 1):
        await asyncio.sleep(0.01)  # stands in for one API call
        orders += 100
        await ctx.progress({"page": page, "pages": pages, "orders": orders})
    await ctx.log(f"synced {orders} orders for {restaurant_id}")
    return {"orders": orders}


@app.task(name="webhooks.deliver", queue="webhooks", attempts=8)
async def deliver_webhook(url: str, payload: dict[str, object]) -> int:
    """Webhook delivery: back off on 429, give up at once on 410."""
    status = 200 if "ok" in url else 410 if "gone" in url else 429
    if status == 429:
        raise Retry("rate limited upstream", delay=0.05, count_attempt=False)
    if status == 410:
        raise NoRetry(f"{url} is gone")
    return status


@app.task(name="emails.send", queue="emails")
def send_email(to: str, subject: str) -> str:
    """A plain function: runs in the worker's thread pool."""
    return f"sent {subject!r} to {to}"
