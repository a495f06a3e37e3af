"""``python -m examples.smartkosh``: migrate, then the Django dev server on
http://127.0.0.1:8000 and a ``manage.py corral_worker`` process, together; Ctrl-C (or
SIGTERM) stops both.

Settings come from the environment (config.py): ``DATABASE_URL`` (default SQLite in
``.smartkosh/``), ``CORRAL_URL`` / ``REDIS_URL`` (default ``.smartkosh/corral.db``),
``PORT``. A demo user (demo / smartkosh-demo) is created on the first run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from examples.smartkosh import config

MANAGE = Path(__file__).with_name("manage.py")
DEMO_USER, DEMO_PASSWORD = "demo", "smartkosh-demo"


def prepare() -> None:
    """Create or update the tables; the demo user on the first run."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    users = get_user_model()
    if not users.objects.exists():
        users.objects.create_user(DEMO_USER, password=DEMO_PASSWORD)
    connections.close_all()


def main() -> int:
    try:
        settings = config.load()
    except config.SettingError as exc:
        print(f"smartkosh: {exc}", file=sys.stderr)
        return 2
    # This project's settings, whatever another project's shell had set (the children
    # inherit it).
    os.environ["DJANGO_SETTINGS_MODULE"] = "examples.smartkosh.settings"
    try:
        prepare()
    except Exception as exc:  # the database is unreachable, ...: one line, not a traceback
        print(f"smartkosh: cannot prepare the database: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    manage = [sys.executable, str(MANAGE)]
    # Own sessions: Ctrl-C reaches this process only, which stops each child once.
    web = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{settings.port}", "--noreload"],
        start_new_session=True,
    )
    worker = subprocess.Popen([*manage, "corral_worker"], start_new_session=True)
    url = f"http://127.0.0.1:{settings.port}"
    print(
        f"SmartKosh on {url} (log in as {DEMO_USER} / {DEMO_PASSWORD}; Ctrl-C stops it).\n"
        f"Database: {settings.database['ENGINE'].rsplit('.', 1)[-1]} "
        f"{settings.database['NAME']}; Corral store: {settings.corral_url}",
        flush=True,
    )
    code = 0
    while not stop.wait(0.5):
        for name, proc in (("web server", web), ("worker", worker)):
            if proc.poll() is not None:
                print(
                    f"smartkosh: the {name} exited ({proc.returncode}); stopping", file=sys.stderr
                )
                code = 1
                stop.set()
    for proc, sig in ((web, signal.SIGINT), (worker, signal.SIGTERM)):
        if proc.poll() is None:
            proc.send_signal(sig)
    for proc in (web, worker):
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return code


if __name__ == "__main__":
    sys.exit(main())
