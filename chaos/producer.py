"""A producer process: enqueues one job at a time for ``--seconds``, as fast as it can
or ``--rate`` per second.

Each job gets its own id, and an enqueue that fails is retried with the same id (an
idempotent enqueue), so the ledger's ``enqueued`` table holds exactly the ids whose
enqueue was acknowledged. Errors are recorded by type in ``producer_errors``. With
``--stats`` it prints one JSON line at the end: ``{"enqueues": n, "errors": n, "slowest": seconds}``
(slowest: the longest single enqueue call that succeeded).

    python -m chaos.producer URL LEDGER --seconds 8 --prefix p1 [--durable] [--rate 200] [--stats]
"""

from __future__ import annotations

import argparse
import json
import time

from chaos.app import make_app
from chaos.ledger import Ledger
from corral import CorralError


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("ledger")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--prefix", default="p")
    parser.add_argument("--durable", action="store_true")
    parser.add_argument("--ms", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=0.0, help="enqueues/s (0: flat out)")
    parser.add_argument("--stats", action="store_true", help="print a JSON summary at the end")
    args = parser.parse_args()
    client = make_app(args.url, durable=args.durable)
    ledger = Ledger(args.ledger)
    task = client.tasks["chaos.work"]
    deadline = time.monotonic() + args.seconds
    n = errors = 0
    slowest = 0.0
    next_at = time.monotonic()
    pending: list[str] = []
    while time.monotonic() < deadline:
        if args.rate > 0:
            next_at = max(next_at + 1 / args.rate, time.monotonic())
            time.sleep(max(0.0, next_at - time.monotonic()))
        n += 1
        job_id = f"{args.prefix}-{n:07d}"
        while True:
            started = time.monotonic()
            try:
                task.options(job_id=job_id).enqueue_sync(args.ms)
                slowest = max(slowest, time.monotonic() - started)
                break
            except CorralError as exc:
                ledger.producer_error(type(exc).__name__, str(exc)[:200])
            except Exception as exc:  # anything else is a bug worth seeing in the report
                ledger.producer_error("other:" + type(exc).__name__, str(exc)[:200])
            errors += 1
            time.sleep(0.05)
            if time.monotonic() > deadline + 30:
                return 1
        pending.append(job_id)
        if len(pending) >= 20:
            ledger.enqueued(pending, task.queue)
            pending = []
    ledger.enqueued(pending, task.queue)
    client.close_sync()
    ledger.close()
    if args.stats:
        summary = {"enqueues": n, "errors": errors, "slowest": round(slowest, 3)}
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
