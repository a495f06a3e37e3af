"""What tracing adds per job: tracing off, on with the API only (no SDK), on with the SDK.

    .venv/bin/python bench/tracing_overhead.py [--jobs 20000] [--runs 5]

Two figures per mode, best of ``--runs``:

- ``send``/``process``: the wrapper alone, µs per call: ``JobTracing.send`` around a
  store that does nothing, ``JobTracing.process`` around an attempt that returns at
  once (off: the plain await the worker does instead). Exact, and free of the store.
- ``drain``: CPU µs per job of a real in-process worker draining ``--jobs`` no-op
  async jobs from a fresh SQLite file (enqueue excluded), for scale.

"sdk" is a TracerProvider with a BatchSpanProcessor in front of an exporter that
drops everything: the cost of making and ending the spans, not of shipping them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from corral import Corral
from corral.backends.records import ClaimedJob, NewJob
from corral.tracing import JobTracing
from corral.worker import Worker
from corral.worker.executor import Kind, Outcome


def provider(mode: str) -> Any:
    if mode != "sdk":
        from opentelemetry.trace import NoOpTracerProvider

        return NoOpTracerProvider()
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sdk = TracerProvider()
    sdk.add_span_processor(BatchSpanProcessor(Drop()))
    return sdk


async def wrappers(mode: str, calls: int) -> tuple[float, float]:
    """µs per call of the send and process wrappers (off: what runs instead)."""
    tracing = None if mode == "off" else JobTracing(provider(mode))
    outcome = Outcome(Kind.COMPLETED)
    jobs = [NewJob(id="a" * 26, name="bench.noop", data=b"[[],{}]")]
    claimed = ClaimedJob("a" * 26, "default", "bench.noop", b"[[],{}]", 1, "t", b"", 0)

    async def store(queue: str, new: Sequence[NewJob]) -> list[str | None]:
        return [None]

    async def attempt() -> Outcome:
        return outcome

    start = time.perf_counter()
    for _ in range(calls):
        if tracing is None:
            await store("default", jobs)
        else:
            await tracing.send("default", jobs, store)
    send = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    for _ in range(calls):
        run = attempt()
        await (run if tracing is None else tracing.process(claimed, run))
    process = (time.perf_counter() - start) / calls * 1e6
    return send, process


async def drain(mode: str, jobs: int) -> float:
    """CPU µs per job of a worker draining ``jobs`` no-op jobs."""
    with tempfile.TemporaryDirectory() as folder:
        app = Corral(f"sqlite:///{Path(folder) / 'bench.db'}")
        if mode != "off":
            app.enable_tracing(provider(mode))

        @app.task(name="bench.noop")
        async def noop() -> None:
            return None

        for start in range(0, jobs, 1000):
            await noop.enqueue_many([() for _ in range(min(1000, jobs - start))])
        worker = Worker(app, ["default"], concurrency=50, block=0.05)
        cpu = time.process_time()
        running = asyncio.create_task(worker.run())
        while worker.processed < jobs:
            await asyncio.sleep(0.01)
        cpu = time.process_time() - cpu
        worker.stop()
        await running
        await app.close()
    return cpu / jobs * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    print(f"{'mode':<5} {'send µs':>8} {'process µs':>11} {'drain µs CPU/job':>17}")
    for mode in ("off", "api", "sdk"):
        timings = [await wrappers(mode, options.jobs) for _ in range(options.runs)]
        send = min(t[0] for t in timings)
        process = min(t[1] for t in timings)
        per_job = min([await drain(mode, options.jobs) for _ in range(options.runs)])
        print(f"{mode:<5} {send:>8.2f} {process:>11.2f} {per_job:>17.1f}")


if __name__ == "__main__":
    asyncio.run(main())
