"""results.json (everything) and RESULTS.md (one table per scenario)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from harness.scenarios import SCENARIOS

BASE = "corral-redis"
# The embedded scenarios' ratios are Corral on SQLite's.
EMBEDDED_BASE = "corral-sqlite"
EMBEDDED_PEERS = {"huey-sqlite", "django-db"}
NOT_MEASURED = "not measured:"
PYTHON_PEERS = {"arq", "saq", "taskiq", "celery", "rq", "dramatiq", "huey", "bullmq-py"}
DASH = "\u2013"  # shown for a missing figure
TIMES = "\u00d7"


def errors(data: dict[str, Any]) -> list[str]:
    out = []
    for sid, entry in data["systems"].items():
        if entry.get("error"):
            out.append(f"{sid}: {entry['error']}")
        for key, res in entry.get("scenarios", {}).items():
            if res.get("error") and not res["error"].startswith(NOT_MEASURED):
                out.append(f"{sid} {key}: {res['error']}")
    return out


def _median(runs: list[dict[str, Any]], pick: Any) -> float | None:
    values = [v for v in (pick(run) for run in runs) if v is not None]
    return statistics.median(values) if values else None


def derive(entry: dict[str, Any]) -> dict[str, Any]:
    """Per-system figures for every table: (value or None, error or None, extras)."""
    s = entry.get("scenarios", {})
    fig: dict[str, Any] = {}
    for key in "abcdijklm":
        res = s.get(key, {})
        fig[key] = (res.get("median"), res.get("error"), res)
    b, c, e = s.get("b", {}), s.get("c", {}), s.get("e", {})
    fig["g"] = (_median(b.get("runs", []), lambda r: r.get("bytes_per_job")), b.get("error"), b)
    rss = _median(c.get("runs", []), lambda r: r.get("memory", {}).get("rss_kib"))
    fig["h"] = (rss / 1024 if rss else None, c.get("error"), c)
    p99 = _median(e.get("runs", []), lambda r: r.get("p99"))
    fig["e"] = (e.get("median"), e.get("error"), {**e, "p99": p99})
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
    text = error.replace("|", "/").replace("\n", " ")[:160]
    return text if text.startswith(NOT_MEASURED) else "error: " + text


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
        "Redis, the producer (the harness) and the workers share these CPUs. Every system "
        "runs the same job bodies through a plain client of its language, made the same "
        "way in every process (`Redis.from_url`: redis-py's `redis.asyncio.Redis` for "
        "asyncio systems, Corral included, `redis.Redis` for sync ones; ioredis on Node): "
        "the headline body is one `INCR` of a counter key; the empty body (i, j) makes no "
        "Redis call and only adds one to a process-local count that a 5 ms timer in each "
        "worker process writes to Redis. Completion is read from those keys (polled every "
        f"{cfg['poll'] * 1000:.0f} ms), never from a library's result API. Same sizes for "
        f"every system: {cfg['n_one']:,} one-at-a-time enqueues, {cfg['n_bulk']:,} bulk, "
        f"{cfg['n_drain']:,} queued per drain, {cfg['samples']:,} latency probes, except "
        "the caps in the table below. Figures are the median of the runs with the "
        "runs' min-max beside them. Ratios are Corral (Redis) ÷ the system: above 1 "
        "means Corral has the larger figure. `Corral (Redis), body via ctx.redis` "
        "sends the body through the worker's own pipelined connection, a shortcut no "
        "peer has: it is shown for what the feature is worth, never as the headline.",
        "",
        "## Systems and settings",
        "",
        "| System | Version | Worker settings | Event loop seen in the workers | "
        "Bulk enqueue | Job counts capped at | Load average at its rounds |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in data["systems"].values():
        settings = "; ".join(f"{k}: {v}" for k, v in entry.get("settings", {}).items())
        caps = ", ".join(f"{k} {v:,}" for k, v in entry.get("caps", {}).items()) or DASH
        loops = sorted(
            {
                loop
                for res in entry.get("scenarios", {}).values()
                for run in res.get("runs", [])
                if isinstance(run, dict)
                for loop in run.get("loops", [])
            }
        )
        loads = "; ".join(entry.get("load_average", [])) or DASH
        lines.append(
            f"| {entry['label']} | {entry.get('version', DASH)} | {settings or DASH} | "
            f"{', '.join(loops) or 'none (no asyncio job)'} | {entry.get('bulk_api', DASH)} "
            f"| {caps} | {loads} |"
        )
    return lines


def _not_run(data: dict[str, Any]) -> list[str]:
    missing = [k for k in SCENARIOS if k not in data["config"]["scenarios"]]
    if not missing:
        return []
    names = "; ".join(f"{k} ({SCENARIOS[k][0]})" for k in missing)
    return ["", f"Not measured in this run: {names}."]


def _best_peer(data: dict[str, Any], figs: dict[str, Any], key: str) -> str | None:
    """The Python peer with the best median for ``key``."""
    _, _, better = SCENARIOS[key]
    peers = [
        (figs[sid][key][0], sid)
        for sid in data["systems"]
        if sid in PYTHON_PEERS and sid in figs and figs[sid][key][0]
    ]
    if not peers:
        return None
    return (min if better == "lower" else max)(peers)[1]


def _cell(key: str, fig: Any) -> str:
    value, error, res = fig
    if value is None:
        return "error" if error else DASH
    runs = [r["value"] for r in res.get("runs", [])]
    if key == "e":
        p99s = [r["p99"] for r in res.get("runs", [])]
        return f"{value:.2f} / {res['p99']:.2f} ms ({min(p99s):.2f}-{max(p99s):.2f})"
    return f"{value:,.0f}/s ({min(runs):,.0f}-{max(runs):,.0f})"


def _summary(data: dict[str, Any], figs: dict[str, Any]) -> list[str]:
    """The headline: Corral vs Node BullMQ vs the best Python peer, same work."""
    rows = []
    for key in "cdibae":
        if key not in data["config"]["scenarios"] or BASE not in figs:
            continue
        title = SCENARIOS[key][0] + (" p50 / p99 (p99 range)" if key == "e" else "")
        best = _best_peer(data, figs, key)
        node = _cell(key, figs["bullmq-node"][key]) if "bullmq-node" in figs else DASH
        peer = f"{data['systems'][best]['label']}: {_cell(key, figs[best][key])}" if best else DASH
        rows.append(f"| {title} | {_cell(key, figs[BASE][key])} | {node} | {peer} |")
    if not rows:
        return []
    return [
        "",
        "## Headline: the same work on every system",
        "",
        "Median (min-max of the runs). Corral (Redis) with its defaults (uvloop, "
        "concurrency 50) and the body through a plain `redis.asyncio.Redis`, as every "
        "asyncio peer's.",
        "",
        "| | Corral (Redis) | BullMQ (Node) | best Python peer |",
        "|---|--:|--:|--:|",
        *rows,
    ]


def _embedded(data: dict[str, Any], figs: dict[str, Any]) -> list[str]:
    """Corral on SQLite vs the best embedded peer, and each one's scaling on one file."""
    keys = [k for k in "klm" if k in data["config"]["scenarios"]]
    if not keys or EMBEDDED_BASE not in figs:
        return []
    rows = []
    for key in keys:
        peers = [(figs[s][key][0], s) for s in EMBEDDED_PEERS if s in figs and figs[s][key][0]]
        best = max(peers)[1] if peers else None
        ours = figs[EMBEDDED_BASE][key][0]
        peer = f"{data['systems'][best]['label']}: {_cell(key, figs[best][key])}" if best else DASH
        ratio = _ratio(ours, figs[best][key][0]) if best else DASH
        rows.append(
            f"| {_title(data, key)} | {_cell(key, figs[EMBEDDED_BASE][key])} | {peer} | {ratio} |"
        )
    lines = [
        "",
        "## Embedded: one SQLite file, no server",
        "",
        "Median (min-max of the runs). Corral (SQLite) vs the best of Huey's SQLite "
        "storage and Django tasks' database backend; each system's settings are in the "
        "table above. Redis here only holds the harness's completion counts.",
        "",
        "| | Corral (SQLite) | best embedded peer | Corral ÷ best |",
        "|---|--:|--:|--:|",
        *rows,
    ]
    if "k" in keys and "l" in keys:
        n = data["config"].get("embedded_processes", 8)
        scale = []
        for sid in [EMBEDDED_BASE, *sorted(EMBEDDED_PEERS)]:
            if sid in figs and figs[sid]["k"][0] and figs[sid]["l"][0]:
                one, many = figs[sid]["k"][0], figs[sid]["l"][0]
                scale.append(
                    f"| {data['systems'][sid]['label']} | {one:,.0f}/s | {many:,.0f}/s | "
                    f"{many / one:.2f}{TIMES} |"
                )
        lines += [
            "",
            f"| {n} processes on one file ÷ 1 (empty body) | 1 process | {n} processes | ratio |",
            "|---|--:|--:|--:|",
            *scale,
        ]
    return lines


