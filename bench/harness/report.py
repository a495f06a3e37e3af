"""results.json (everything) and RESULTS.md (one table per scenario)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from harness.scenarios import SCENARIOS

BASE = "corral-redis"
DASH = "\u2013"  # shown for a missing figure
TIMES = "\u00d7"


def errors(data: dict[str, Any]) -> list[str]:
    out = []
    for sid, entry in data["systems"].items():
        if entry.get("error"):
            out.append(f"{sid}: {entry['error']}")
        for key, res in entry.get("scenarios", {}).items():
            if res.get("error"):
                out.append(f"{sid} {key}: {res['error']}")
    return out


def _median(runs: list[dict[str, Any]], pick: Any) -> float | None:
    values = [v for v in (pick(run) for run in runs) if v is not None]
    return statistics.median(values) if values else None


def derive(entry: dict[str, Any]) -> dict[str, Any]:
    """Per-system figures for every table: (value or None, error or None, extras)."""
    s = entry.get("scenarios", {})
    fig: dict[str, Any] = {}
    for key in "abcd":
        res = s.get(key, {})
        fig[key] = (res.get("median"), res.get("error"), res)
    b, c, e = s.get("b", {}), s.get("c", {}), s.get("e", {})
    fig["g"] = (_median(b.get("runs", []), lambda r: r.get("bytes_per_job")), b.get("error"), b)
    rss = _median(c.get("runs", []), lambda r: r.get("memory", {}).get("rss_kib"))
    fig["h"] = (rss / 1024 if rss else None, c.get("error"), c)
    p99 = _median(e.get("runs", []), lambda r: r.get("p99"))
    above = _median(e.get("runs", []), lambda r: r.get("above_floor"))
    fig["e"] = (e.get("median"), e.get("error"), {**e, "p99": p99, "above": above})
    f = s.get("f", {})
    fig["f"] = (f.get("median"), f.get("error"), f)
    return fig


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def _ratio(base: float | None, value: float | None) -> str:
    if not base or not value:
        return DASH
    ratio = base / value
    return f"{ratio:.2f}{TIMES}" if ratio >= 0.1 else f"{ratio:.2g}{TIMES}"


def _err(error: str | None, fallback: str) -> str:
    if not error:
        return fallback
    return "error: " + error.replace("|", "/").replace("\n", " ")[:160]


def _header(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    cfg = data["config"]
    load = data["load"]
    src = data["corral_source"]
    lines = [
        "# Corral benchmark results",
        "",
        f"Command: `{data['command']}` ({data['mode']} mode), started {data['started']}, "
        f"took {data['duration_s']:,.0f} s. Every figure below was measured in that run on "
        f"this machine; throughput and latency figures are the median of {cfg['runs']} run(s).",
        "",
        "| Machine | |",
        "|---|---|",
        f"| CPUs (nproc) | {m['nproc']} {TIMES} {m['cpu']} |",
        f"| Memory | {m['memory_gib']} GiB |",
        f"| OS | {m['os']} (kernel {m['kernel']}) |",
        f"| Python | {m['python']} |",
        f"| Redis | {m['redis']}: the harness's own server, no persistence |",
        f"| Node | {m['node'] or 'not installed'} |",
        "",
        f"Corral is measured from the working tree at commit {src['commit']}"
        + (
            f" ({src['dirty_src_files']} files under src/ with uncommitted changes)."
            if src["dirty_src_files"]
            else "."
        ),
        "",
        f"Machine load: {load['cpu_busy_pct_before']}% CPU busy in the second before the "
        f"run and a 1/5/15-min load average of {load['load_average_before']} (other work "
        f"on the machine); {load['load_average_after']} just after it (this run "
        "included). Each round's load average is in results.json.",
        "",
        "Redis, the producer (the harness) and the workers share these CPUs. Each job is one "
        "`INCR` on a counter key; completion is read from that counter (polled every "
        f"{cfg['poll'] * 1000:.0f} ms), never from a library's result API. Ratios are "
        "Corral (Redis) ÷ the system: above 1 means Corral has the larger figure.",
        "",
        "## Systems and settings",
        "",
        "| System | Version | Worker settings | Bulk enqueue | Job counts capped at |",
        "|---|---|---|---|---|",
    ]
    for entry in data["systems"].values():
        settings = "; ".join(f"{k}: {v}" for k, v in entry.get("settings", {}).items())
        caps = ", ".join(f"{k} {v:,}" for k, v in entry.get("caps", {}).items()) or DASH
        lines.append(
            f"| {entry['label']} | {entry.get('version', DASH)} | {settings or DASH} | "
            f"{entry.get('bulk_api', DASH)} | {caps} |"
        )
    return lines


def _cpu(runs: list[dict[str, Any]]) -> str:
    return _cpu_list([r["cpu_us_per_job"] for r in runs if r.get("cpu_us_per_job")])


def _cpu_list(cpus: list[dict[str, float]]) -> str:
    if not cpus:
        return DASH
    parts = [f"{name} {statistics.median(c[name] for c in cpus):,.0f}" for name in cpus[0]]
    return " + ".join(parts)


def _row(key: str, entry: dict[str, Any], value: float, res: dict[str, Any], base: Any) -> str:
    runs = res.get("runs", [])
    n = f"{runs[0]['n']:,}" if runs and "n" in runs[0] else DASH
    ratio = _ratio(base, value)
    if key == "e":
        return f"{value:.2f} | {res['p99']:.2f} | {_num(res['above'], 2)} | {ratio} | {n}"
    if key == "f":
        small, large = res["small"], res["large"]
        cpu = f"{_cpu_list(small.get('cpu', []))} → {_cpu_list(large.get('cpu', []))}"
        return (
            f"{_num(small['median'])} | {_num(large['median'])} | {large['n']:,} | "
            f"{value:.2f} | {cpu} | {_num(large['fill_rate'])}"
        )
    if key == "g":
        store = "SQLite file bytes" if entry["id"] == "corral-sqlite" else "Redis used_memory"
        return f"{_num(value)} | {ratio} | {n} | {store}"
    if key == "h":
        mem = [r["memory"] for r in runs if "memory" in r]
        pss = statistics.median(m["pss_kib"] for m in mem) / 1024
        return f"{value:,.1f} | {ratio} | {pss:,.1f} | {mem[0]['processes']}"
    row = f"{_num(value)} | {ratio} | {_cpu(runs)} | {n}"
    if key == "b":
        row += f" | {entry.get('bulk_api', '')}"
    if key in "cd":
        row += f" | first job {statistics.median(r['startup_s'] for r in runs):.2f} s after spawn"
    return row


CPU_NOTE = "CPU µs/job"
COLUMNS = {
    "a": ["jobs/s", "Corral ÷ system", f"{CPU_NOTE} (producer + Redis)", "N"],
    "b": ["jobs/s", "Corral ÷ system", f"{CPU_NOTE} (producer + Redis)", "N", "bulk API"],
    "c": ["jobs/s", "Corral ÷ system", f"{CPU_NOTE} (worker + Redis)", "N", "start-up"],
    "e": ["p50 ms", "p99 ms", "p50 above floor ms", "Corral ÷ system (p50)", "probes/run"],
    "f": [
        "small backlog jobs/s",
        "large backlog jobs/s",
        "large N",
        "large ÷ small",
        f"{CPU_NOTE}, small → large (worker + Redis)",
        "fill jobs/s",
    ],
    "g": ["bytes/job", "Corral ÷ system", "N", "measured as"],
    "h": ["RSS MiB", "Corral ÷ system", "PSS MiB", "processes"],
}


def _table(data: dict[str, Any], key: str, figs: dict[str, Any]) -> list[str]:
    title, unit, better = SCENARIOS[key]
    base = figs.get(BASE, {}).get(key, (None,))[0]
    columns = COLUMNS.get(key, COLUMNS["c"])
    width = len(columns)
    lines = ["", f"## {key}. {title} ({unit}, {better} is better)", ""]
    lines += ["| System | " + " | ".join(columns) + " |", "|---" * (width + 1) + "|"]
    for sid, entry in data["systems"].items():
        value, error, res = figs[sid][key] if sid in figs else (None, None, {})
        error = entry.get("error") or error
        if error:
            lines.append(f"| {entry['label']} | {_err(error, '')} |" + " |" * (width - 1))
        elif value is not None:
            lines.append(f"| {entry['label']} | {_row(key, entry, value, res, base)} |")
    if key == "e":
        lines += _floor(data.get("floor") or {})
    return lines


def _floor(floor: dict[str, Any]) -> list[str]:
    runs = floor.get("runs", [])
    if "p50" not in floor:
        errors = [r["error"] for r in runs if "error" in r]
        return ["", f"Floor: not measured ({errors[0] if errors else 'no run'})."] if runs else []
    return [
        "",
        f"**Floor of this machine in this run: p50 {floor['p50']:.2f} ms, p99 "
        f"{floor['p99']:.2f} ms** (median of {len(runs)} measurements, one right before "
        "each system's probes): the same probe with no queue at all, a redis-py `ZADD` "
        "waking a uvloop process blocked in `BZPOPMIN` that `RPUSH`es its time "
        '(`systems/floor.py`). No system can go below it; "p50 above floor" (each '
        "run's p50 minus the floor measured just before it, median of the runs) is what "
        "the queue adds, and moves less with the machine than the p50 itself.",
    ]


def markdown(data: dict[str, Any]) -> str:
    figs = {sid: derive(entry) for sid, entry in data["systems"].items()}
    lines = _header(data)
    for key in "abcdefgh":
        if key in data["config"]["scenarios"]:
            lines += _table(data, key, figs)
    notes = Path(__file__).with_name("notes.md")
    if data["mode"] == "full" and notes.exists():
        lines += ["", notes.read_text().rstrip()]
    problems = errors(data)
    if problems:
        lines += ["", "## Errors", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def render(results_json: Path) -> None:
    """Rewrite RESULTS.md from an existing results.json (the figures are not touched)."""
    data = json.loads(results_json.read_text())
    (results_json.parent / "RESULTS.md").write_text(markdown(data))


def write(out: Path, data: dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    (out / "RESULTS.md").write_text(markdown(data))
