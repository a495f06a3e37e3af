"""Django settings of SmartKosh (values from the environment: see config.py)."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from examples.smartkosh import config

try:
    CONFIG = config.load()
except config.SettingError as exc:
    raise ImproperlyConfigured(str(exc)) from None
CONFIG.data.mkdir(parents=True, exist_ok=True)  # the SQLite files and uploads live here

HERE = Path(__file__).resolve().parent
SECRET_KEY = "smartkosh-example-not-secret"  # an example: set your own in production
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "examples.smartkosh.urls"
WSGI_APPLICATION = "examples.smartkosh.wsgi.application"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "corral.contrib.django",  # manage.py corral_worker, system checks
    "examples.smartkosh.ledger",
]
try:
    import django.tasks  # noqa: F401  (Django 6 has the tasks framework built in)
except ImportError:
    INSTALLED_APPS.append("django_tasks")  # the backport on Django 5.2

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "examples.smartkosh.ledger.views.unread_notifications",
            ]
        },
    }
]

DATABASES = {"default": CONFIG.database}
# Uploaded statements are saved here; an import job gets the file's path, never its
# content.
MEDIA_ROOT = CONFIG.data / "media"
MEDIA_URL = "/media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # larger uploads stream to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "imports"
LOGOUT_REDIRECT_URL = "login"

# Django's tasks framework with Corral as its backend: tasks are enqueued with
# task.enqueue() / enqueue_on_commit(), run by `manage.py corral_worker`.
TASKS = {
    "default": {
        "BACKEND": "corral.contrib.django.CorralBackend",
        "QUEUES": ["imports"],
        "OPTIONS": {"url": CONFIG.corral_url},
    }
}

IMPORT_CHUNK_ROWS = CONFIG.chunk_rows
IMPORT_CHUNK_PAUSE = CONFIG.chunk_pause
