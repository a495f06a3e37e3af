"""``corral serve`` as a subprocess, for the tests that start the real command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def serve_cmd(*args: str) -> list[str]:
    """The command line of ``corral serve`` on the test app, with ``args``."""
    return [sys.executable, "-m", "corral", "serve", "tests.web.apps:app", *args]


def serve_env(url: str) -> dict[str, str]:
    """This environment pointed at ``url``, without keys or a Redis URL of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("CORRAL_API_KEYS", "REDIS_URL")}
    return {**env, "CORRAL_URL": url, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
