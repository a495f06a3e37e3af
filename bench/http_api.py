"""The HTTP API under load: ``corral serve`` on each backend, driven by wrk.

For each backend (SQLite on a fresh file, Redis on a private redis-server on a free
port) and each ``--workers`` count it starts ``corral serve bench.dashboard_app:app`` on
a free loopback port and runs wrk (``--connections``, one thread; wrk is written in C
and uses a fraction of a core at these rates, so it is not the bottleneck) against:

- ``GET /healthz``: the bare endpoint, the framework's own rate;
- ``POST /api/v1/jobs``: one job per request;
- ``POST /api/v1/jobs/bulk``: ``--bulk`` jobs per request.

It prints req/s, jobs/s, p50 and p99 per row, counts non-2xx answers (any makes the
row fail), and checks that the store holds every job the server said it created.

``--sse N`` adds the fan-out scenario: N clients (a separate process, raw sockets)
follow ``GET /api/v1/queues/big/events`` while a third process enqueues ``--sse-rate``
jobs/s on schedule, whatever the answers take (open loop; latency counted from when
each request was due), and wrk measures ``/healthz`` (4 connections) on the same
server; it prints both rates, healthz p99 and the events each listener got.

Each row is measured after ``--warmup`` seconds (2) of the same load on the same server
(a fresh process's first requests build caches and connections: up to 300 ms each).

    .venv/bin/python bench/http_api.py [--backends sqlite,redis] [--workers 1,2]
        [--duration 10] [--warmup 2] [--connections 32] [--bulk 1000] [--json out.json]
        [--sse 500 [--sse-rate 1000]]

Needs ``wrk`` (``apt-get install wrk``) and ``redis-server`` on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from corral import Corral  # noqa: E402

#: Directories put first on the server's PYTHONPATH (--h11 adds a stand-in httptools
#: that fails to import, so uvicorn picks h11: the parser before the web extra had httptools).
PREPEND: list[str] = []
QUEUE = "big"
TASK = "bench.noop"

#: wrk script: POST ``BODY`` to ``PATH``; prints one JSON line of figures when done.
LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
if os.getenv("BENCH_METHOD") == "GET" then
  wrk.method = "GET"
  wrk.body = nil
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_up(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within 30 s")
        time.sleep(0.1)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private redis-server (no persistence: the store is not what is measured here)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (uvicorn's workers)."""
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextlib.contextmanager
def served(url: str, workers: int, extra: list[str]) -> Iterator[tuple[str, int]]:
    """``corral serve bench.dashboard_app:app`` on ``url``'s store; yields its base URL."""
    port = free_port()
    paths = [*PREPEND, str(ROOT / "src"), str(ROOT)]
    env = {**os.environ, "CORRAL_URL": url, "PYTHONPATH": os.pathsep.join(paths)}
    command = [
        sys.executable,
        "-m",
        "corral",
        "serve",
        "bench.dashboard_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *extra,
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/healthz", proc, "corral serve")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


def wrk(
    url: str,
    body: str | None,
    connections: int,
    duration: int,
    script: Path,
) -> dict[str, Any]:
    out = wrk_start(url, body, connections, duration, script).communicate()[0]
    return wrk_figures(out)


def wrk_start(
    url: str,
    body: str | None,
    connections: int,
    duration: int,
    script: Path,
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "BENCH_BODY": body or "",
        "BENCH_METHOD": "GET" if body is None else "POST",
    }
    return subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def wrk_figures(out: str) -> dict[str, Any]:
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    figures: dict[str, Any] = json.loads(line[6:])
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


def one_job(i: int) -> dict[str, Any]:
    return {"task": TASK, "args": [i, "a@example.com"], "kwargs": {"subject": "hi"}}


async def stored(url: str) -> int:
    app = Corral(url)
    try:
        counts = await app.queue(QUEUE).counts()
        return counts["waiting"] + counts["delayed"]
    finally:
        await app.close()


def run_backend(
    name: str, url: str, workers: int, args: argparse.Namespace, script: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    bulk_body = json.dumps({"jobs": [one_job(i) for i in range(args.bulk)]})
    cases = [
        ("GET /healthz", "/healthz", None, 0),
        ("POST /api/v1/jobs", "/api/v1/jobs", json.dumps(one_job(0)), 1),
        (f"POST /api/v1/jobs/bulk ({args.bulk})", "/api/v1/jobs/bulk", bulk_body, args.bulk),
    ]
    with served(url, workers, args.serve_arg) as (base, pid):
        for label, path, body, per in cases:
            if path.endswith("bulk") and args.no_bulk:
                continue
            connections = args.bulk_connections if per > 1 else args.connections
            if args.warmup:  # a fresh server's first requests build caches, connections
                wrk(base + path, body, connections, args.warmup, script)
            before = asyncio.run(stored(url)) if per else 0
            cpu = cpu_seconds(pid)
            figures = wrk(base + path, body, connections, args.duration, script)
            cpu = cpu_seconds(pid) - cpu
            ok = figures["requests"] - figures["non2xx"]
            if per:
                after = asyncio.run(stored(url))
                figures["stored"] = after - before
                figures["stored_ok"] = after - before >= ok * per
            figures.update(backend=name, workers=workers, case=label, connections=connections)
            figures["jobs_per_s"] = figures["rps"] * per
            # Server CPU per request: unlike req/s, it barely moves when other work
            # shares the machine.
            figures["cpu_us_per_req"] = cpu / max(1, figures["requests"]) * 1e6
            rows.append(figures)
            print(
                f"{name:7} w={workers} c={connections:<3} {label:30} {figures['rps']:8,.0f} req/s "
                f"{figures['jobs_per_s']:10,.0f} jobs/s  p50 {figures['p50_us'] / 1000:6.2f} ms"
                f"  p99 {figures['p99_us'] / 1000:7.2f} ms"
                f"  server CPU {figures['cpu_us_per_req']:8,.0f} us/req"
                f"  non-2xx {figures['non2xx']}  errors {figures['socket_errors']}"
                + ("" if not per else f"  stored {figures['stored']:,}"),
                flush=True,
            )
    return rows


async def _listen(port: int, path: str, streams: int, seconds: float) -> dict[str, Any]:
    """``streams`` SSE clients on ``path`` for ``seconds``: events and resyncs each got."""
    counts = [0] * streams
    resyncs = [0] * streams
    opened = 0
    all_open = asyncio.Event()

    async def one(index: int) -> None:
        nonlocal opened
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        opened += 1
        if opened == streams:
            all_open.set()
        try:
            while chunk := await reader.read(65536):
                counts[index] += chunk.count(b"\r\n\r\n")
                resyncs[index] += chunk.count(b"event: resync")
        finally:
            writer.close()

    tasks = [asyncio.create_task(one(i)) for i in range(streams)]
    await asyncio.wait_for(all_open.wait(), 60)
    print("READY", flush=True)
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"min": min(counts), "max": max(counts), "resyncs": sum(resyncs)}


async def _paced(port: int, body: bytes, rate: float, seconds: float) -> dict[str, Any]:
    """POST ``body`` to /api/v1/jobs at ``rate`` a second on schedule, whatever the
    answers take (open loop: wrk's delay() waits after each answer, so it falls short
    of the rate as soon as answers take time). Each request's latency counts from when
    it was due, so a slow server is not hidden by requests sent late. Keep-alive
    connections are opened as the schedule needs them."""
    request = (
        f"POST /api/v1/jobs HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    latencies: list[float] = []
    failed = 0
    loop = asyncio.get_running_loop()

    async def one(due: float) -> None:
        nonlocal failed
        while idle:
            reader, writer, used = idle.pop()
            if loop.time() - used < 2.0:  # uvicorn closes a keep-alive idle for 5 s
                break
            writer.close()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        latencies.append(loop.time() - due)
        if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 201")):
            failed += 1
        idle.append((reader, writer, loop.time()))

    start = loop.time()
    sent, pending = 0, set()
    while (now := loop.time()) - start < seconds:
        while sent < (now - start) * rate:
            task = asyncio.create_task(one(start + sent / rate))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*pending, return_exceptions=True)
    elapsed = loop.time() - start
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "rps": n / elapsed,
        "p50_us": latencies[n // 2] * 1e6 if n else 0,
        "p99_us": latencies[min(n - 1, int(n * 0.99))] * 1e6 if n else 0,
        "non2xx": failed,
        "socket_errors": sent - n,
    }


def run_sse(
    name: str, url: str, workers: int, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """The fan-out scenario (see the module doc) on ``workers`` serve processes."""
    plain = work / "post.lua"
    connections = 16  # of the warm-up
    with served(url, workers, args.serve_arg) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        if args.warmup:
            wrk(base + "/api/v1/jobs", json.dumps(one_job(0)), connections, args.warmup, plain)
        listeners = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--listen",
                f"{port}:/api/v1/queues/{QUEUE}/events:{args.sse}:{args.duration + 4}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listeners.stdout is not None
        if listeners.stdout.readline().strip() != "READY":
            raise RuntimeError("the SSE listeners did not connect")
        before = asyncio.run(stored(url))
        cpu = cpu_seconds(pid)
        enqueue = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--pace",
                f"{port}:{args.sse_rate}:{args.duration}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        health = wrk(base + "/healthz", None, 4, args.duration, plain)
        enqueued = json.loads(enqueue.communicate()[0].strip().splitlines()[-1])
        cpu = cpu_seconds(pid) - cpu
        got = json.loads(listeners.communicate()[0].strip().splitlines()[-1])
        jobs = asyncio.run(stored(url)) - before
    row = {
        "backend": name,
        "case": f"SSE fan-out: {args.sse} queue streams",
        "workers": workers,
        "listeners": args.sse,
        "enqueue_rps": enqueued["rps"],
        "enqueue_p99_us": enqueued["p99_us"],
        "healthz_rps": health["rps"],
        "healthz_p50_us": health["p50_us"],
        "healthz_p99_us": health["p99_us"],
        "server_cpu_share": cpu / args.duration,
        "events_per_listener": got,
        "jobs": jobs,
        "non2xx": enqueued["non2xx"] + health["non2xx"],
        "socket_errors": enqueued["socket_errors"] + health["socket_errors"],
    }
    print(
        f"{name:7} w{workers} SSE x{args.sse}: enqueue {enqueued['rps']:7,.0f}/s "
        f"(p99 {enqueued['p99_us'] / 1000:.1f} ms)  healthz {health['rps']:7,.0f}/s "
        f"p50 {health['p50_us'] / 1000:.2f} ms p99 {health['p99_us'] / 1000:.2f} ms  "
        f"server CPU {cpu / args.duration:.0%}  events per listener {got['min']:,}-"
        f"{got['max']:,} of {jobs:,} jobs  resyncs {got['resyncs']}",
        flush=True,
    )
    return row


def run_rows(
    backend: str, workers: int, args: argparse.Namespace, work: Path, script: Path
) -> list[dict[str, Any]]:
    """The wrk rows, then the SSE scenario, of one backend and serve process count."""
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url, sse_url = f"sqlite:///{work}/w{workers}.db", f"sqlite:///{work}/sse{workers}.db"
        else:
            url = sse_url = stack.enter_context(redis_server(work))
        if not args.sse_only:
            rows += run_backend(backend, url, workers, args, script)
        if args.sse:
            rows.append(run_sse(backend, sse_url, workers, args, work))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--workers", default="1,2", help="serve --workers counts to run")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of the same load before each row"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--bulk", type=int, default=1000, help="jobs per bulk request")
    parser.add_argument("--bulk-connections", type=int, default=4)
    parser.add_argument("--no-bulk", action="store_true", help="skip the bulk row (old servers)")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra corral serve arg")
    parser.add_argument("--h11", action="store_true", help="serve with uvicorn's h11 parser")
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--sse", type=int, default=0, help="SSE fan-out: this many streams")
    parser.add_argument("--sse-rate", type=int, default=1000, help="enqueues/s meanwhile")
    parser.add_argument("--sse-only", action="store_true", help="skip the wrk rows")
    parser.add_argument("--listen", help=argparse.SUPPRESS)  # the listeners' process
    parser.add_argument("--pace", help=argparse.SUPPRESS)  # the paced enqueuer's process
    args = parser.parse_args()
    if args.listen:
        port, path, streams, seconds = args.listen.split(":")
        got = asyncio.run(_listen(int(port), path, int(streams), float(seconds)))
        print(json.dumps(got), flush=True)
        return
    if args.pace:
        port, rate, seconds = args.pace.split(":")
        body = json.dumps(one_job(0)).encode()
        print(json.dumps(asyncio.run(_paced(int(port), body, float(rate), float(seconds)))))
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="corral-http-bench-") as tmp:
        work = Path(tmp)
        script = work / "post.lua"
        script.write_text(LUA)
        if args.h11:
            (work / "shim" / "httptools").mkdir(parents=True)
            (work / "shim" / "httptools" / "__init__.py").write_text("raise ImportError")
            PREPEND.append(str(work / "shim"))
        for workers in [int(w) for w in args.workers.split(",")]:
            for backend in args.backends.split(","):
                rows += run_rows(backend, workers, args, work, script)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if any(r["non2xx"] or r["socket_errors"] or not r.get("stored_ok", True) for r in rows):
        sys.exit("some requests failed or some jobs are missing (see the rows above)")


if __name__ == "__main__":
    main()
