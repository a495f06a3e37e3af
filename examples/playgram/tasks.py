"""Playgram's five queues and their tasks (seed 003): ``webhooks``, ``manychat``,
``email``, ``analytics`` and ``export``.

The worker runs them: ``corral worker examples.playgram.tasks:app``. Settings come
from the environment, read once at import (the web app and the worker share them):

- ``CORRAL_URL`` / ``REDIS_URL``: the store (default ``sqlite:///corral.db``).
- ``PLAYGRAM_WEBHOOK_SECRET``: the ``whsec_...`` secret outbound webhooks are signed
  with (``python -c 'from corral.notify import Webhook; print(Webhook.new_secret())'``).
- ``PLAYGRAM_WEBHOOK_ALLOW``: hosts or ranges webhooks may reach although private
  (the SSRF guard refuses loopback and private addresses otherwise), comma-separated.
- ``PLAYGRAM_EVENTS_URL``: where job outcomes are posted (signed): every job that
  fails for good (it is in the dead-letter set) and every finished export.
- ``PLAYGRAM_MANYCHAT_URL`` / ``PLAYGRAM_MANYCHAT_TOKEN``: the ManyChat API.
- ``CORRAL_SMTP_URL`` / ``CORRAL_EMAIL_FROM``: the mail relay; without one, emails
  are written to ``$PLAYGRAM_DATA_DIR/outbox`` as ``.eml`` files.
- ``PLAYGRAM_DATA_DIR``: the app's own data (``playgram.db``, exports, outbox).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import jinja2

from corral import Backoff, ConfigurationError, Corral, JobContext, NoRetry, Retention, Retry
from corral.notify import DeliveryError, NotifySettings, Webhook
from corral.notify.smtp import send_message

QUEUES = ("webhooks", "manychat", "email", "analytics", "export")

DATA_DIR = Path(os.environ.get("PLAYGRAM_DATA_DIR", "playgram-data")).resolve()
MANYCHAT_URL = os.environ.get("PLAYGRAM_MANYCHAT_URL", "https://api.manychat.com/fb")
EVENTS_URL = os.environ.get("PLAYGRAM_EVENTS_URL") or None
SENDER = os.environ.get("CORRAL_EMAIL_FROM") or "Playgram <noreply@playgram.example>"
TEMPLATES = Path(__file__).with_name("templates")

#: The seed's retry policy for webhooks: 5 attempts, exponential backoff from 5 s
#: (5, 10, 20, 40 s, each drawn from [d/2, d] so failed jobs don't retry together).
WEBHOOK_BACKOFF = Backoff("exponential", base=5)
#: Its default for the other queues: 3 attempts, 2 s then 4 s.
DEFAULT_BACKOFF = Backoff("exponential", base=2)


def webhook_secret() -> str:
    secret = os.environ.get("PLAYGRAM_WEBHOOK_SECRET")
    if not secret:
        raise ConfigurationError(
            "PLAYGRAM_WEBHOOK_SECRET is not set: outbound webhooks are signed with it "
            "(make one with: python -c 'from corral.notify import Webhook; "
            "print(Webhook.new_secret())')"
        )
    return secret


app = Corral(
    # The seed kept the last 500 failures per queue for debugging: they are the
    # dead-letter set, listed and retried from the API (app.py) or the dashboard.
    failed=Retention(count=500),
    notifications=NotifySettings(
        allow=tuple(
            h.strip() for h in os.environ.get("PLAYGRAM_WEBHOOK_ALLOW", "").split(",") if h
        ),
    ),
)
SETTINGS = app.notifications or NotifySettings()

# Job outcomes as signed webhooks, delivered durably by Corral (the outcome and its
# notification are recorded together): every job that lands in the dead-letter set...
if EVENTS_URL:
    app.notify(Webhook(EVENTS_URL, secret=webhook_secret(), events=["failed"], name="dlq"))
# ... and every finished export, with its result (the file's path).
EXPORT_READY = (
    [Webhook(EVENTS_URL, secret=webhook_secret(), events=["completed"], result=True)]
    if EVENTS_URL
    else []
)


# -- webhooks -----------------------------------------------------------------------


@app.task(name="webhooks.deliver", queue="webhooks", attempts=5, backoff=WEBHOOK_BACKOFF)
async def deliver_webhook(
    ctx: JobContext,
    webhook_id: str,
    event: str,
    url: str,
    payload: Any,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST ``{"type": event, "data": payload}`` to ``url``, signed (Standard
    Webhooks) with ``webhook_id`` as its ``webhook-id`` on every attempt, so the
    receiver can drop a repeat. A 5xx, a timeout or a refused connection fails the
    attempt and Corral retries it; a 410 or a refused address fails it for good."""
    try:
        hook = Webhook(url, secret=webhook_secret(), headers=headers)
        await hook.send({"type": event, "data": payload}, id=webhook_id, settings=SETTINGS)
    except ConfigurationError as exc:
        raise NoRetry(str(exc)) from None
    except DeliveryError as exc:
        if not exc.retry:
            raise NoRetry(str(exc)) from None
        raise
    return {"webhookId": webhook_id, "event": event, "attempt": ctx.attempt}


