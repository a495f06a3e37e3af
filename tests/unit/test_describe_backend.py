"""``describe_backend``: what the worker's start line and a result timeout name."""

from __future__ import annotations

import os

import pytest

from corral.settings import describe_backend


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:s3cret@db:6379/0", "redis://:***@db:6379/0"),
        ("redis://app:s3cret@db/1", "redis://app:***@db/1"),
        ("sqlite:////srv/jobs.db", "sqlite:////srv/jobs.db (file /srv/jobs.db)"),
        ("sqlite:///:memory:", "sqlite:///:memory: (in memory)"),
    ],
)
def test_describes_the_store_without_its_password(url: str, expected: str) -> None:
    assert describe_backend(url) == expected


def test_a_relative_sqlite_file_is_shown_absolute() -> None:
    expected = os.path.join(os.getcwd(), "corral.db")
    assert describe_backend("sqlite:///corral.db") == f"sqlite:///corral.db (file {expected})"
