"""Corral on SQLite (a file in the run's scratch directory); the counter stays in Redis.

Workers run ``systems.corral_redis:app`` with ``CORRAL_URL`` pointing at the file."""

from __future__ import annotations

from typing import Any, ClassVar

from systems.corral_redis import CorralRedis


class CorralSQLite(CorralRedis):
    id = "corral-sqlite"
    label = "Corral (SQLite)"
    bulk_api = "task.enqueue_many() (one transaction)"
    embedded = True
    settings: ClassVar[dict[str, Any]] = {
        **CorralRedis.settings,
        "store": "SQLite file in a temp dir (WAL); the body's INCR still goes to Redis",
    }

    def db_path(self) -> Any:
        return self.ctx.work_dir / "corral-bench.db"

    def url(self) -> str:
        return f"sqlite:///{self.db_path()}"

    async def reset(self) -> None:
        await self.app.close()
        for suffix in ("", "-wal", "-shm"):
            self.db_path().with_name(self.db_path().name + suffix).unlink(missing_ok=True)
        await self.app.backend()

    async def store_bytes(self, redis: Any) -> int:
        path = self.db_path()
        files = [path, path.with_name(path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())
