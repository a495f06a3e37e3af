"""Flow-control tests run on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["redis", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'c.db'}"
