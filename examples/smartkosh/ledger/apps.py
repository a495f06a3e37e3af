from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "examples.smartkosh.ledger"
    label = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        # The task_finished receiver that reports a failed import (in the worker).
        from examples.smartkosh.ledger import signals  # noqa: F401