# -- manychat -----------------------------------------------------------------------


@app.task(name="manychat.sync", queue="manychat", attempts=3, backoff=DEFAULT_BACKOFF)
async def sync_manychat(
    sync_type: str, action: str, tool_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Push one contact, tag or field change to ManyChat. A 429 comes back after
    ManyChat's Retry-After without spending an attempt; a 5xx is retried; another
    4xx is a bad request that no retry fixes."""
    token = os.environ.get("PLAYGRAM_MANYCHAT_TOKEN")
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.post(
            f"{MANYCHAT_URL}/{sync_type}/{action}",
            json={"toolId": tool_id, "data": data},
            headers=auth,
        )
    if reply.status_code == 429:
        raise Retry(delay=float(reply.headers.get("Retry-After", "30")), count_attempt=False)
    if reply.status_code >= 500:
        raise RuntimeError(f"ManyChat answered {reply.status_code}: {reply.text[:200]}")
    if reply.status_code >= 400:
        raise NoRetry(f"ManyChat refused {sync_type} {action}: {reply.status_code} {reply.text}")
    if sync_type == "contact":
        _store_contact(action, tool_id, data)
    return {"synced": f"{sync_type}.{action}", "toolId": tool_id}


# -- email ----------------------------------------------------------------------------

_jinja = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined
)


@app.task(name="email.send", queue="email", attempts=3, backoff=DEFAULT_BACKOFF)
async def send_email(
    ctx: JobContext, to: str, subject: str, template: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Render ``templates/<template>.txt`` with ``data`` and send it through
    ``CORRAL_SMTP_URL`` (STARTTLS required unless the URL says otherwise); without a
    relay, write it to the outbox directory. The Message-ID is the job's, the same
    on every attempt."""
    try:
        text = _jinja.get_template(f"{template}.txt").render(data)
    except jinja2.TemplateNotFound:
        raise NoRetry(f"no email template {template!r} in {TEMPLATES}") from None
    except jinja2.UndefinedError as exc:
        raise NoRetry(f"template {template!r}: {exc.message}") from None
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, to, subject
    message["Message-ID"] = make_msgid(idstring=ctx.id, domain="playgram.example")
    message.set_content(text)
    if not SETTINGS.relay_url:
        outbox = DATA_DIR / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        path = outbox / f"{ctx.id}.eml"
        path.write_bytes(message.as_bytes())
        return {"to": to, "outbox": str(path)}
    try:
        await send_message(message, SETTINGS)
    except DeliveryError as exc:
        if not exc.retry:
            raise NoRetry(str(exc)) from None
        raise
    return {"to": to, "messageId": message["Message-ID"]}


# -- analytics and exports: Playgram's own tables ----------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS qr_scans (
    id INTEGER PRIMARY KEY, job_id TEXT UNIQUE, qr_code_id TEXT NOT NULL,
    event TEXT NOT NULL, user_id TEXT, data TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    tool_id TEXT NOT NULL, subscriber_id TEXT NOT NULL, name TEXT, email TEXT,
    updated_at REAL NOT NULL, PRIMARY KEY (tool_id, subscriber_id));
