"""``python -m chaos [--quick] [--only NAME ...] [--backend redis|sqlite|cluster|sentinel|all]``."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from chaos.report import write
from chaos.scenarios import SCENARIOS, run
from chaos.verdict import Result

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small numbers (about a minute)")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=", ".join(names))
    parser.add_argument(
        "--backend", choices=["redis", "sqlite", "cluster", "sentinel", "all"], default="all"
    )
    parser.add_argument(
        "--report",
        type=Path,
        help="where to write the results (default: chaos/RESULTS.md for a full run of "
        "everything, nowhere otherwise)",
    )
    parser.add_argument("--keep", action="store_true", help="keep logs and databases")
    args = parser.parse_args(argv)
    everything = not args.only and args.backend == "all" and not args.quick
    report = args.report or (HERE / "RESULTS.md" if everything else None)
    backends = (
        ("redis", "sqlite", "cluster", "sentinel") if args.backend == "all" else (args.backend,)
    )
    root = Path(tempfile.mkdtemp(prefix="corral-chaos-"))
    started = time.time()
    results: list[Result] = []
    for scenario in SCENARIOS:
        if args.only and scenario.name not in args.only:
            continue
        for backend in backends:
            if backend not in scenario.backends:
                continue
            results += run(scenario, backend, root, args.quick)
    wall = time.time() - started
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)} of {len(results)} passed in {wall:.0f} s")
    if report is not None:
        command = "python -m chaos " + shlex.join(argv if argv is not None else sys.argv[1:])
        write(report, results, command.strip(), wall, args.quick)
    if failed or args.keep:
        print(f"logs, ledgers and databases kept in {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    raise SystemExit(main())
