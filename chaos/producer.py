"""A producer process: enqueues one job at a time for ``--seconds``, as fast as it can.

Each job gets its own id, and an enqueue that fails is retried with the same id (an
idempotent enqueue), so the ledger's ``enqueued`` table holds exactly the ids whose
enqueue was acknowledged. Errors are recorded by type in ``producer_errors``.

    python -m chaos.producer URL LEDGER --seconds 8 --prefix p1 [--durable]
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    client = make_app(args.url, durable=args.durable)
    ledger = Ledger(args.ledger)
    task = client.tasks["chaos.work"]
    deadline = time.monotonic() + args.seconds
    n = 0
    pending: list[str] = []
    while time.monotonic() < deadline:
        n += 1
        job_id = f"{args.prefix}-{n:07d}"
        while True:
            try:
                task.options(job_id=job_id).enqueue_sync(args.ms)
                break
            except CorralError as exc:
                ledger.producer_error(type(exc).__name__, str(exc)[:200])
            except Exception as exc:  # anything else is a bug worth seeing in the report
                ledger.producer_error("other:" + type(exc).__name__, str(exc)[:200])
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
