"""What notifications cost and how fast they arrive, on both backends.

    .venv/bin/python bench/notify.py [--jobs 2000] [--runs 3] [--backend both] [--redis URL]
                                     [--tls]

Per backend, best of ``--runs``, one in-process worker (concurrency 50) draining
``--jobs`` no-op async jobs:

- ``plain``: jobs without notifications (the drain rate to compare with).
- ``webhook``: every job has a ``Webhook`` target on ``completed``: each completion
  writes an outbox entry, the relay turns it into a delivery job, the same worker posts
  a signed webhook to a receiver on loopback (a ``ThreadingHTTPServer`` answering 204
  over HTTP/1.1 with kept-alive connections, as most servers do, in a process of its
  own so that it does not share the worker's GIL; ``--tls``: HTTPS, with a throwaway
  CA the worker trusts through ``SSL_CERT_FILE``).
  Reported: jobs/s until every job completed *and* every webhook arrived, the TCP
  connections the receiver accepted (``conns``), and the
  latency from a job's recorded completion (the webhook body's ``finished_at``) to its
  webhook's arrival, p50/p99 (with the whole backlog enqueued at once, this is mostly
  the wait behind the deliveries before it).
- ``sends``: ``--sends`` ``Webhook.send`` calls in a row from one coroutine, no
  worker, no store: ``fresh`` with a new client (connection, TLS handshake) each, as
  outside a worker, ``kept`` inside ``WebhookClients`` as a worker delivers; ms per
  send, p50/p99, and the connections the receiver saw.
- ``one-by-one``: ``--single`` jobs enqueued one at a time, each after the previous
  one's webhook arrived: the latency of a notification on an idle worker, p50/p99
  (the relay looks at the outbox every 0.25 s, so up to that much of it is waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import redis
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from harness.redis_server import redis_url

from corral import Corral
from corral.notify import NotifySettings, Webhook
from corral.worker import Worker


class Receiver(BaseHTTPRequestHandler):
    """Appends ``arrival finished_at`` (Unix seconds) per webhook to the server's file,
    and a line per TCP connection to ``<file>.conns``."""

    server: Any
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.conns.write("c\n")
            self.server.conns.flush()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.time()
        finished = datetime.fromisoformat(orjson.loads(body)["data"]["finished_at"]).timestamp()
        with self.server.lock:
            self.server.out.write(f"{now} {finished}\n")
            self.server.out.flush()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve(out_path: str, conn: Any, cert: tuple[str, str] | None) -> None:
    """The receiver process: sends its port on ``conn``, then serves for ever."""
    ThreadingHTTPServer.request_queue_size = 256  # 50 deliveries connect at once
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.out = open(out_path, "a")  # type: ignore[attr-defined]  # noqa: SIM115
    server.conns = open(out_path + ".conns", "a")  # type: ignore[attr-defined]  # noqa: SIM115
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    conn.send(server.server_address[1])
    server.serve_forever()


def connections(path: str) -> int:
    with open(path + ".conns") as f:
        return sum(1 for _ in f)


def reset(path: str) -> None:
    open(path, "w").close()
    open(path + ".conns", "w").close()


def arrivals(path: str) -> list[tuple[float, float]]:
    with open(path) as f:
        return [(float(a), float(b)) for a, b in (line.split() for line in f if line.strip())]


async def one_by_one(url: str, jobs: int, port: int, log: str) -> dict[str, float]:
    reset(log)
    app = Corral(url, notifications=NotifySettings(allow=["127.0.0.1"]))
    hook = Webhook(f"{SCHEME}://127.0.0.1:{port}/", secret=SECRET, events=["completed"])

    @app.task(name="bench.noop", queue="bench", notify=[hook])
    async def noop(i: int) -> int:
        return i

    worker = Worker(app, ["bench"], concurrency=50)
    running = asyncio.create_task(worker.run())
    for i in range(jobs):
        await noop.enqueue(i)
        while len(arrivals(log)) <= i:
            await asyncio.sleep(0.002)
    worker.stop()
    await running
    await app.close()
    delays = sorted((arrival - finished) * 1000 for arrival, finished in arrivals(log))
    return {
        "p50_ms": statistics.median(delays),
        "p99_ms": delays[int(len(delays) * 0.99) - 1],
        "conns": connections(log),
    }


async def run(url: str, jobs: int, notify: bool, port: int, log: str) -> dict[str, float]:
    reset(log)
    settings = NotifySettings(allow=["127.0.0.1"]) if notify else None
    app = Corral(url, notifications=settings)
    hook = Webhook(f"{SCHEME}://127.0.0.1:{port}/", secret=SECRET, events=["completed"])

    @app.task(name="bench.noop", queue="bench", notify=[hook] if notify else None)
    async def noop(i: int) -> int:
        return i

    await noop.enqueue_many([(i,) for i in range(jobs)])
    worker = Worker(app, ["bench"], concurrency=50)
    started = time.perf_counter()
    running = asyncio.create_task(worker.run())
    queue = app.queue("bench")
    while (await queue.counts())["completed"] < jobs or (notify and len(arrivals(log)) < jobs):
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    worker.stop()
    await running
    await app.close()
    out = {"rate": jobs / elapsed}
    if notify:
        delays = sorted((arrival - finished) * 1000 for arrival, finished in arrivals(log))
        out["p50_ms"] = statistics.median(delays)
        out["p99_ms"] = delays[int(len(delays) * 0.99) - 1]
        out["conns"] = connections(log)
    return out


async def sends(count: int, port: int, log: str, kept: bool) -> dict[str, float]:
    from corral.notify.clients import WebhookClients

    reset(log)
    settings = NotifySettings(allow=["127.0.0.1"])
    hook = Webhook(f"{SCHEME}://127.0.0.1:{port}/", secret=SECRET)
    payload = {"type": "job.completed", "data": {"finished_at": "2026-01-01T00:00:00Z"}}
    times: list[float] = []
    clients = WebhookClients()
    with contextlib.ExitStack() as stack:
        if kept:
            stack.enter_context(clients.installed())
        for i in range(count):
            started = time.perf_counter()
            await hook.send(payload, id=f"msg_{i}", settings=settings)
            times.append((time.perf_counter() - started) * 1000)
    await clients.aclose()
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": times[int(len(times) * 0.99) - 1],
        "conns": connections(log),
    }


SECRET = Webhook.new_secret()
SCHEME = "http"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--single", type=int, default=50)
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument(
        "--redis", help="a Redis URL to use (flushed!); default: a private redis-server"
    )
    parser.add_argument("--tls", action="store_true", help="HTTPS webhooks")
    parser.add_argument("--sends", type=int, default=500, help="0: skip them")
    parser.add_argument("--only-sends", action="store_true", help="skip the worker runs")
    args = parser.parse_args()
    with redis_url(args.redis) as args.redis:
        log = tempfile.mktemp(suffix=".arrivals")
        cert = None
        if args.tls:
            global SCHEME
            SCHEME = "https"
            ca = trustme.CA()
            keys = Path(tempfile.mkdtemp())
            ca.cert_pem.write_to_path(str(keys / "ca.pem"))
            issued = ca.issue_cert("127.0.0.1")
            issued.cert_chain_pems[0].write_to_path(str(keys / "cert.pem"))
            issued.private_key_pem.write_to_path(str(keys / "key.pem"))
            cert = (str(keys / "cert.pem"), str(keys / "key.pem"))
            os.environ["SSL_CERT_FILE"] = str(keys / "ca.pem")
        parent, child = multiprocessing.Pipe()
        receiver = multiprocessing.Process(target=serve, args=(log, child, cert), daemon=True)
        receiver.start()
        port = parent.recv()
        for kept in (False, True) if args.sends else ():
            best: dict[str, float] = {}
            for _ in range(args.runs):
                result = asyncio.run(sends(args.sends, port, log, kept))
                if not best or result["p50_ms"] < best["p50_ms"]:
                    best = result
            figures = ", ".join(f"{k} {v:,.2f}" for k, v in best.items())
            print(f"{'sends':6} {'kept' if kept else 'fresh':10} {figures}", flush=True)
        backends = ["redis", "sqlite"] if args.backend == "both" else [args.backend]
        if args.only_sends:
            backends = []
        for backend in backends:
            for mode in ("plain", "webhook"):
                best: dict[str, float] = {}
                for _ in range(args.runs):
                    with tempfile.TemporaryDirectory() as tmp:
                        if backend == "redis":
                            redis.Redis.from_url(args.redis).flushdb()
                            url = args.redis
                        else:
                            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                        result = asyncio.run(run(url, args.jobs, mode == "webhook", port, log))
                    if not best or result["rate"] > best["rate"]:
                        best = result
                figures = ", ".join(f"{k} {v:,.1f}" for k, v in best.items())
                print(f"{backend:6} {mode:10} {figures}", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "redis":
                    redis.Redis.from_url(args.redis).flushdb()
                url = args.redis if backend == "redis" else f"sqlite:///{Path(tmp) / 'bench.db'}"
                single = asyncio.run(one_by_one(url, args.single, port, log))
            figures = ", ".join(f"{k} {v:,.1f}" for k, v in single.items())
            print(f"{backend:6} {'one-by-one':10} {figures}", flush=True)
        receiver.kill()


if __name__ == "__main__":
    main()
