"""A stand-in for ManyChat on loopback, for the demo and the tests: its API
(``POST /fb/{type}/{action}``) and the webhook endpoint Playgram delivers to
(``POST /webhook``, which checks each signature with ``corral.notify.verify`` and
drops repeats by ``webhook-id``). Set :attr:`FakeManyChat.down` to answer 503, and
:attr:`FakeManyChat.rate_limited` to answer that many API calls 429 (Retry-After: 30 s)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from corral.notify import InvalidSignature, verify


class _Server(ThreadingHTTPServer):
    fake: FakeManyChat


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if fake.down:
            return self._answer(503, {"status": "error", "message": "ManyChat is down"})
        if self.path == "/webhook":
            try:
                event = verify(body, dict(self.headers.items()), fake.secret)
            except InvalidSignature:
                return self._answer(400, {"status": "error", "message": "bad signature"})
            with fake.lock:
                fake.webhooks.setdefault(self.headers["webhook-id"], event)
            return self._answer(200, {"status": "success"})
        with fake.lock:
            limited, fake.rate_limited = fake.rate_limited > 0, max(0, fake.rate_limited - 1)
        if limited:
            data = b'{"status": "error", "message": "too many requests"}'
            self.send_response(429)
            self.send_header("Retry-After", "30")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "fb":
            return self._answer(404, {"status": "error", "message": f"no route {self.path}"})
        with fake.lock:
            fake.synced.append({"type": parts[1], "action": parts[2], **json.loads(body)})
        self._answer(200, {"status": "success"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeManyChat:
    """``secret``: what webhooks must be signed with. ``webhooks``: the events
    received, by ``webhook-id``; ``synced``: the API calls."""

    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret
        self.down = False
        self.rate_limited = 0
        self.lock = threading.Lock()
        self.webhooks: dict[str, Any] = {}
        self.synced: list[dict[str, Any]] = []
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fb"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
