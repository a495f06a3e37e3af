"""The seed examples' end-to-end tests (real app processes, real workers, real SMTP)
take about 80 s together: they are marked ``slow``, so CI runs them and the local loop
(``scripts/test`` without ``CI``) skips them; ``scripts/test -m slow tests/examples``
runs them alone."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.slow)
