"""``python -m examples.bizinsights``: the web app on http://127.0.0.1:5000 and a
``flask corral worker`` process, together; Ctrl-C (or SIGTERM) stops both.

The store is ``CORRAL_URL`` / ``REDIS_URL`` (default: ``corral.db`` here); emails go
to ``CORRAL_SMTP_URL``, else to a local mailbox that saves them in ``.bizinsights/outbox/``.
A demo organisation with a Shopify integration and a weekly report is created on
the first run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from . import db, reports
from .app import create_app
from .mailbox import Mailbox
from .tasks import sync_integration

PORT = int(os.environ.get("PORT", "5000"))


def seed_demo(path: str) -> None:
    """On the first run: an organisation, its Shopify integration (synced once now, so
    the first report has orders) and a weekly report."""
    if db.one(path, "SELECT id FROM organizations LIMIT 1"):
        return
    org = db.insert(path, "INSERT INTO organizations (name, timezone) VALUES (?, ?)", "Acme Coffee", "Europe/Berlin")  # fmt: skip
    shop = db.insert(path, "INSERT INTO integrations (organization_id, platform, shop) VALUES (?, 'SHOPIFY', 'acme.myshopify.com')", org)  # fmt: skip
    db.insert(path, "INSERT INTO scheduled_reports (organization_id, name, frequency, recipients) VALUES (?, 'Weekly sales', 'weekly', 'owner@acme.example')", org)  # fmt: skip
    sync_integration.enqueue_sync(shop)


def main() -> int:
    env = dict(os.environ)
    mailbox = None
    if not env.get("CORRAL_SMTP_URL"):
        mailbox = Mailbox(Path(".bizinsights/outbox")).start()
        env["CORRAL_SMTP_URL"] = f"smtp://127.0.0.1:{mailbox.port}?tls=none"
        os.environ["CORRAL_SMTP_URL"] = env["CORRAL_SMTP_URL"]
    env.setdefault("CORRAL_EMAIL_FROM", "BizInsights <reports@bizinsights.example>")
    app = create_app()
    path = app.config["DATABASE"]
    seed_demo(path)
    print(f"schedules: {reports.reconcile(path)}", flush=True)
    try:  # the port first: it may be taken
        server = make_server("127.0.0.1", PORT, app, threaded=True)
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{PORT} ({exc.strerror}); set PORT", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "examples.bizinsights.app", "corral", "worker"],
        env=env,
        start_new_session=True,  # Ctrl-C reaches us only; the worker gets one SIGTERM
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{PORT}"
    print(
        f"BizInsights on {url} (Ctrl-C stops it). Try:\n"
        f"  curl -s {url}/api/scheduled-reports\n"
        f"  curl -s -X POST {url}/api/scheduled-reports/1/run\n"
        f"  curl -s {url}/api/jobs/reports/<jobId>",
        flush=True,
    )
    while not stop.wait(0.5):
        if worker.poll() is not None:
            print(f"the worker exited ({worker.returncode}); stopping", file=sys.stderr)
            break
    server.shutdown()
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(40)
        except subprocess.TimeoutExpired:
            worker.kill()
    app.extensions["corral"].corral.close_sync()
    if mailbox:
        mailbox.stop()
    return 0 if worker.returncode in (0, -signal.SIGTERM) else 1


if __name__ == "__main__":
    sys.exit(main())
