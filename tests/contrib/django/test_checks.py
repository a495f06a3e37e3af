"""System checks: corral.E001 (no Corral backend), E002 (bad OPTIONS), E003 (store
unreachable, with --deploy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from tests.contrib.django.conftest import tasks_setting

ROOT = Path(__file__).resolve().parents[3]


def corral_ids(deploy: bool = False) -> list[str]:
    found = checks.run_checks(tags=["corral"], include_deployment_checks=deploy)
    return [message.id for message in found]


def messages(deploy: bool = False) -> str:
    found = checks.run_checks(tags=["corral"], include_deployment_checks=deploy)
    return "\n".join(f"{m.id}: {m.msg}" for m in found)


@pytest.mark.backends("sqlite")
def test_a_working_backend_passes(store_url: str) -> None:
    with override_settings(TASKS=tasks_setting(store_url)):
        assert corral_ids(deploy=True) == []


def test_no_corral_backend_is_e001() -> None:
    dummy = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    with override_settings(TASKS=dummy):
        assert corral_ids() == ["corral.E001"]
        assert "no TASKS backend is corral.contrib.django.CorralBackend" in messages()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"url": "ftp://nowhere"},
            "TASKS['default']['OPTIONS']: unsupported backend URL 'ftp://nowhere'",
        ),
        ({"url": "sqlite:///x.db", "colour": "blue"}, "unknown option 'colour'"),
        ({"url": "sqlite:///x.db", "attempts": 0}, "attempts must be an integer >= 1"),
        ({"app": "tests.apps.basic:app", "url": "sqlite:///x.db"}, "give 'app' or 'url'"),
    ],
)
def test_bad_options_are_e002(options: dict[str, Any], expected: str) -> None:
    setting = {"default": {"BACKEND": "corral.contrib.django.CorralBackend", "OPTIONS": options}}
    with override_settings(TASKS=setting):
        assert corral_ids() == ["corral.E002"]
        assert expected in messages()


def test_an_unreachable_store_is_e003_with_deploy() -> None:
    with override_settings(TASKS=tasks_setting("redis://127.0.0.1:1/0")):
        assert corral_ids() == []  # not on every manage.py command
        assert corral_ids(deploy=True) == ["corral.E003"]
        assert "redis://127.0.0.1:1/0 cannot be reached" in messages(deploy=True)


@pytest.mark.parametrize(
    ("blocked", "expected"),
    [
        (["django"], "corral.contrib.django needs Django: pip install 'corral[django]'"),
        (
            ["django.tasks", "django_tasks"],
            "the django-tasks backport: pip install 'corral[django]'",
        ),
    ],
)
def test_importing_without_django_names_the_extra(blocked: list[str], expected: str) -> None:
    block = "; ".join(f"sys.modules[{name!r}] = None" for name in blocked)
    code = f"import sys; {block}; import corral.contrib.django"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert "ImportError: corral.contrib.django needs Django" in proc.stderr
    assert expected in proc.stderr
