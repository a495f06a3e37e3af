"""CPU per job of a SQLite claim + complete drain, for comparing two checkouts.

    .venv/bin/python bench/sqlite_drain.py [CHECKOUT] [--jobs 20000]

Enqueues --jobs plain jobs into a fresh SQLite file, then claims 50 and completes them
until the queue is empty, and prints the process CPU time per job (the backend's
thread included) and the wall rate. CHECKOUT (default: this one) is the repository
whose ``src`` is imported, so ``sqlite_drain.py /path/to/other`` measures another
version with the same script; alternate the two a few times on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path


async def drain(jobs: int) -> tuple[int, float, float]:
    from corral.backends.base import KEEP_ALL, Completion, NewJob
    from corral.backends.sqlite import SQLiteBackend

    with tempfile.TemporaryDirectory() as folder:
        backend = SQLiteBackend(f"sqlite:///{Path(folder) / 'drain.db'}")
        await backend.connect()
        for start in range(0, jobs, 1000):
            batch = range(start, min(start + 1000, jobs))
            await backend.enqueue(
                "q", [NewJob(id=f"j{n}", name="t", data=b"[[],{}]") for n in batch]
            )
        cpu, wall, done = time.process_time(), time.perf_counter(), 0
        while True:
            claimed, _ = await backend.claim("q", 50, 30_000, "w")
            if not claimed:
                break
            outcomes = [Completion(j.id, j.token, b"1") for j in claimed]
            await backend.complete("q", outcomes, KEEP_ALL)
            done += len(claimed)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await backend.close()
    return done, cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--jobs", type=int, default=20_000)
    options = parser.parse_args()
    sys.path.insert(0, str(Path(options.checkout) / "src"))
    done, cpu, wall = asyncio.run(drain(options.jobs))
    print(
        f"{options.checkout}: {done:,} jobs, {cpu * 1e6 / done:.1f} µs CPU/job, "
        f"{done / wall:,.0f} jobs/s"
    )


if __name__ == "__main__":
    main()
