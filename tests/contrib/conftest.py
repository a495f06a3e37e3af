from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store for tests that need only one backend."""
    return f"sqlite:///{tmp_path / 'contrib.db'}"
