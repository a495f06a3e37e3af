"""``corral worker``'s isolation flags (--kill-grace, --recycle-memory, --sample-every)
and --prefetch: bad values are refused naming the flag; --recycle-memory reaches the children; the
worker record counts the isolated children alive (``corral workers``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from corral import Corral
from tests.cli.run import corral
from tests.worker.procs import WorkerProc


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--recycle-memory", "lots", "the size must be bytes or a size like '256MB'"),
        ("--recycle-memory", "10k", "the size must be at least 1 MiB, got '10k'"),
        ("--kill-grace", "-1", "-1.0 is not in the range x>=0"),
        ("--kill-grace", "soon", "'soon' is not a valid float"),
        ("--sample-every", "0", "0.0 is not in the range 0.001<=x<=60"),
        ("--prefetch", "-1", "-1 is not in the range x>=0"),
        ("--prefetch", "some", "'some' is not a valid integer"),
    ],
)
def test_bad_isolation_flags_are_refused_naming_the_flag(flag: str, value: str, says: str) -> None:
    out = corral("worker", "tests.apps.heavy:app", flag, value, url="sqlite:///unused.db")
    assert out.returncode == 2
    assert f"Invalid value for '{flag}': {says}" in out.stderr
    assert "Traceback" not in out.stderr


async def _pids(app: Corral, n: int) -> list[int]:
    """Run ``n`` leaky isolated jobs one after another; the pid of each one's child."""
    pids = []
    for _ in range(n):
        job = await app.enqueue("heavy.keep", [96], queue="heavy")
        pids.append(await job.result(timeout=30))
    return pids


async def _children(url: str) -> list[int]:
    out = corral("workers", "--json", url=url)
    assert out.returncode == 0, out.stderr
    return [w["children"] for w in json.loads(out.stdout)]


@pytest.mark.slow
async def test_recycle_memory_replaces_a_leaky_child_and_workers_count_children(
    store_url: str, tmp_path: Path
) -> None:
    app = Corral(store_url)
    try:
        args = ("-q", "heavy", "--sample-every", "0.02", "--kill-grace", "1")
        leaky = WorkerProc(store_url, tmp_path / "a.log", *args, app="tests.apps.heavy:app")
        try:
            first = await _pids(app, 2)
            assert first[0] == first[1], "a child is reused without --recycle-memory"
            for _ in range(100):  # the next heartbeat (every 5 s) carries the count
                if await _children(store_url) == [1]:
                    break
                await asyncio.sleep(0.1)
            assert await _children(store_url) == [1], leaky.output()
        finally:
            leaky.close()
        recycle = (*args, "--recycle-memory", "64MiB")
        fresh = WorkerProc(store_url, tmp_path / "b.log", *recycle, app="tests.apps.heavy:app")
        try:
            second = await _pids(app, 2)
            assert second[0] != second[1], fresh.output()
        finally:
            fresh.close()
    finally:
        await app.close()
