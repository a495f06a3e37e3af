"""``corral worker`` processes for the tests of this directory (their output in a file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class WorkerProc:
    """``corral worker APP ARGS`` on ``url`` (APP: ``tests.apps.basic:app`` unless
    given; ``env`` added to the environment), killed by :meth:`close`.

    This checkout's ``src`` comes first on the path, so the code under test is the
    one that runs, whichever copy of corral the environment has installed."""

    def __init__(
        self,
        url: str,
        log: Path,
        *args: str,
        app: str = "tests.apps.basic:app",
        env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        env = {**os.environ, "CORRAL_URL": url, "PYTHONPATH": path, **(env or {})}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "corral", "worker", app, *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
