"""``corral worker`` moves its start-up heap out of the garbage collector's sight (each
full collection would otherwise walk it with the event loop stopped)."""

from __future__ import annotations

from pathlib import Path

from corral import Corral
from tests.worker.procs import WorkerProc


async def test_a_worker_process_runs_jobs_with_its_start_up_heap_frozen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'heap.db'}"
    app = Corral(url)
    worker = WorkerProc(url, tmp_path / "worker.log", "-q", "proc")
    try:
        job = await app.enqueue("proc.gc_state", queue="proc")
        state = await job.result(timeout=30)
        # Imports, the app and the worker: tens of thousands of objects, frozen; what
        # the job itself allocated is still tracked.
        assert state["frozen"] > 10_000, worker.output()
        assert state["tracked"] < state["frozen"]
    finally:
        worker.close()
        await app.close()
