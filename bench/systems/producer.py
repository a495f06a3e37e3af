"""A system's producer in its own interpreter, for systems installed in another
virtualenv than the harness's (``System.venv``):

    python -m systems.producer SYSTEM_ID one|fill N
    python -m systems.producer SYSTEM_ID bulk N [KIND]
    python -m systems.producer SYSTEM_ID latency N GAP_SECONDS

It connects first, then times only the enqueues, and prints one JSON object:
``{"elapsed": s, "cpu": s, "redis_cpu": s}`` (CPU of the producer and of Redis during
the timed enqueues) or ``{"latencies": [seconds, ...]}``. Redis comes from
``BENCH_REDIS_URL``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from systems import load
from systems.base import Context


async def main(system_id: str, mode: str, n: int, extra: str) -> dict[str, Any]:
    url = os.environ["BENCH_REDIS_URL"]
    ctx = Context(url, Path(__file__).resolve().parents[1], Path(tempfile.gettempdir()))
    system = load(system_id)(ctx)
    redis = Redis.from_url(url)
    await system.open()
    try:
        if mode == "latency":
            return {"latencies": await system.latency(n, float(extra), redis)}
        cpu, redis_cpu = time.process_time(), await server_cpu(redis)
        if mode == "bulk":
            elapsed = await system.enqueue_bulk(n, extra or "incr")
        else:
            elapsed = await {"one": system.enqueue_one, "fill": system.fill}[mode](n)
        return {
            "elapsed": elapsed,
            "cpu": time.process_time() - cpu,
            "redis_cpu": await server_cpu(redis) - redis_cpu,
        }
    finally:
        await system.close()
        await redis.aclose()


async def server_cpu(redis: Any) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


if __name__ == "__main__":
    args = sys.argv[1:]
    extra = args[3] if len(args) > 3 else ""
    print(json.dumps(asyncio.run(main(args[0], args[1], int(args[2]), extra))))
