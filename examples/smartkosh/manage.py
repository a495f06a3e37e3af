#!/usr/bin/env python
"""Django's command-line utility for SmartKosh (``manage.py corral_worker``, ...)."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run from anywhere: the repository root makes ``examples.smartkosh`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.smartkosh.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
