from __future__ import annotations

import pytest


@pytest.fixture
def url(store_url: str) -> str:
    """The CLI tests' backend: each runs on Redis and on SQLite (``store_url``)."""
    return store_url
