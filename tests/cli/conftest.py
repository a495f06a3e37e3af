from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent

#: The CLI is a thin layer over the Queue API, so in the inner loop its tests run on
#: SQLite, and on Redis only the basic commands (this file's tests keep both variants):
#: every invocation is a process, and a Redis one imports redis-py on top (~0.15 s). CI
#: (the ``slow`` marker) runs every CLI test on both backends.
INNER_LOOP_ON_REDIS = {"test_commands.py"}


@pytest.fixture
def url(store_url: str) -> str:
    """The CLI tests' backend: each runs on Redis and on SQLite (``store_url``)."""
    return store_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(HERE) or item.path.name in INNER_LOOP_ON_REDIS:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("store_url") == "redis":
            item.add_marker(pytest.mark.slow)
