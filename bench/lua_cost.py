"""Redis instructions per call of Corral's hot scripts, counted by callgrind: a figure
that does not move with the machine's load (wall-clock and CPU times here do).

    .venv/bin/python bench/lua_cost.py [--jobs 1000]
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/lua_cost.py

Starts its own redis-server under ``valgrind --tool=callgrind`` (needs valgrind; about
a minute), loads the checkout's function library and prints, per operation, the
instructions Redis executed (reading the request, running it, writing the reply):

- ``LPUSH``, the whole of a plain list-queue enqueue (Huey's, RQ's), and an empty
  function call, the floor of any script;
- ``redis.call`` cost: a function making one ``PING``, then five;
- the enqueue script for one job, and per job of a 1,000-job bulk enqueue;
- claim and complete per job, in batches of 50 (as a draining worker calls them).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import redis

from corral.backends.redis.scripts import library

KEYS = [
    f"{{c}}:{{q}}:{k}"
    for k in ("wait", "active", "delayed", "completed", "failed", "cancelled", "meta", "marker")
]
BASE = "0 {c}:{q}:"
PROBES = {
    "probe_empty": "return 1",
    "probe_call1": "redis.call('PING') return 1",
    "probe_call5": "for _ = 1, 5 do redis.call('PING') end return 1",
}


class Counted:
    """A redis-server under callgrind, with a counter that can be zeroed and read."""

    def __init__(self, out: Path) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        self.out = out
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p",
             "redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.r = redis.Redis(port=port)
        for _ in range(200):
            try:
                self.r.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.2)
        raise SystemExit("redis-server under valgrind did not start")

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.proc.pid)], capture_output=True)

    def measure(self, n: int, run: Callable[[], None]) -> int:
        """Instructions per unit of ``run()``, which does ``n`` units."""
        self._control("-z")
        run()
        self._control("-d")
        time.sleep(0.3)
        newest = max(self.out.glob("cg.*"), key=lambda p: p.stat().st_mtime)
        found = re.search(r"^summary: (\d+)", newest.read_text(), re.MULTILINE)
        assert found is not None, f"no summary in {newest}"
        return int(found.group(1)) // n

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def rows(n: int) -> str:
    return orjson.dumps(
        [[f"{random.getrandbits(64):x}", "bench.noop", "[1]", 0, 0, 0, "", {}] for _ in range(n)]
    ).decode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000, help="calls or jobs per figure")
    args = parser.parse_args()
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    n = args.jobs
    lib, text = library()
    for name, body in PROBES.items():
        text += (
            f"redis.register_function{{function_name='{name}', "
            f"callback=function(KEYS, ARGV)\n{body}\nend}}\n"
        )
    with tempfile.TemporaryDirectory() as tmp:
        server = Counted(Path(tmp))
        r = server.r
        try:
            r.execute_command("FUNCTION", "LOAD", text)
            fcall = lambda name, *a: r.execute_command("FCALL", name, 8, *KEYS, BASE, *a)  # noqa: E731
            figures: dict[str, int] = {}
            figures["LPUSH (a list queue's whole enqueue)"] = server.measure(
                n, lambda: [r.lpush("plain", os.urandom(40)) for _ in range(n)]
            )
            for name in PROBES:
                figures[name] = server.measure(n, lambda name=name: [fcall(name) for _ in range(n)])
            figures["enqueue, one job per call"] = server.measure(
                n, lambda: [fcall(f"{lib}_enqueue", rows(1)) for _ in range(n)]
            )
            bulk = rows(n)
            figures["enqueue, per job of one 1,000-job call"] = server.measure(
                n, lambda: fcall(f"{lib}_enqueue", bulk)
            )
            fcall(f"{lib}_enqueue", rows(n))
            batches: list[list[tuple[bytes, bytes]]] = []

            def claim() -> None:
                for i in range(n // 50):
                    out = fcall(f"{lib}_claim", 50, 60000, f"w{i}:", "worker-1")[2:]
                    batches.append([(out[j], out[j + 4]) for j in range(0, len(out), 7)])

            def complete() -> None:
                for batch in batches:
                    flat = [x for job, token in batch for x in (job, token, "1", "")]
                    fcall(f"{lib}_complete", -1, -1, *flat)

            figures["claim, per job of a 50-job call"] = server.measure(n // 50 * 50, claim)
            figures["complete, per job of a 50-job call"] = server.measure(n // 50 * 50, complete)
        finally:
            server.stop()
    one = figures.pop("probe_call1") - figures["probe_empty"]
    five = figures.pop("probe_call5") - figures["probe_empty"]
    figures["empty function call (FCALL floor)"] = figures.pop("probe_empty")
    figures["each redis.call inside a script (PING)"] = (five - one) // 4
    source = Path(sys.modules["corral"].__file__ or "").parent
    print(f"Redis instructions per operation (callgrind; corral from {source}, {n} each)")
    for label, value in figures.items():
        print(f"  {value:>9,}  {label}")


if __name__ == "__main__":
    main()