"""

#: What each export can hold: its query, and the filters it takes (API name -> column).
_EXPORTS: dict[str, tuple[str, dict[str, str]]] = {
    "qr_scans": (
        "SELECT qr_code_id AS qrCodeId, event, user_id AS userId, data, at FROM qr_scans",
        {"qrCodeId": "qr_code_id", "event": "event", "userId": "user_id"},
    ),
    "contacts": (
        "SELECT tool_id AS toolId, subscriber_id AS subscriberId, name, email FROM contacts",
        {"toolId": "tool_id", "email": "email"},
    ),
}


@contextmanager
def database() -> Iterator[sqlite3.Connection]:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(DATA_DIR / "playgram.db", timeout=30)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        with db:
            yield db
    finally:
        db.close()


def _store_contact(action: str, tool_id: str, data: Mapping[str, Any]) -> None:
    subscriber = str(data.get("subscriberId", ""))
    if not subscriber:
        return
    with database() as db:
        if action == "delete":
            db.execute(
                "DELETE FROM contacts WHERE tool_id = ? AND subscriber_id = ?",
                (tool_id, subscriber),
            )
        else:
            db.execute(
                "INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?, ?)",
                (tool_id, subscriber, data.get("name"), data.get("email"), time.time()),
            )


@app.task(name="analytics.qr", queue="analytics", attempts=3, backoff=DEFAULT_BACKOFF)
def record_qr_event(
    ctx: JobContext, qr_code_id: str, event: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Record one scan or validation of a QR code (once per job, even when an attempt
    is repeated) and return the code's count of that event."""
    with database() as db:
        db.execute(
            "INSERT OR IGNORE INTO qr_scans (job_id, qr_code_id, event, user_id, data, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ctx.id, qr_code_id, event, data.get("userId"), json.dumps(data), time.time()),
        )
        (count,) = db.execute(
            "SELECT count(*) FROM qr_scans WHERE qr_code_id = ? AND event = ?", (qr_code_id, event)
        ).fetchone()
    return {"qrCodeId": qr_code_id, "event": event, "total": count}


@app.task(
    name="export.data", queue="export", attempts=3, backoff=DEFAULT_BACKOFF, notify=EXPORT_READY
)
def export_data(
    ctx: JobContext,
    user_id: str,
    export_type: str,
    data_type: str,
    filters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``data_type`` rows matching ``filters`` to a CSV or JSON file and return
    its path. The file appears whole or not at all (written aside, then renamed)."""
    if data_type not in _EXPORTS:
        raise NoRetry(f"dataType {data_type!r} cannot be exported: use one of {list(_EXPORTS)}")
    if export_type not in ("csv", "json"):
        raise NoRetry(f"exportType {export_type!r} is not supported: use 'csv' or 'json'")
    query, columns = _EXPORTS[data_type]
    wanted = dict(filters or {})
    unknown = sorted(set(wanted) - set(columns))
    if unknown:
        raise NoRetry(f"unknown filter {unknown} for {data_type}: use {sorted(columns)}")
    if wanted:
        query += " WHERE " + " AND ".join(f"{columns[k]} = ?" for k in wanted)
    with database() as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute(query + " ORDER BY rowid", list(wanted.values()))]
    folder = DATA_DIR / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{user_id}-{data_type}-{ctx.id}.{export_type}"
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="", encoding="utf-8") as out:
        if export_type == "json":
            json.dump(rows, out, indent=2)
        else:
            fields = list(rows[0]) if rows else [k for k in _header(query)]
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    os.replace(partial, path)
    return {"path": str(path), "rows": len(rows), "format": export_type, "dataType": data_type}


def _header(query: str) -> list[str]:
    """The column names a query selects (an empty export's CSV header)."""
    selected = query.split(" FROM ", 1)[0].removeprefix("SELECT ")
    return [part.split(" AS ")[-1].strip() for part in selected.split(",")]
