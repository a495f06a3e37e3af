"""A fake POS API on loopback: a restaurant's order history, paginated and slow,
answering 429 and 503 now and then, the way Toast and friends do.

``GET /restaurants/{id}/orders?page=N`` answers
``{"page", "totalPages", "totalOrders", "orders": [{"id", "total", "placedAt"}]}``.
``GET /stats`` counts the answers given per status (what the example's test checks).

Environment: ``FAKE_POS_ORDERS`` (5962), ``FAKE_POS_PAGE_SIZE`` (100: 60 pages),
``FAKE_POS_DELAY`` (seconds per page, 0.3; every 10th page takes three times as
long), ``FAKE_POS_FAULTS`` (``429@7,503@31``: the first request of a restaurant's
page 7 answers 429, of page 31 answers 503, each with ``Retry-After``),
``FAKE_POS_RETRY_AFTER`` (seconds, 2).

    python -m examples.pos_sync.fake_pos --port 8001
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from corral.errors import ConfigurationError


def _number(name: str, default: str, kind: type[int] | type[float], low: float) -> Any:
    raw = os.environ.get(name) or default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value < low:
        raise ConfigurationError(f"{name} must be a {kind.__name__} >= {low}, got {raw!r}")
    return value


class Settings:
    """The fake's knobs from the environment (ConfigurationError naming a bad one)."""

    def __init__(self) -> None:
        self.orders = _number("FAKE_POS_ORDERS", "5962", int, 1)
        self.page_size = _number("FAKE_POS_PAGE_SIZE", "100", int, 1)
        self.delay = _number("FAKE_POS_DELAY", "0.3", float, 0)
        self.retry_after = str(_number("FAKE_POS_RETRY_AFTER", "2", int, 0))
        faults = os.environ.get("FAKE_POS_FAULTS", "429@7,503@31")
        try:
            self.faults = {
                int(page): int(status)
                for status, page in (item.split("@") for item in faults.split(",") if item)
            }
        except ValueError:
            raise ConfigurationError(
                f"FAKE_POS_FAULTS must be STATUS@PAGE,... (like 429@7,503@31), got {faults!r}"
            ) from None
        self.pages = max(1, math.ceil(self.orders / self.page_size))


class FakePOS(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.settings = Settings()
        self.lock = threading.Lock()
        self.faulted: set[tuple[str, int]] = set()  # (restaurant, page) already refused once
        self.answers: Counter[int] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def page(self, restaurant: str, page: int) -> tuple[int, dict[str, Any], dict[str, str]]:
        s = self.settings
        with self.lock:
            status = s.faults.get(page)
            if status and (restaurant, page) not in self.faulted:
                self.faulted.add((restaurant, page))
                self.answers[status] += 1
                return status, {"error": "slow down"}, {"Retry-After": s.retry_after}
        if not 1 <= page <= s.pages:
            return 404, {"error": f"no page {page}"}, {}
        time.sleep(s.delay * (3 if page % 10 == 0 else 1))  # some pages are slow
        first = (page - 1) * s.page_size
        orders = [
            {
                "id": f"{restaurant}-{n:06d}",
                "total": round(8 + (n * 37 % 900) / 10, 2),
                "placedAt": 1_700_000_000 + n * 600,
            }
            for n in range(first, min(first + s.page_size, s.orders))
        ]
        with self.lock:
            self.answers[200] += 1
        body = {"page": page, "totalPages": s.pages, "totalOrders": s.orders, "orders": orders}
        return 200, body, {}


class Handler(BaseHTTPRequestHandler):
    server: FakePOS

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if parts == ["stats"]:
            self.reply(200, {str(k): v for k, v in self.server.answers.items()}, {})
        elif len(parts) == 3 and parts[0] == "restaurants" and parts[2] == "orders":
            page = parse_qs(url.query).get("page", ["1"])[0]
            self.reply(*self.server.page(parts[1], int(page) if page.isdigit() else 0))
        else:
            self.reply(404, {"error": "not found"}, {})

    def reply(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    server = FakePOS(parser.parse_args().port)
    s = server.settings
    print(f"fake POS at {server.url}: {s.orders} orders in {s.pages} pages", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
