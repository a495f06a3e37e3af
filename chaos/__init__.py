"""Corral's chaos suite: real worker processes, real faults, losses counted from outside.

``python -m chaos [--quick] [--only NAME ...] [--backend redis|sqlite|all]`` runs the
scenarios in :mod:`chaos.scenarios` and writes ``chaos/RESULTS.md``. Every job
execution is appended to a ledger (an SQLite file that is not Corral's) by the task
itself, so lost jobs and duplicate executions are counted without trusting Corral.
"""
