"""``corral`` run as a user would: a real process of this interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def corral(
    *args: str,
    url: str | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """``corral [--url URL] ARGS`` in ``cwd``, with ``env`` added to this environment."""
    url_args = ["--url", url] if url else []
    return subprocess.run(
        [sys.executable, "-m", "corral", *url_args, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
