"""The demo's printed next steps run as printed, from the shell of the README's first
block (``.venv/bin/corral demo``), and a re-run keeps the jobs they name (issue 15)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The console script ``pip install`` made beside the interpreter running the tests.
CONSOLE_SCRIPT = Path(sys.executable).parent / "corral"


@pytest.fixture
def shell_dir(tmp_path: Path) -> Path:
    """A directory with ``.venv/bin/corral`` in it, as after the README's first block."""
    assert CONSOLE_SCRIPT.is_file(), f"no console script at {CONSOLE_SCRIPT}: pip install -e ."
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(CONSOLE_SCRIPT, bin_dir / "corral")
    return tmp_path


def sh(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CORRAL_URL", "REDIS_URL")}
    # ``corral`` is not on PATH in that shell (the venv is not activated).
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not (Path(p) / "corral").exists()
    )
    return subprocess.run(
        ["bash", "-c", "set -e\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def next_steps(output: str) -> list[str]:
    """The commands the demo printed after "Data lives in"."""
    tail = output.split("Data lives in:", 1)[1].splitlines()[1:]
    return [m[1] for line in tail if (m := re.match(r"\s+[A-Z][^:]*:\s+(\S.*)$", line))]


# Slow (four demo runs and their commands; CI): the one-job test below keeps the
# printed steps in the inner loop.
@pytest.mark.slow
@pytest.mark.parametrize("url_option", ["", "--url sqlite:///other.db"])
def test_printed_next_steps_run_as_printed(shell_dir: Path, url_option: str) -> None:
    demo = sh(f".venv/bin/corral demo --jobs 6 {url_option}", shell_dir)
    assert demo.returncode == 0, demo.stderr
    commands = next_steps(demo.stdout)
    assert len(commands) >= 3, demo.stdout
    assert all(c.startswith((".venv/bin/corral ", "export ")) for c in commands), commands
    # The last one serves until Ctrl-C: tests/cli/test_demo_serve.py runs it.
    assert commands[-1] == ".venv/bin/corral demo --serve", commands
    ran = sh("\n".join(commands[:-1]), shell_dir)
    assert ran.returncode == 0, f"{commands}\n{ran.stderr}"
    assert "demo.broken_import" in ran.stdout and "failed" in ran.stdout

    # A second run keeps the first run's jobs: the printed `job` command still works.
    again = sh(f".venv/bin/corral demo --jobs 6 {url_option}", shell_dir)
    assert again.returncode == 0, again.stderr
    rerun = sh("\n".join(commands[:-1]), shell_dir)
    assert rerun.returncode == 0, f"{commands}\n{rerun.stderr}"


def test_a_demo_of_one_job_names_a_job_that_exists(shell_dir: Path) -> None:
    demo = sh(".venv/bin/corral demo --jobs 1", shell_dir)
    assert demo.returncode == 0, demo.stderr
    commands = next_steps(demo.stdout)
    assert "<id>" not in " ".join(commands)
    # The last one serves until Ctrl-C: tests/cli/test_demo_serve.py runs it.
    assert commands[-1] == ".venv/bin/corral demo --serve", commands
    ran = sh("\n".join(commands[:-1]), shell_dir)
    assert ran.returncode == 0, f"{commands}\n{ran.stderr}"
