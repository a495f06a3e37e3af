"""Redis commands per second that one worker sends with library defaults, idle and busy.

    python bench/store_load.py [--src PATH] [--seconds 30] [--busy 10]

Starts a private redis-server and one ``corral worker`` (run from ``--src``, default
this checkout's ``src``), then counts commands with ``INFO commandstats`` over
``--seconds``: first idle, then holding ``--busy`` long jobs (leases to renew). Commands
run inside scripts are counted too, under their own names (e.g. ``zrangebyscore``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402


def _window(client: object, seconds: float) -> dict[str, float]:
    client.config_resetstat()  # type: ignore[attr-defined]
    time.sleep(seconds)
    stats = client.info("commandstats")  # type: ignore[attr-defined]
    rates = {
        name.removeprefix("cmdstat_"): value["calls"] / seconds
        for name, value in stats.items()
        if name not in ("cmdstat_info", "cmdstat_config")
    }
    return dict(sorted(rates.items(), key=lambda kv: -kv[1]))


def _show(label: str, rates: dict[str, float]) -> None:
    detail = ", ".join(f"{name} {rate:.2f}" for name, rate in rates.items())
    print(f"{label}: {sum(rates.values()):.2f} commands/s ({detail})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--busy", type=int, default=10)
    args = parser.parse_args()
    with RedisServer() as server:
        import redis

        from corral import Corral

        env = {
            **os.environ,
            "CORRAL_URL": server.url,
            "PYTHONPATH": os.pathsep.join([str(args.src), str(ROOT)]),
        }
        command = [sys.executable, "-m", "corral", "worker", "tests.apps.basic:app", "-q", "proc"]
        worker = subprocess.Popen(
            [*command, "-c", str(max(args.busy, 1)), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
        )
        app = Corral(server.url)
        client = redis.Redis.from_url(server.url)
        try:
            while not app.workers_sync():
                time.sleep(0.1)
            time.sleep(2)  # past start-up (schedules declared, first heartbeat)
            _show("idle", _window(client, args.seconds))
            for _ in range(args.busy):
                app.enqueue_sync("proc.sleepy", [3600], queue="proc")
            while app.queue("proc").counts_sync()["active"] < args.busy:
                time.sleep(0.1)
            time.sleep(2)
            _show(f"busy ({args.busy} jobs held)", _window(client, args.seconds))
        finally:
            worker.terminate()
            time.sleep(0.5)
            worker.terminate()  # a second signal hands the jobs back at once
            worker.wait(30)
            app.close_sync()
            client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
