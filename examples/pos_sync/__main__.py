"""Run the whole POS sync system: the web app, two workers sharing the queue, the
fake POS and (unless ``CORRAL_SMTP_URL`` names a real relay) a local mail sink that
prints the emails. Ctrl-C or SIGTERM stops everything (workers finish or hand back
their jobs first).

    python -m examples.pos_sync

Environment: ``CORRAL_URL`` / ``REDIS_URL`` (else ``sqlite:///corral.db``),
``POS_PORT`` (8000), ``POS_WORKERS`` (2), ``CORRAL_CONCURRENCY`` (jobs per worker,
10), ``POS_API_URL`` (a real POS; else the fake on ``FAKE_POS_PORT``, 8001, see
fake_pos.py for its knobs), ``CORRAL_SMTP_URL`` / ``CORRAL_EMAIL_FROM`` (else the
sink on ``MAILBOX_PORT``, 8025).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from corral.errors import ConfigurationError
from examples.pos_sync.fake_pos import Settings

ROOT = Path(__file__).resolve().parents[2]  # the directory holding examples/


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def setting(name: str, default: str, low: int, high: int) -> str:
    """An integer setting from the environment, checked: ConfigurationError naming it."""
    raw = os.environ.get(name) or default
    if not (raw.isdigit() and low <= int(raw) <= high):
        raise ConfigurationError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return str(int(raw))


class System:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = False
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        # Checked before anything starts, so a typo is one line, not five tracebacks.
        self.port = int(setting("POS_PORT", "8000", 1, 65535))
        self.workers = int(setting("POS_WORKERS", "2", 1, 64))
        env["CORRAL_CONCURRENCY"] = setting("CORRAL_CONCURRENCY", "10", 1, 10_000)
        if "POS_API_URL" not in env:
            Settings()  # the fake POS's own knobs
            env["FAKE_POS_PORT"] = setting("FAKE_POS_PORT", "8001", 1, 65535)
        if "CORRAL_SMTP_URL" not in env:
            env["MAILBOX_PORT"] = setting("MAILBOX_PORT", "8025", 1, 65535)
        env.setdefault("POS_APP_URL", f"http://127.0.0.1:{self.port}")
        env.setdefault("CORRAL_EMAIL_FROM", "POS Sync <noreply@pos-sync.example>")
        self.env = env

    def start(self, name: str, *args: str) -> None:
        # A session of its own: Ctrl-C reaches this process only, which then stops
        # each child once (a second signal would make a worker hand back at once).
        child = subprocess.Popen([sys.executable, *args], env=self.env, start_new_session=True)
        self.children.append((name, child))

    def run(self) -> int:
        env = self.env
        if "POS_API_URL" not in env:
            pos_port = env["FAKE_POS_PORT"]
            env["POS_API_URL"] = f"http://127.0.0.1:{pos_port}"
            self.start("fake POS", "-m", "examples.pos_sync.fake_pos", "--port", pos_port)
        if "CORRAL_SMTP_URL" not in env:
            mail_port = env["MAILBOX_PORT"]
            env["CORRAL_SMTP_URL"] = f"smtp://127.0.0.1:{mail_port}?tls=none"
            self.start("mailbox", "-m", "examples.pos_sync.mailbox", "--port", mail_port)
        for n in range(self.workers):
            self.start(
                f"worker {n + 1}",
                "-m",
                "corral",
                "worker",
                "examples.pos_sync.tasks:app",
                "--grace",
                "10",
            )
        self.start(
            "web",
            "-m",
            "uvicorn",
            "examples.pos_sync.app:api",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.on_signal)
        announced = False
        while not self.stopping:
            for name, child in self.children:
                if child.poll() is not None:
                    print(f"{name} exited ({child.returncode}); stopping", file=sys.stderr)
                    self.stop()
                    return 1
            if not announced and port_open(self.port):
                announced = True
                print(
                    f"POS sync is up: http://127.0.0.1:{self.port}/ (Ctrl-C stops it)", flush=True
                )
            time.sleep(0.2)
        self.stop()
        return 0

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def stop(self) -> None:
        for _, child in reversed(self.children):  # the web app first, then workers
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15  # the workers' grace, and a little more
        for name, child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop; killing it", file=sys.stderr)
                child.kill()
                child.wait()


def main() -> int:
    try:
        system = System()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return system.run()


if __name__ == "__main__":
    sys.exit(main())