def _cpu(runs: list[dict[str, Any]]) -> str:
    return _cpu_list([r["cpu_us_per_job"] for r in runs if r.get("cpu_us_per_job")])


def _cpu_list(cpus: list[dict[str, float]]) -> str:
    if not cpus:
        return DASH
    parts = [f"{name} {statistics.median(c[name] for c in cpus):,.0f}" for name in cpus[0]]
    return " + ".join(parts)


def _spread(values: list[float], digits: int = 0) -> str:
    return f"{min(values):,.{digits}f}-{max(values):,.{digits}f}" if values else DASH


def _row(key: str, entry: dict[str, Any], value: float, res: dict[str, Any], base: Any) -> str:
    runs = res.get("runs", [])
    n = f"{runs[0]['n']:,}" if runs and "n" in runs[0] else DASH
    ratio = _ratio(base, value)
    if key == "e":
        p50s, p99s = [r["p50"] for r in runs], [r["p99"] for r in runs]
        return (
            f"{value:.2f} | {_spread(p50s, 2)} | {res['p99']:.2f} | {_spread(p99s, 2)} | "
            f"{ratio} | {n}"
        )
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
    row = f"{_num(value)} | {_spread([r['value'] for r in runs])} | {ratio} | {_cpu(runs)} | {n}"
    if key == "b":
        row += f" | {entry.get('bulk_api', '')}"
    if key == "l":
        timed = statistics.median(r["timed"] for r in runs)
        row += (
            f" | all at work {statistics.median(r['startup_s'] for r in runs):.2f} s after "
            f"spawn; {timed:,.0f} jobs timed"
        )
    elif key in "cdijkm":
        row += f" | first job {statistics.median(r['startup_s'] for r in runs):.2f} s after spawn"
    return row


