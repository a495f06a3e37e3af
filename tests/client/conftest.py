from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from corral import Corral


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Corral]:
    """An app (no worker) on each backend in turn; its connections are closed afterwards."""
    app = Corral(store_url)
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
def sync_app(store_url: str) -> Iterator[Corral]:
    """An app used only through the blocking ``*_sync`` calls, from plain sync tests."""
    app = Corral(store_url)
    try:
        yield app
    finally:
        app.close_sync()


EMPTY = {
    "waiting": 0,
    "delayed": 0,
    "active": 0,
    "completed": 0,
    "failed": 0,
    "cancelled": 0,
    "blocked": 0,
    "paused": 0,
}
