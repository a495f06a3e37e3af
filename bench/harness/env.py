"""The harness's own environment (bench/.venv, bench/node_modules) and the machine.

Standard library only: ``run.py`` uses this before it re-executes itself inside
bench/.venv.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
VENV = BENCH / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".bench-setup"


def environments() -> dict[Path, Path]:
    """{venv: requirements file}: bench/.venv, and bench/.venv/<name> for each
    requirements-<name>.txt (peers whose redis-py pins exclude the main one's)."""
    envs = {VENV: BENCH / "requirements.txt"}
    for reqs in sorted(BENCH.glob("requirements-*.txt")):
        envs[VENV / reqs.stem.removeprefix("requirements-")] = reqs
    return envs


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in [*environments().values(), BENCH / "package.json"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def needs_setup() -> bool:
    if not STAMP.exists() or not all((v / "bin" / "python").exists() for v in environments()):
        return True
    node_ok = (BENCH / "node_modules" / "bullmq").is_dir() or shutil.which("npm") is None
    return STAMP.read_text() != _fingerprint() or not node_ok


def setup() -> None:
    """Create or update every environment (Corral editable + the pinned peers) and
    bench/node_modules."""
    for venv, reqs in environments().items():
        python = venv / "bin" / "python"
        if not python.exists():
            print(f"==> creating {venv}", file=sys.stderr)
            subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        print(f"==> installing {reqs.name} into {venv}", file=sys.stderr)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        corral = ["-e", str(ROOT)] if venv == VENV else []
        subprocess.check_call([*pip, *corral, "-r", str(reqs)])
    npm = shutil.which("npm")
    if npm is None:
        print("warning: npm not found; the Node BullMQ system will fail", file=sys.stderr)
    else:
        # `npm install` (not `ci`): exact versions are pinned in package.json, and `ci`
        # rejects locks that lack other platforms' optional binaries.
        print("==> npm install (bullmq for Node)", file=sys.stderr)
        subprocess.check_call([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=BENCH)
    STAMP.write_text(_fingerprint())


def _cpuinfo() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def cpu_busy(seconds: float = 1.0) -> float:
    """Percent of all CPUs busy over ``seconds`` (other work on a shared machine)."""

    def snap() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]

    total0, idle0 = snap()
    time.sleep(seconds)
    total1, idle1 = snap()
    return round(100 * (1 - (idle1 - idle0) / max(1, total1 - total0)), 1)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def corral_source() -> dict[str, Any]:
    """The commit Corral is measured at, and whether src/ has uncommitted changes."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "src").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD") or "?", "dirty_src_files": len(changed)}


def machine() -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": _cpuinfo(),
        "memory_gib": _meminfo_gib(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "node": node_version(),
    }
