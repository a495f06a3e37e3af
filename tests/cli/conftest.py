from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent

#: The CLI is a thin layer over the Queue API, so in the inner loop its tests run on
#: SQLite, and on Redis only these (the basic round trips): every invocation is a
#: process, and a Redis one imports redis-py on top (~0.15 s). CI (the ``slow`` marker)
#: runs every CLI test on both backends.
INNER_LOOP_ON_REDIS = {
    "test_commands.py::test_enqueue_then_job_then_queues",
    "test_commands.py::test_cancel_and_retry_by_id_and_in_bulk",
    "test_commands.py::test_enqueue_wait_reports_failure_with_exit_code",
}


@pytest.fixture
def url(store_url: str) -> str:
    """The CLI tests' backend: each runs on Redis and on SQLite (``store_url``)."""
    return store_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(HERE):
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("store_url") != "redis":
            continue
        if (
            f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
            not in INNER_LOOP_ON_REDIS
        ):
            item.add_marker(pytest.mark.slow)
