"""The embedded SQLite backend (the zero-setup default)."""

from corral.backends.sqlite.backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
