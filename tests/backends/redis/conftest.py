"""A connected RedisBackend on the session's private redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from corral.backends.redis import RedisBackend


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    b = RedisBackend(redis_url)
    await b.connect()
    try:
        yield b
    finally:
        await b.close()
