"""WSGI entry point (``gunicorn examples.smartkosh.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.smartkosh.settings")
application = get_wsgi_application()
