"""Corral's pytest plugin: the ``corral_url`` and ``corral_app`` fixtures.

Loaded automatically where Corral is installed (the ``pytest11`` entry point; or list
``pytest_plugins = ["corral.testing.pytest_plugin"]``; ``-p
no:corral.testing.pytest_plugin`` turns it off). Each test gets an empty store of its
own: a SQLite file in its ``tmp_path``, or, with ``--corral-url`` (or the
``CORRAL_TEST_URL`` environment variable) naming a Redis, a key prefix of its own on
that server, its keys deleted after the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from corral.app import Corral

#: Environment variable naming the store for the fixtures (like ``--corral-url``).
URL_ENV = "CORRAL_TEST_URL"
#: The apps a test's ``corral_app`` handed out (closed right after the test's call).
_APPS = pytest.StashKey[list["Corral"]]()


class AppFactory(Protocol):
    """The ``corral_app`` fixture: ``corral_app()`` makes a fresh app on the test's
    store (keyword arguments go to :class:`~corral.Corral`); ``corral_app(my_app)``
    points your own app, its tasks included, at the test's store until the test ends."""

    def __call__(self, app: Corral | None = None, **options: Any) -> Corral: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("corral")
    group.addoption(
        "--corral-url",
        default=None,
        help=f"store for the corral_app fixture (else ${URL_ENV}, else a SQLite file per test)",
    )


@pytest.fixture
def corral_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store of this test's apps: ``--corral-url``, else ``$CORRAL_TEST_URL``, else
    a SQLite file in the test's ``tmp_path``."""
    chosen = request.config.getoption("corral_url") or os.environ.get(URL_ENV)
    return str(chosen) if chosen else f"sqlite:///{tmp_path / 'corral.db'}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Close the test's apps while an async test's event loop is still open (async
    plugins close it before the fixtures' teardown, which could then only drop the
    connections unclosed)."""
    try:
        return (yield)
    finally:
        from corral.testing.store import close_everywhere

        for app in item.stash.get(_APPS, []):
            close_everywhere(app)


@pytest.fixture
def corral_app(request: pytest.FixtureRequest, corral_url: str) -> Iterator[AppFactory]:
    """Apps on this test's own empty store (see :class:`AppFactory`); after the test
    their connections are closed, borrowed apps pointed back at their own store, and
    the test's Redis keys deleted."""
    from contextlib import ExitStack

    from corral import Corral
    from corral.testing.store import close_everywhere, delete_prefix, use_store

    prefix = f"corral-test-{os.urandom(6).hex()}"
    made: list[Corral] = []
    request.node.stash[_APPS] = handed = []
    with ExitStack() as stack:

        def factory(app: Corral | None = None, **options: Any) -> Corral:
            if app is None:
                options.setdefault("prefix", prefix)
                app = Corral(corral_url, **options)
                made.append(app)
            elif options:
                raise TypeError("corral_app(app) takes no options: the app has its own")
            else:
                stack.enter_context(use_store(app, corral_url, prefix=prefix))
            handed.append(app)
            return app

        try:
            yield factory
        finally:
            for app in made:
                close_everywhere(app)
    delete_prefix(corral_url, prefix)
