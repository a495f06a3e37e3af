#!/usr/bin/env python
"""The test project's manage.py (run from the repository root with PYTHONPATH set)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.contrib.django.project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
