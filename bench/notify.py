"""What notifications cost and how fast they arrive, on both backends.

    .venv/bin/python bench/notify.py [--jobs 2000] [--runs 3] [--backend both] [--redis URL]

Per backend, best of ``--runs``, one in-process worker (concurrency 50) draining
``--jobs`` no-op async jobs:

- ``plain``: jobs without notifications (the drain rate to compare with).
- ``webhook``: every job has a ``Webhook`` target on ``completed``: each completion
  writes an outbox entry, the relay turns it into a delivery job, the same worker posts
  a signed webhook to a receiver on loopback (a ``ThreadingHTTPServer`` answering 204,
  in a process of its own so that it does not share the worker's GIL).
  Reported: jobs/s until every job completed *and* every webhook arrived, and the
  latency from a job's recorded completion (the webhook body's ``finished_at``) to its
  webhook's arrival, p50/p99 (with the whole backlog enqueued at once, this is mostly
  the wait behind the deliveries before it).
- ``one-by-one``: ``--single`` jobs enqueued one at a time, each after the previous
  one's webhook arrived: the latency of a notification on an idle worker, p50/p99
  (the relay looks at the outbox every 0.25 s, so up to that much of it is waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from corral import Corral
from corral.notify import NotifySettings, Webhook
from corral.worker import Worker


class Receiver(BaseHTTPRequestHandler):
    """Appends ``arrival finished_at`` (Unix seconds) per webhook to the server's file."""

    server: Any

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


def serve(out_path: str, conn: Any) -> None:
    """The receiver process: sends its port on ``conn``, then serves for ever."""
    ThreadingHTTPServer.request_queue_size = 256  # 50 deliveries connect at once
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.out = open(out_path, "a")  # type: ignore[attr-defined]  # noqa: SIM115
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    conn.send(server.server_address[1])
    server.serve_forever()


def arrivals(path: str) -> list[tuple[float, float]]:
    with open(path) as f:
        return [(float(a), float(b)) for a, b in (line.split() for line in f if line.strip())]


async def one_by_one(url: str, jobs: int, port: int, log: str) -> dict[str, float]:
    open(log, "w").close()
    app = Corral(url, notifications=NotifySettings(allow=["127.0.0.1"]))
    hook = Webhook(f"http://127.0.0.1:{port}/", secret=SECRET, events=["completed"])

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
    return {"p50_ms": statistics.median(delays), "p99_ms": delays[int(len(delays) * 0.99) - 1]}


async def run(url: str, jobs: int, notify: bool, port: int, log: str) -> dict[str, float]:
    open(log, "w").close()
    settings = NotifySettings(allow=["127.0.0.1"]) if notify else None
    app = Corral(url, notifications=settings)
    hook = Webhook(f"http://127.0.0.1:{port}/", secret=SECRET, events=["completed"])

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
    return out


SECRET = Webhook.new_secret()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--single", type=int, default=50)
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    log = tempfile.mktemp(suffix=".arrivals")
    parent, child = multiprocessing.Pipe()
    receiver = multiprocessing.Process(target=serve, args=(log, child), daemon=True)
    receiver.start()
    port = parent.recv()
    backends = ["redis", "sqlite"] if args.backend == "both" else [args.backend]
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
