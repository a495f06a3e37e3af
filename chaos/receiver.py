"""A webhook receiver on loopback for the notification scenarios: an HTTP server in a
thread that checks every request with the ``standardwebhooks`` reference library and
records what arrived (webhook-id, the job id in the body, when, and when the job
finished by the body). Verified requests get
200; a request whose signature does not verify gets 401 and is counted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook as ReferenceWebhook
from standardwebhooks.webhooks import WebhookVerificationError

__all__ = ["Delivery", "Receiver"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request: its ``webhook-id``, the job it names (``data.id``), its event type,
    when it arrived (time.time()), whether its signature verified, and when the job
    finished (``data.finished_at``, None if absent)."""

    webhook_id: str
    job_id: str
    type: str
    at: float
    verified: bool
    finished: float | None
    #: the body ended before its Content-Length: the sender died mid-request
    truncated: bool = False

    @property
    def lag(self) -> float | None:
        """Seconds from the job's end to this request's arrival."""
        return None if self.finished is None else self.at - self.finished


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a worker SIGKILLed mid-request leaves a broken connection: expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = True
        try:
            self.server.receiver.reference.verify(body, headers)
        except WebhookVerificationError:
            verified = False
        at = time.time()
        job_id, kind, finished = "", "", None
        try:
            data = orjson.loads(body)
            job_id, kind = str(data["data"]["id"]), str(data["type"])
            finished = datetime.fromisoformat(data["data"]["finished_at"]).timestamp()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            pass
        delivery = Delivery(
            headers.get("webhook-id", ""), job_id, kind, at, verified, finished, len(body) < length
        )
        self.server.receiver.record(delivery)
        status, reply = (200, b"ok") if verified else (401, b"bad signature")
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class Receiver:
    """Verifies with ``secret``; :attr:`deliveries` in order of arrival."""

    def __init__(self, secret: str) -> None:
        self.reference = ReferenceWebhook(secret)
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/corral"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="chaos-receiver",
            daemon=True,
        )
        self._thread.start()

    def record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def notified(self) -> set[str]:
        """Job ids with at least one verified delivery."""
        return {d.job_id for d in self.snapshot() if d.verified}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
