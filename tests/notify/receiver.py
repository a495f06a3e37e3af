"""A real webhook receiver for the tests: an HTTP(S) server on loopback, in a thread,
that checks every request with the ``standardwebhooks`` reference library and records
it.

Paths: ``/ok`` (and anything unknown) 200; ``/fail`` 500; ``/flaky`` 500 to its
first request, 200 after; ``/big`` 503 with a long body; ``/redirect`` 302 to ``/target``; ``/gone`` 410; ``/slow`` answers only once
:attr:`Receiver.release` is set (or after 5 s); ``/cookie`` 200 with a ``Set-Cookie``.
"""

from __future__ import annotations

import contextlib
import socket
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
    connection: int  # which TCP connection brought it (numbered from 1, per receiver)
    verified_with: list[str] = field(default_factory=list)  # the receiver's secrets that verify


class _Server(ThreadingHTTPServer):
    receiver: Receiver
    request_queue_size = 128  # concurrent deliveries connect at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) is expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        receiver = self.server.receiver
        if receiver.keep_alive:
            self.protocol_version = "HTTP/1.1"
            self.timeout = receiver.idle_close
        super().setup()
        self.served = 0
        with receiver.lock:
            receiver.connections.append(self.connection)
            self.number = len(receiver.connections)

    def do_POST(self) -> None:
        receiver = self.server.receiver
        self.served += 1
        if receiver.drop_after is not None and self.served > receiver.drop_after:
            # As if its idle timeout ran out just as the request came: closed unread.
            self.close_connection = True
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = Received(self.path, headers, body, self.client_address[0], self.number)
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
        if path == "/cookie":
            path, extra_cookie = "/ok", {"Set-Cookie": "session=s3cr3t; Path=/"}
        else:
            extra_cookie = {}
        status, reply, extra = {
            "/fail": (500, b"database is down", {}),
            "/big": (503, b"overloaded " * 10_000, {}),
            "/redirect": (302, b"", {"Location": "/target"}),
            "/gone": (410, b"no such hook", {}),
        }.get(path, (200, b"ok", {}))
        extra = {**extra, **extra_cookie}
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class Receiver:
    """``secrets``: what the receiver verifies with (each one separately).
    ``keep_alive``: HTTP/1.1 with kept-alive connections, closed by the receiver after
    ``idle_close`` seconds without a request; else HTTP/1.0, one request per
    connection. ``drop_after``: a request after the first ``drop_after`` on a connection is
    not read, the connection is closed instead (as a receiver does when its idle
    timeout runs out just as the request comes).
    ``connections``: every TCP connection accepted."""

    def __init__(
        self,
        secrets: Sequence[str],
        tls: ssl.SSLContext | None = None,
        *,
        keep_alive: bool = False,
        idle_close: float = 5.0,
        drop_after: int | None = None,
    ) -> None:
        self.secrets = list(secrets)
        self.keep_alive = keep_alive
        self.idle_close = idle_close
        self.drop_after = drop_after
        self.connections: list[socket.socket] = []
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
        with self.lock:  # wake the handlers waiting on kept-alive connections
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
