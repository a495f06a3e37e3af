"""Server time of the flow pages with big flows: --flows fan-ins (chords) of --width
jobs each, and the dashboard's ``/flows/<id>`` and ``/flows`` (20 a page) asked
--repeat times each, in process (httpx's ASGI transport: no socket, no other load).

    .venv/bin/python bench/flow_pages.py [--backend redis|sqlite|both]
        [--flows 3] [--width 1000] [--repeat 5]

Redis is a private ``redis-server`` on a free loopback port (tests/redis_server.py);
SQLite a temporary file. Prints the median per page and the page size.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402

from corral import Corral, chord  # noqa: E402
from corral.web import create_app  # noqa: E402


async def measure(url: str, flows: int, width: int, repeat: int) -> list[tuple[str, float, int]]:
    app = Corral(url)
    try:
        for k in range(flows):
            pages = [app.call("bench.page", [n], queue="bench") for n in range(width)]
            await app.start_flow(
                chord(pages, app.call("bench.total", queue="bench")), flow_id=f"big-{k}"
            )
        web = create_app(app)
        transport = httpx.ASGITransport(app=web)
        out = []
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for path in ("/flows/big-0", "/flows"):
                times, size = [], 0
                for _ in range(repeat):
                    started = time.perf_counter()
                    response = await client.get(path)
                    times.append(time.perf_counter() - started)
                    response.raise_for_status()
                    size = len(response.content)
                out.append((path, statistics.median(times) * 1000, size))
        return out
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument("--flows", type=int, default=3)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    backends = ["redis", "sqlite"] if options.backend == "both" else [options.backend]
    print(f"{options.flows} flows of {options.width + 1} jobs; median of {options.repeat}")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="corral-flow-pages-") as tmp:
            server = RedisServer().start() if backend == "redis" else None
            try:
                url = server.url if server else f"sqlite:///{Path(tmp) / 'flows.db'}"
                rows = asyncio.run(measure(url, options.flows, options.width, options.repeat))
            finally:
                if server:
                    server.stop()
            for path, ms, size in rows:
                print(f"{backend:7} {path:14} {ms:8.1f} ms  {size / 1024:6.1f} KiB")


if __name__ == "__main__":
    main()
