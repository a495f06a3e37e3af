"""A real webhook receiver for the tests: an HTTP(S) server on loopback, in a thread,
that checks every request with the ``standardwebhooks`` reference library and records
it.

Paths: ``/ok`` (and anything unknown) 200; ``/fail`` 500; ``/flaky`` 500 to its
first request, 200 after; ``/big`` 503 with a long body; ``/redirect`` 302 to ``/target``; ``/gone`` 410; ``/slow`` answers only once
:attr:`Receiver.release` is set (or after 5 s).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook as ReferenceWebhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    peer: str
    verified_with: list[str] = field(default_factory=list)  # the receiver's secrets that verify


class _Server(ThreadingHTTPServer):
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) is expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = Received(self.path, headers, body, self.client_address[0])
        for secret in receiver.secrets:
            try:
                ReferenceWebhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            record.verified_with.append(secret)
        with receiver.lock:
            receiver.requests.append(record)
        path = self.path.split("?", 1)[0]
        if path == "/flaky":
            with receiver.lock:
                path = "/fail" if receiver.paths_seen(path) == 1 else path
        if path == "/slow":
            receiver.release.wait(5)
        status, reply, extra = {
            "/fail": (500, b"database is down", {}),
            "/big": (503, b"overloaded " * 10_000, {}),
            "/redirect": (302, b"", {"Location": "/target"}),
            "/gone": (410, b"no such hook", {}),
        }.get(path, (200, b"ok", {}))
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class Receiver:
    """``secrets``: what the receiver verifies with (each one separately)."""

    def __init__(self, secrets: Sequence[str], tls: ssl.SSLContext | None = None) -> None:
        self.secrets = list(secrets)
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.server_names: list[str | None] = []  # TLS SNI of each handshake
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.scheme = "http"
        if tls is not None:
            tls.sni_callback = self._record_sni
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _record_sni(self, _sock: Any, name: str | None, _ctx: Any) -> None:
        self.server_names.append(name)

    def url(self, path: str = "/ok", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def paths_seen(self, path: str) -> int:
        """How many requests came to ``path`` (call with the lock held)."""
        return sum(r.path.split("?", 1)[0] == path for r in self.requests)

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
