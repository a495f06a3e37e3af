"""An app whose jobs send a signed webhook on completion, for the tests that kill
worker processes (URL from CORRAL_URL; the receiver from NOTIFY_URL/NOTIFY_SECRET)."""

from __future__ import annotations

import os

from corral import Corral
from corral.notify import NotifySettings, Webhook

app = Corral(
    notifications=NotifySettings(allow=("127.0.0.1",), timeout=5.0, retries=(0.2, 0.5, 1.0))
)
hook = Webhook(os.environ["NOTIFY_URL"], secret=os.environ["NOTIFY_SECRET"], events=["completed"])


@app.task(name="notified.add", queue="notified", notify=hook)
async def add(a: int, b: int) -> int:
    return a + b
