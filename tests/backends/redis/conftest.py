"""A connected RedisBackend on the session's private redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from chaos.harness import RedisProc

from corral.backends.redis import RedisBackend


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    b = RedisBackend(redis_url)
    await b.connect()
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisProc]:
    """A private redis-server of the test's own with AOF and ``appendfsync always``
    (killed and restarted by restart tests)."""
    server = RedisProc(tmp_path, appendonly="yes", appendfsync="always").start()
    try:
        yield server
    finally:
        server.stop()
