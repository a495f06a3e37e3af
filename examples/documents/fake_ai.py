"""A stand-in for the AI API that AI jobs call (on loopback, no key, no model).

``POST /v1/insights`` with ``{"sentences": [...]}`` answers ``{"insights": [...]}``.
``POST /control`` steers it for demos and tests: ``{"down": true}`` answers 503 until
``{"down": false}``; ``{"throttle": N}`` answers the next N calls with 429 and a
``Retry-After`` of 0.2 s.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeAI:
    """The server and its switches; ``start()`` serves in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.down = False
        self.throttle = 0
        self.calls = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAI:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-ai").start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls += 1
            if self.down:
                return 503, {"error": "the AI service is unavailable"}
            if self.throttle > 0:
                self.throttle -= 1
                return 429, {"error": "rate limit exceeded"}
        sentences = [str(s) for s in body.get("sentences", [])][:15]
        return 200, {"insights": [f"Key point: {s}" for s in sentences]}


def _handler(ai: FakeAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(size) or b"{}")
            except ValueError:
                self._reply(400, {"error": "the body is not JSON"})
                return
            if self.path == "/control":
                with ai._lock:
                    ai.down = bool(body.get("down", ai.down))
                    ai.throttle = int(body.get("throttle", ai.throttle))
                self._reply(200, {"down": ai.down, "throttle": ai.throttle})
            elif self.path == "/v1/insights":
                status, answer = ai.answer(body)
                self._reply(status, answer, retry_after=status == 429)
            else:
                self._reply(404, {"error": f"no route {self.path}"})

        def _reply(self, status: int, body: dict[str, Any], retry_after: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if retry_after:
                self.send_header("retry-after", "0.2")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the worker logs what matters

    return Handler
