"""The whole documents system in one command: ``python -m examples.documents``.

Starts the web app (uvicorn, ``HOST``/``PORT``, default 127.0.0.1:8000), ``WORKERS``
worker processes (default 1) each running ``JOB_CONCURRENCY`` jobs at once (default
2), and, unless ``AI_API_URL`` is set, a local fake AI service. Ctrl-C or SIGTERM
stops the web app, then the workers (each finishes or hands back its running jobs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

import uvicorn

from corral.errors import ConfigurationError
from examples.documents.fake_ai import FakeAI


def _positive(name: str, default: str) -> str:
    raw = os.environ.get(name) or default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {raw!r}")
    return raw


def _stop(signum: int, _: FrameType | None) -> None:
    # uvicorn re-raises the signal that stopped it once it has shut down; ending
    # with SystemExit (instead of dying on the spot) lets the workers be stopped.
    raise SystemExit(0)


def main() -> int:
    try:
        concurrency = _positive("JOB_CONCURRENCY", "2")
        workers = int(_positive("WORKERS", "1"))
        port = int(_positive("PORT", "8000"))
        # The app's own settings, checked before anything starts (imports read some).
        from examples.documents import app, tasks

        app.max_upload_bytes(), app.max_files(), tasks.rate_limit()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("HOST") or "127.0.0.1"
    fake = None
    if not os.environ.get("AI_API_URL"):
        fake = FakeAI().start()
        os.environ["AI_API_URL"] = fake.url
        print(f"fake AI service on {fake.url} (set AI_API_URL to use another)", flush=True)
    command = [sys.executable, "-m", "corral", "worker", "examples.documents.tasks:app"]
    command += ["-q", "documents", "-c", concurrency]
    # Own sessions: a terminal's Ctrl-C reaches this process only, which then stops
    # each worker with one SIGTERM (a second signal would hand jobs back at once).
    procs = [subprocess.Popen(command, start_new_session=True) for _ in range(workers)]
    signal.signal(signal.SIGTERM, _stop)
    print(
        f"documents API on http://{host}:{port}/api/documents/async-upload, "
        f"dashboard on http://{host}:{port}/admin/queues/",
        flush=True,
    )
    try:
        uvicorn.run("examples.documents.app:api", host=host, port=port, log_level="warning")
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        if fake is not None:
            fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