CPU_NOTE = "CPU µs/job"
SPREAD = "min-max of runs"
COLUMNS = {
    "a": ["jobs/s", SPREAD, "Corral ÷ system", f"{CPU_NOTE} (producer + Redis)", "N"],
    "b": ["jobs/s", SPREAD, "Corral ÷ system", f"{CPU_NOTE} (producer + Redis)", "N", "bulk API"],
    "c": ["jobs/s", SPREAD, "Corral ÷ system", f"{CPU_NOTE} (worker + Redis)", "N", "start-up"],
    "e": [
        "p50 ms",
        "p50 " + SPREAD,
        "p99 ms",
        "p99 " + SPREAD,
        "Corral ÷ system (p50)",
        "probes/run",
    ],
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


def _title(data: dict[str, Any], key: str) -> str:
    title = SCENARIOS[key][0]
    if key == "l":
        title = title.replace("N worker", f"{data['config'].get('embedded_processes', 8)} worker")
    return title


def _table(data: dict[str, Any], key: str, figs: dict[str, Any]) -> list[str]:
    _, unit, better = SCENARIOS[key]
    title = _title(data, key)
    base_id = EMBEDDED_BASE if key in "klm" else BASE
    base = figs.get(base_id, {}).get(key, (None,))[0]
    columns = COLUMNS.get(key, COLUMNS["c"])
    if key in "klm":
        columns = [c.replace("Corral ÷", "Corral (SQLite) ÷") for c in columns]
    width = len(columns)
    lines = ["", f"## {key}. {title} ({unit}, {better} is better)", ""]
    lines += ["| System | " + " | ".join(columns) + " |", "|---" * (width + 1) + "|"]
    for sid, entry in data["systems"].items():
        value, error, res = figs[sid][key] if sid in figs else (None, None, {})
        if entry.get("only") and key not in entry["only"]:
            continue
        if key in "klm" and sid not in EMBEDDED_PEERS | {EMBEDDED_BASE}:
            continue
        error = entry.get("error") or error
        if error:
            lines.append(f"| {entry['label']} | {_err(error, '')} |" + " |" * (width - 1))
        elif value is not None:
            lines.append(f"| {entry['label']} | {_row(key, entry, value, res, base)} |")
    return lines


def markdown(data: dict[str, Any]) -> str:
    figs = {sid: derive(entry) for sid, entry in data["systems"].items()}
    lines = _header(data) + _not_run(data) + _summary(data, figs) + _embedded(data, figs)
    for key in "cdijklmabefgh":
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
