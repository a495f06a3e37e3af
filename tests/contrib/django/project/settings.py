"""Django settings of the test project (read once per process, from the environment
the tests set: the SQLite file, the PostgreSQL database when one answers, the store)."""

import os

SECRET_KEY = "corral-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "corral.contrib.django",
    "tests.contrib.django.testapp",
]
try:
    import django.tasks  # noqa: F401  (Django 6)
except ImportError:
    INSTALLED_APPS.append("django_tasks")  # the backport on Django 5.2

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["CORRAL_DJANGO_SQLITE"],
    }
}
if os.environ.get("CORRAL_DJANGO_POSTGRES"):
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["CORRAL_DJANGO_POSTGRES"],
        "HOST": os.environ.get("CORRAL_TEST_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CORRAL_TEST_PG_PORT", "5432"),
        "USER": os.environ.get("CORRAL_TEST_PG_USER", "postgres"),
        "PASSWORD": os.environ.get("CORRAL_TEST_PG_PASSWORD", ""),
    }

TASKS = {
    "default": {
        "BACKEND": "corral.contrib.django.CorralBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"url": os.environ.get("CORRAL_DJANGO_STORE", "sqlite:///corral.db")},
    }
}
