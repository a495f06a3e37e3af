from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from corral import Corral


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Corral]:
    """An app on an empty store of each backend in turn (tasks registered per test)."""
    app = Corral(store_url)
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
def sync_app(store_url: str) -> Iterator[Corral]:
    """The same for sync tests: its calls go through Corral's background loop."""
    app = Corral(store_url)
    try:
        yield app
    finally:
        app.close_sync()
