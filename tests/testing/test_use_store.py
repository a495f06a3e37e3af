"""corral.testing.use_store: an app, tasks and all, on another store for a while."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral import ConfigurationError, Corral, JobState
from corral.testing import use_store


def test_the_app_uses_the_other_store_and_gets_its_own_back(tmp_path: Path) -> None:
    own, other = f"sqlite:///{tmp_path / 'own.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    app = Corral(own)

    @app.task()
    def noop() -> None: ...

    try:
        noop.enqueue_sync()  # connected to its own store first
        with use_store(app, other, prefix="t1") as same:
            assert same is app and (app.url, app.prefix) == (other, "t1")
            noop.enqueue_sync()
            noop.enqueue_sync()
            assert app.queue("default").counts_sync()[JobState.WAITING.value] == 2
        assert (app.url, app.prefix) == (own, "corral")
        assert app.queue("default").counts_sync()[JobState.WAITING.value] == 1
    finally:
        app.close_sync()


async def test_connected_on_the_running_loop_is_refused(tmp_path: Path) -> None:
    app = Corral(f"sqlite:///{tmp_path / 'own.db'}")
    await app.queues()
    try:
        with (
            pytest.raises(ConfigurationError, match=r"await app\.close"),
            use_store(app, f"sqlite:///{tmp_path / 'other.db'}"),
        ):
            pass
    finally:
        await app.close()


def test_a_bad_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="scheme"), use_store(Corral(), "http://x"):
        pass
