"""What every scenario needs: a backend of its own, a ledger, a client, worker pools."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.app import QUEUE, make_app
from chaos.harness import Pool, RedisProc
from chaos.ledger import Ledger
from chaos.topology import ClusterProcs, SentinelProcs
from chaos.verdict import Result
from corral import Corral

__all__ = ["Env", "integrity", "redis_consistency"]


class Env:
    """One scenario run on one backend (``redis``, ``sqlite``, ``cluster``: a 3x3 Redis
    Cluster, or ``sentinel``: a primary, a replica and three sentinels), torn down by
    ``close`` (or ``with``)."""

    def __init__(self, name: str, backend: str, root: Path, **redis_options: str) -> None:
        self.name, self.backend = name, backend
        self.dir = root / f"{name}-{backend}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(self.dir / "ledger.db")
        self.redis: RedisProc | None = None
        self.cluster: ClusterProcs | None = None
        self.sentinel: SentinelProcs | None = None
        if backend == "redis":
            self.redis = RedisProc(self.dir / "redis", **redis_options).start()
            self.url = self.redis.url
        elif backend == "cluster":
            self.cluster = ClusterProcs(self.dir / "cluster", **redis_options).start()
            self.url = self.cluster.url
        elif backend == "sentinel":
            self.sentinel = SentinelProcs(self.dir / "sentinel")
            for node in (self.sentinel.primary, self.sentinel.replica):
                node.options.update(redis_options)
            self.url = self.sentinel.start().url
        else:
            self.db_path = self.dir / "corral.db"
            self.url = f"sqlite:///{self.db_path}"
        self.client: Corral = make_app(self.url)
        self.pools: list[Pool] = []
        self.started = time.time()
        self.result = Result(name, backend)

    def pool(
        self,
        size: int,
        *,
        lease: float | None,
        concurrency: int = 10,
        grace: float | None = 5.0,
        max_stalls: int | None = 50,
        queues: str = QUEUE,
        env: dict[str, str] | None = None,
        url: str | None = None,
        ready: bool = True,
    ) -> Pool:
        """Start ``size`` supervised workers; by default wait until all are connected.
        ``None`` for ``lease``, ``grace`` or ``max_stalls``: the library's default."""
        args = ["-q", queues, "-c", str(concurrency), "--log-level", "warning"]
        for flag, value in (("--lease", lease), ("--grace", grace), ("--max-stalls", max_stalls)):
            if value is not None:
                args += [flag, str(value)]
        index = len(self.pools) + 1
        pool = Pool(size, url or self.url, self.ledger, self.dir / f"logs{index}", args, env)
        self.pools.append(pool)
        if ready and not pool.wait_ready(self.client, timeout=60):
            raise RuntimeError(f"workers did not start: see {pool.logs}")
        return pool

    def enqueue(
        self, name: str, arglist: Sequence[tuple[Any, ...]], chunk: int = 1000
    ) -> list[str]:
        """Enqueue one job per argument tuple; acknowledged ids go to the ledger."""
        task = self.client.tasks[name]
        ids: list[str] = []
        for start in range(0, len(arglist), chunk):
            jobs = task.enqueue_many_sync([task.call(*a) for a in arglist[start : start + chunk]])
            batch = [job.id for job in jobs]
            self.ledger.enqueued(batch, task.queue)
            ids += batch
        return ids

    def worker_logs(self) -> str:
        return "\n".join(pool.logs_text() for pool in self.pools)

    def finish(self) -> Result:
        self.result.wall_s = time.time() - self.started
        return self.result

    def close(self) -> None:
        for pool in self.pools:
            with contextlib.suppress(Exception):
                pool.stop()
        with contextlib.suppress(Exception):
            self.client.close_sync()
        if self.redis is not None:
            self.redis.stop()
        if self.cluster is not None:
            self.cluster.stop()
        if self.sentinel is not None:
            self.sentinel.stop()
        self.ledger.close()

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of an SQLite file ("ok" when sound)."""
    conn = sqlite3.connect(str(path), timeout=60)
    try:
        return "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def redis_consistency(redis: RedisProc, queue: str, prefix: str = "corral") -> list[str]:
    """Problems in a queue's Redis keys: a job in two state sets, a state field that
    disagrees with its set, a lease token on a job that is not active (or missing)."""
    base = f"{prefix}:{{{queue}}}:"
    states = ("waiting", "active", "delayed", "completed", "failed", "cancelled")
    problems: list[str] = []
    with redis.client() as client:
        where: dict[str, list[str]] = {}
        for state in states:
            for raw in client.zrange(base + state, 0, -1):
                where.setdefault(raw.decode(), []).append(state)
        pipe = client.pipeline(transaction=False)
        ids = list(where)
        for job_id in ids:
            pipe.hmget(base + "j:" + job_id, "state", "tok", "name")
        fields = pipe.execute()
    for job_id, (state, tok, name) in zip(ids, fields, strict=True):
        sets = where[job_id]
        if state is None and name is not None:
            state = b"waiting"  # a job added waiting stores no state (add_job.lua)
        if len(sets) != 1:
            problems.append(f"{job_id} is in {sets}")
        elif state is None:
            problems.append(f"{job_id} is in {sets[0]} but has no job hash")
        elif state.decode() != sets[0]:
            problems.append(f"{job_id} is in {sets[0]} but its state says {state.decode()}")
        elif (tok is not None) != (sets[0] == "active"):
            problems.append(f"{job_id} is {sets[0]} with token={tok!r}")
    return problems
