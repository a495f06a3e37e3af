#!/usr/bin/env python3
"""Benchmark Corral against its peers on this machine (see bench/README.md).

python bench/run.py            # full run in bench/.venv (set up on first use)
python bench/run.py --setup    # create/update bench/.venv and bench/node_modules
python bench/run.py --smoke    # Corral only, a few hundred jobs, this interpreter
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from harness import env  # noqa: E402  (standard library only: safe before the re-exec)


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--setup", action="store_true", help="create/update the environment, then exit")
    p.add_argument("--smoke", action="store_true", help="quick self-test: Corral only, no peers")
    p.add_argument("--runs", type=int, help="runs per figure; the median is reported (3)")
    p.add_argument("--systems", type=_csv, help="comma-separated system ids (default: all)")
    p.add_argument("--scenarios", type=_csv, help="comma-separated letters a-m (default: all)")
    p.add_argument("--n", type=int, help="jobs for bulk enqueue and drains (20000)")
    p.add_argument("--n-one", type=int, help="jobs for one-at-a-time enqueue (5000)")
    p.add_argument("--samples", type=int, help="latency probes per run (300)")
    p.add_argument("--backlog-large", type=int, help="large backlog for scenario f (1000000)")
    p.add_argument("--backlog-systems", type=_csv, help="systems measured in scenario f")
    p.add_argument(
        "--embedded-processes", type=int, help="worker processes on one file in scenario l (8)"
    )
    p.add_argument("--out", type=Path, help="where RESULTS.md and results.json go (bench/)")
    p.add_argument("--keep-logs", action="store_true", help="keep the worker logs' temp dir")
    p.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="only rewrite RESULTS.md next to RESULTS_JSON from it (no measuring)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    os.environ.setdefault(
        "BENCH_COMMAND", shlex.join([Path(sys.executable).name, "bench/run.py", *argv])
    )
    if args.setup:
        env.setup()
        return 0
    if args.render is not None:
        from harness import report

        report.render(args.render)
        return 0
    if not args.smoke:
        if env.needs_setup():
            env.setup()
        if not env.in_bench_venv():
            python = str(env.VENV_PYTHON)
            os.execv(python, [python, str(Path(__file__).resolve()), *argv])
    from harness.main import execute

    return asyncio.run(execute(args))


if __name__ == "__main__":
    sys.exit(main())
