"""``set_limits`` changes only the limits it is given (issue 15), on both backends."""

from __future__ import annotations

import pytest

from corral import Corral
from corral.backends.base import QueueLimits


async def test_setting_one_limit_keeps_the_others(url: str) -> None:
    app = Corral(url)
    queue = app.queue("merge")
    try:
        await queue.set_limits(max_active=4, group_rate=(10, 60))
        merged = await queue.set_limits(rate=(100, 60))
        expected = QueueLimits(
            max_active=4, rate_max=100, rate_window=60.0, group_rate_max=10, group_rate_window=60.0
        )
        assert merged == expected
        assert await queue.limits() == expected
        assert await queue.set_limits() == expected  # nothing given: nothing changes
    finally:
        await app.close()


async def test_none_clears_one_limit_and_clear_limits_all(url: str) -> None:
    app = Corral(url)
    queue = app.queue("merge")
    try:
        await queue.set_limits(max_active=4, rate=(100, 60), group_max_active=2)
        assert await queue.set_limits(rate=None) == QueueLimits(max_active=4, group_max_active=2)
        assert await queue.set_limits(max_active=None) == QueueLimits(group_max_active=2)
        assert await queue.clear_limits() == QueueLimits()
        assert await queue.limits() == QueueLimits()
    finally:
        await app.close()


def test_the_blocking_twin_merges_too(url: str) -> None:
    app = Corral(url)
    queue = app.queue("merge")
    try:
        queue.set_limits_sync(max_active=2)
        assert queue.set_limits_sync(group_max_active=1) == QueueLimits(
            max_active=2, group_max_active=1
        )
        assert queue.clear_limits_sync() == QueueLimits()
    finally:
        app.close_sync()


# CLI processes: on Redis in CI only, as most CLI tests (tests/cli/conftest.py).
@pytest.mark.inner_loop_backends("sqlite")
@pytest.mark.parametrize("option", ["--rate", "--max-active"])
def test_cli_limits_merge(url: str, option: str) -> None:
    from tests.cli.test_first_run import corral

    value = "100/60" if option == "--rate" else "3"
    assert corral("limits", "m", "--group-max-active", "2", "--url", url).returncode == 0
    out = corral("limits", "m", option, value, "--url", url, "--json")
    assert out.returncode == 0, out.stderr
    assert '"group_max_active": 2' in out.stdout
    cleared = corral("limits", "m", "--group-max-active", "none", "--url", url, "--json")
    assert '"group_max_active": null' in cleared.stdout, cleared.stderr
