"""``python -m examples.playgram``: Playgram's web app and its worker, together.

Starts a ``corral worker`` process for the five queues and serves the FastAPI app
with uvicorn in this process; Ctrl-C or SIGTERM stops the server, then the worker
(which finishes its jobs first, or hands them back). Without
``PLAYGRAM_MANYCHAT_URL`` a stand-in ManyChat runs on loopback (its webhook endpoint
verifies the signatures), so the whole system runs on one machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import uvicorn

from corral.notify import Webhook

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.playgram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("-c", "--concurrency", type=int, default=20, help="jobs at once")
    args = parser.parse_args(argv)

    # The settings tasks.py reads, for this process and the worker alike.
    env = os.environ
    env.setdefault("PLAYGRAM_WEBHOOK_SECRET", Webhook.new_secret())
    fake = None
    if not env.get("PLAYGRAM_MANYCHAT_URL"):
        from examples.playgram.manychat import FakeManyChat

        fake = FakeManyChat(env["PLAYGRAM_WEBHOOK_SECRET"])
        env["PLAYGRAM_MANYCHAT_URL"] = fake.api_url
        env.setdefault("PLAYGRAM_MANYCHAT_WEBHOOK_URL", fake.webhook_url)
        env.setdefault("PLAYGRAM_WEBHOOK_ALLOW", "127.0.0.1")  # the stand-in is local
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)

    command = [sys.executable, "-m", "corral", "worker", "examples.playgram.tasks:app"]
    worker = subprocess.Popen(
        [*command, "-c", str(args.concurrency), "--grace", "10"],
        # The same working directory as the app: relative paths (the default
        # sqlite:///corral.db, playgram-data/) must name the same files in both.
        start_new_session=True,  # Ctrl-C reaches this process only; it stops the worker
    )
    server = uvicorn.Server(
        uvicorn.Config("examples.playgram.app:app", args.host, args.port, log_level="warning")
    )

    def watch() -> None:  # a worker that dies takes the app down with it, visibly
        code = worker.wait()
        if not server.should_exit:
            print(f"playgram: the worker exited ({code}); stopping", file=sys.stderr)
            server.should_exit = True

    threading.Thread(target=watch, daemon=True).start()
    # uvicorn handles SIGINT/SIGTERM while it serves, then raises them again for the
    # handlers it found: make those a no-op, so this process goes on to stop the worker.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    where = f"http://{args.host}:{args.port}"
    print(f"Playgram on {where} (dashboard {where}/corral/); worker pid {worker.pid}")
    print("Ctrl-C stops both.", flush=True)
    try:
        server.run()
    finally:
        server.should_exit = True
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if fake is not None:
            fake.close()
    return 0 if worker.returncode in (0, -signal.SIGTERM) else 1


if __name__ == "__main__":
    sys.exit(main())
