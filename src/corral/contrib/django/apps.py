"""The Django app: ``INSTALLED_APPS = [..., "corral.contrib.django"]`` gives
``manage.py corral_worker`` and the system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class CorralConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    name = "corral.contrib.django"
    label = "corral"
    verbose_name = "Corral"

    def ready(self) -> None:
        from corral.contrib.django.checks import check_backends, check_reachable
        from corral.contrib.django.signals import quiet_empty_exc_info

        checks.register(check_backends, "corral")
        checks.register(check_reachable, "corral", deploy=True)
        quiet_empty_exc_info()
