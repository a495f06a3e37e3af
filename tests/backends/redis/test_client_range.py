"""Both ends of the redis-py range that pyproject.toml declares.

``mux.py`` and ``cluster.py`` use redis-py internals, so Corral pins a range rather
than a floor alone. The highest end is what the ordinary install resolves to (checked
here cheaply; every other Redis test runs on it). The lowest end is installed into an
overlay directory and the Redis conformance suite (standalone, Cluster, Sentinel) and
the multiplexer's tests run on it in a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import redis
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
#: What the lowest end runs: the contract suite on standalone Redis, the 3x3 cluster and
#: the Sentinel group (the EVALSHA variant adds nothing client-side), and the
#: multiplexer's tests.
SUBSET = ["tests/contract", "tests/backends/redis/test_mux.py"]
# Left out: the cluster's store-stall tests (CLIENT PAUSE on every primary) now and then
# leave a cluster client unclosed for the next test's setup, on every redis-py.
SELECT = "redis and not eval and not (cluster and store_stalls)"


def declared() -> Requirement:
    """Corral's redis requirement, as pyproject.toml states it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == "redis"]
    assert len(found) == 1, f"pyproject.toml should depend on redis once, found {found}"
    return found[0]


def lowest(requirement: Requirement) -> str:
    floors = [s.version for s in requirement.specifier if s.operator == ">="]
    assert len(floors) == 1, f"{requirement} should have exactly one >= bound"
    return floors[0]


def test_the_redis_py_range_has_a_floor_and_a_major_ceiling() -> None:
    requirement = declared()
    assert "hiredis" in requirement.extras  # the multiplexer parses with hiredis
    ceilings = [Version(s.version) for s in requirement.specifier if s.operator == "<"]
    assert len(ceilings) == 1, f"{requirement} should have exactly one < bound"
    ceiling = ceilings[0]
    # Below the next major: internals may move in any major release.
    assert ceiling.minor == ceiling.micro == 0
    assert ceiling > Version(lowest(requirement))


def test_the_installed_redis_py_is_within_the_declared_range() -> None:
    requirement = declared()
    installed = importlib.metadata.version("redis")
    assert installed == redis.__version__
    assert requirement.specifier.contains(installed), (
        f"redis-py {installed} is installed; pyproject.toml declares {requirement}"
    )


def overlay(version: str) -> Path:
    """A directory holding redis-py ``version`` (with hiredis), installed once and
    kept across sessions; to be put first on the path."""
    cache = Path(tempfile.gettempdir()) / "corral-redis-py"
    target = cache / f"{version}-py{sys.version_info.major}{sys.version_info.minor}"
    if (target / "redis" / "__init__.py").exists():
        return target
    cache.mkdir(exist_ok=True)
    # Installed aside and renamed into place: a session killed half-way, or two
    # sessions at once, never leave a half-installed overlay behind.
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".staging-"))
    spec = f"redis[hiredis]=={version}"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "--target", str(staging), spec], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"pip install --target {staging} {spec!r} failed:\n{done.stderr}"
    try:
        staging.rename(target)
    except OSError:  # another session got there first
        assert (target / "redis" / "__init__.py").exists()
    return target


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_lowest_declared_redis_py_passes_the_redis_suite(tmp_path: Path) -> None:
    low = lowest(declared())
    path = overlay(low)
    pythonpath = [str(path), str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p)}
    code = (
        "import sys, redis, pytest;"
        "print('redis-py', redis.__version__, redis.__file__, flush=True);"
        "sys.exit(pytest.main(sys.argv[1:]))"
    )
    # Its own basetemp: a nested session must not rotate away this session's tmp dirs.
    # No -m: the cluster and Sentinel runs of the contract suite are marked slow.
    args = ["-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}"]
    run = subprocess.run(
        [sys.executable, "-c", code, *args, *SUBSET, "-k", SELECT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    output = run.stdout + run.stderr
    first = output.splitlines()[0].split() if output else []
    assert first[:1] == ["redis-py"] and Version(first[1]) == Version(low), (
        f"the subprocess imported another redis-py:\n{output}"
    )
    assert Path(first[2]).is_relative_to(path), f"redis-py came from {first[2]}, not {path}"
    assert run.returncode == 0, f"the Redis suite fails on redis-py {low}:\n{output[-6000:]}"
    assert " passed" in output and " failed" not in output
