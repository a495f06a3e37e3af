"""The same app fixtures as the client tests (an app per backend, no worker)."""

from tests.client.conftest import app, sync_app

__all__ = ["app", "sync_app"]
