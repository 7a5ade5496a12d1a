"""Latency of savings_opportunities, detect_anomalies and spend_summary on 10 million request rows.

    .venv/bin/python bench/bench_insights.py [--rows 10000000] [--calls 7] [--rebuild] [--only NAME]

Reuses bench_usage_tools.py's store (built once and cached under bench/out/: 60 days, 50 keys of five
providers, ten models of which one is unpriced, twelve features, batch and priority traffic, a few
long-context prompts).

For each call it prints the p50 of `--calls` calls through an in-memory MCP client, the p50 of the same
SQL statements replayed on a fresh read-only connection (opened the way the store opens one), the
number of statements and of full scans of `requests` among them, the p50 of a no-op tool's round trip
(the fixed protocol overhead), and the ratio `(tool − overhead) / bare SQL`. The goals: each tool
under GOAL_SECONDS at p50 on a quiet machine, and tool ≤ 1.5 × bare SQL + overhead (the Python on top
of the SQL stays small). The machine's load average is printed beside the figures, because on a
shared 2-core machine absolute times move with it; compare ratios between runs.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from bench_usage_tools import OUT, build_store, open_read_only, p50, record_calls, run_statements

RATIO_GOAL = 1.5  # tool p50 ≤ RATIO_GOAL × bare SQL p50 + the protocol overhead
GOAL_SECONDS = 2.0  # each call's p50 on a quiet machine

# The default 30-day window ending where the generated data ends, like `days=30` on 2026-11-27.
WINDOW = {"start": "2026-10-28", "end": "2026-11-27"}
END = "2026-11-27"
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("savings_opportunities", dict(WINDOW)),
    ("detect_anomalies", {"days": 30, "end": END}),
    ("detect_anomalies", {"days": 30, "end": END, "dimension": "api_key"}),
    ("spend_summary", {**WINDOW, "group_by": "day"}),
    ("spend_summary", {**WINDOW, "group_by": "model"}),
    ("spend_summary", {**WINDOW, "group_by": ["day", "api_key"]}),
]
# A statement reading the big table (directly or through the facts CTE) is a scan; one over a TEMP
# table or the small catalog tables is not.
_SCAN = re.compile(r"\bFROM\s+requests\b", re.IGNORECASE)


def label(tool: str, args: dict[str, Any]) -> str:
    extra = [f"{k}={v}" for k, v in args.items() if k not in ("start", "end", "days")]
    extra = [e.replace("'", "").replace("[", "").replace("]", "").replace(", ", ",") for e in extra]
    return tool + (f" ({' '.join(extra)})" if extra else "")


def call_analytics(store: Any, catalog: Any, tool: str, args: dict[str, Any]) -> Any:
    """One tool's analytics function, called as the tool handler calls it."""
    from costhawk_mcp.analytics.anomalies import detect_anomalies
    from costhawk_mcp.analytics.savings import savings_opportunities
    from costhawk_mcp.analytics.spend import spend_summary

    if tool == "savings_opportunities":
        return savings_opportunities(store, catalog, **args)
    if tool == "detect_anomalies":
        return detect_anomalies(store, **args)
    return spend_summary(store, catalog, **args)


def record_statements(path: Path, tool: str, args: dict[str, Any]) -> list[tuple[str, list[object]]]:
    """The SQL statements (with parameters) one call runs, captured below the analytics layer."""
    return record_calls(path, lambda store, catalog: call_analytics(store, catalog, tool, args))


async def measure(path: Path, rows: int, calls: int, only: str | None) -> bool:
    from mcp.client import Client

    from costhawk_mcp.config import Settings
    from costhawk_mcp.server.app import App
    from costhawk_mcp.server.build import build_server

    chosen = [(t, a) for t, a in CALLS if only is None or only in label(t, a)]
    home = OUT / "bench-home"  # no user catalog here: the packaged one, which priced the rows
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env({"COSTHAWK_HOME": str(home)}, db=str(path))
    mcp = build_server(settings)
    App(settings).store.ensure_ready()  # reprices the cached file if the catalog changed since it was built

    @mcp.tool(name="noop")
    def noop() -> dict[str, int]:
        """The protocol round trip alone."""
        return {"ok": 1}

    recorded = [record_statements(path, tool, args) for tool, args in chosen]
    tool_times: list[list[float]] = [[] for _ in chosen]
    sql_times: list[list[float]] = [[] for _ in chosen]
    overhead: list[float] = []
    loads: list[float] = []
    async with Client(mcp) as client:
        for tool, args in chosen:  # warm-up: first loads, the OS page cache
            result = await client.call_tool(tool, args)
            assert not result.is_error, result.content
        for _ in range(calls):
            loads.append(os.getloadavg()[0])
            for i, (tool, args) in enumerate(chosen):
                started = time.perf_counter()
                result = await client.call_tool(tool, args)
                tool_times[i].append(time.perf_counter() - started)
                assert not result.is_error, result.content

                started = time.perf_counter()
                conn = open_read_only(path)
                run_statements(conn, recorded[i])
                conn.close()
                sql_times[i].append(time.perf_counter() - started)
            started = time.perf_counter()
            await client.call_tool("noop", {})
            overhead.append(time.perf_counter() - started)

    fixed = p50(overhead)
    print(f"rows: {rows:,}   calls per figure: {calls}   (p50, milliseconds)")
    print(f"load average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores")
    print(f"no-op tool round trip (protocol overhead): {fixed:8.1f}")
    print()
    print(
        f"{'call':52s} {'tool':>8s} {'bare SQL':>9s} {'stmts':>5s} {'scans':>5s} {'(tool-ovh)/SQL':>14s}"
        f"  goals: ≤ {RATIO_GOAL} and ≤ {GOAL_SECONDS:g} s"
    )
    ok = True
    for i, (tool, args) in enumerate(chosen):
        t, q = p50(tool_times[i]), p50(sql_times[i])
        ratio = (t - fixed) / q
        scans = sum(1 for sql, _ in recorded[i] if _SCAN.search(sql))
        met = ratio <= RATIO_GOAL and t <= GOAL_SECONDS * 1000
        ok = ok and met
        print(
            f"{label(tool, args):52s} {t:8.1f} {q:9.1f} {len(recorded[i]):5d} {scans:5d} {ratio:14.2f}  "
            f"{'ok' if met else 'MISSED'}"
        )
    print()
    print("bare SQL = the same statements on a fresh read-only connection; scans = statements reading `requests`.")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:,.0f} MiB   finished {datetime.now():%H:%M:%S}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--only", help="measure only the calls whose label contains this text")
    args = parser.parse_args()
    path = OUT / f"usage-{args.rows}.duckdb"
    if args.rebuild or not path.exists():
        build_store(path, args.rows)
    ok = anyio.run(measure, path, args.rows, args.calls, args.only)
    return 0 if ok else 1  # non-zero on a miss, as bench/run_all.py expects


if __name__ == "__main__":
    sys.exit(main())
