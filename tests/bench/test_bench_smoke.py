"""The benchmark harness runs end to end.

``bench/run.py --smoke`` measures Corral only (Redis and SQLite, a few hundred jobs)
with this interpreter and its own throwaway redis-server. This checks that the
harness works and writes well-formed results, never how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = "abcei"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_smoke_run_writes_well_formed_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    data = json.loads((tmp_path / "results.json").read_text())
    assert data["mode"] == "smoke"
    assert data["machine"]["nproc"] >= 1
    assert data["machine"]["redis"]
    assert set(data["systems"]) == {"corral-redis", "corral-sqlite"}
    for system_id, entry in data["systems"].items():
        assert "error" not in entry, (system_id, entry.get("error"))
        assert entry["version"]
        for key in SCENARIOS:
            result = entry["scenarios"][key]
            assert result["error"] is None, (system_id, key, result["error"])
            assert len(result["runs"]) == data["config"]["runs"]
            assert result["median"] > 0, (system_id, key)
        bulk = entry["scenarios"]["b"]["runs"][0]
        assert bulk["bytes_per_job"] > 0
        drain = entry["scenarios"]["c"]["runs"][0]
        assert drain["memory"]["rss_kib"] > 0
        assert drain["loops"] == ["uvloop"]  # Corral's default, seen by the job
        empty = entry["scenarios"]["i"]["runs"][0]  # counted by the per-process flushers
        assert empty["n"] > 0 and empty["value"] > 0
        latency = entry["scenarios"]["e"]["runs"][0]
        assert 0 < latency["p50"] <= latency["p99"]

    report = (tmp_path / "RESULTS.md").read_text()
    assert "## Headline: the same work on every system" in report
    for heading in ("## a.", "## b.", "## c.", "## e.", "## g.", "## i."):
        assert heading in report
    assert "error" not in report.lower()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_shards_quick_run_measures_every_variant_and_shard_count(tmp_path: Path) -> None:
    """``bench/shards.py --quick``: the fast-path variants on a one-primary cluster and
    a standalone Redis, and the drains on clusters of 1 and 2 primaries."""
    out = tmp_path / "shards.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "shards.py"), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    data = json.loads(out.read_text())
    fast = data["fastpath"]
    assert set(fast) == {"standalone", "mux", "routed"}
    for variant, runs in fast.items():
        (run,) = runs
        for figure in ("jobs_per_s", "client_cpu_us", "redis_cpu_us", "single_enqueue_us"):
            assert run[figure] > 0, (variant, figure)
        assert run["scripts_per_job"] > 0, variant
    # Variant (c) really sends the scripts through redis-py's routing, (b) does not.
    assert fast["routed"][0]["redis_py_routed_per_job"] >= fast["routed"][0]["scripts_per_job"]
    assert fast["mux"][0]["redis_py_routed_per_job"] < fast["mux"][0]["scripts_per_job"]
    assert fast["standalone"][0]["redis_py_routed_per_job"] == 0

    shards = data["shards"]
    assert set(shards) == {"1", "2"}
    for count, runs in shards.items():
        (run,) = runs
        assert len(run["redis_cpu_us"]) == int(count)  # one queue per primary, each busy
        assert all(cpu > 0 for cpu in run["redis_cpu_us"]), count
        assert all(calls > 0 for calls in run["scripts_per_job"]), count
        assert sum(run["jobs_per_worker"]) == data["config"]["per_queue"] * int(count)
        assert run["client_cpu_us"] > 0 and run["jobs_per_s"] > 0

    report = proc.stdout
    assert "## Fast path on one shard" in report and "## Shards" in report
    assert "projected x 1 shard" in report
