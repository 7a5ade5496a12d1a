"""Latency of the usage tools on 10 million request rows, against the bare SQL they run.

    .venv/bin/python bench/bench_usage_tools.py [--rows 10000000] [--calls 21] [--rebuild]

Builds (once, cached under bench/out/) a store holding `--rows` requests over 60 days: 50 keys of five
providers, ten models of which one is not in the catalog, 1M query ids (5 % of requests carry none),
twelve features, batch and priority traffic, a few long-context prompts. Costs are computed by the
store's own bulk pricing (`pricing_sql.reprice_all`), as after an import.

For each tool it prints the p50 of `--calls` calls through an in-memory MCP client, the p50 of the same
SQL statements run on a fresh read-only connection (opened the way the store opens it), the p50 of a
no-op tool's round trip (the fixed protocol overhead), and the ratio
`(tool − overhead) / bare SQL`; the goal is tool ≤ 1.5 × bare SQL + overhead. It also prints what
opening the file costs (a fresh connection per call, as the store does, against one kept open) and the
process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DAYS = 60
END = datetime(2026, 11, 27)
START = END - timedelta(days=DAYS)

# (model, provider): the last one is deliberately missing from the catalog (unpriced).
MODELS = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("gpt-4.1", "openai"),
    ("o3", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
    ("gemini-2.5-pro", "google"),
    ("gemini-2.5-flash", "google"),
    ("mistral-large-latest", "mistral"),
    ("acme-internal-13b", "acme"),
]
# Keys 0-19 OpenAI, 20-31 Anthropic, 32-41 Google, 42-45 Mistral, 46-49 the in-house model.
KEY_PROVIDER_SQL = (
    "CASE WHEN k < 20 THEN 'openai' WHEN k < 32 THEN 'anthropic' WHEN k < 42 THEN 'google' "
    "WHEN k < 46 THEN 'mistral' ELSE 'acme' END"
)
MODEL_SQL = (
    "CASE WHEN k < 20 THEN ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'o3'][CAST(1 + h2 % 4 AS INTEGER)] "
    "WHEN k < 32 THEN ['claude-sonnet-4-5', 'claude-haiku-4-5'][CAST(1 + h2 % 2 AS INTEGER)] "
    "WHEN k < 42 THEN ['gemini-2.5-pro', 'gemini-2.5-flash'][CAST(1 + h2 % 2 AS INTEGER)] "
    "WHEN k < 46 THEN 'mistral-large-latest' ELSE 'acme-internal-13b' END"
)


def generate_sql(rows: int) -> str:
    """One INSERT … SELECT over range(rows): time grows with the row number, like an imported log."""
    span_us = DAYS * 86_400 * 1_000_000
    return f"""
    INSERT INTO requests
    WITH base AS (
        SELECT i, hash(i) AS h1, hash(i + 7_000_000_000) AS h2, hash(i + 13_000_000_000) AS h3,
               CAST(hash(i // 10 + 29_000_000_000) % 50 AS INTEGER) AS k
        FROM range({rows}) AS t(i)
    ),
    shaped AS (
        SELECT *, {KEY_PROVIDER_SQL} AS provider, {MODEL_SQL} AS model,
               CASE WHEN h1 % 1000 = 0 THEN 250_000 + CAST(h2 % 50_000 AS BIGINT)
                    ELSE 200 + CAST(h2 % 8_000 AS BIGINT) END AS input_tokens,
               h1 % 20 = 0 AS batch,
               CASE WHEN h1 % 50 = 1 THEN 'priority' END AS service_tier
        FROM base
    )
    SELECT 'req-' || i,
           TIMESTAMP '{START:%Y-%m-%d %H:%M:%S}' + to_microseconds(CAST(CAST(i AS HUGEINT) * {span_us} // {rows} AS BIGINT)),
           provider, model, NULL,
           'key-' || lpad(CAST(k AS VARCHAR), 2, '0'), 'service ' || k, 'project-' || (k % 6),
           'user-' || (h3 % 500),
           CASE WHEN h3 % 20 = 0 THEN NULL ELSE 'q-' || (i // 10) END,
           'feature-' || ((i // 10) % 12),
           input_tokens,
           CASE WHEN h3 % 3 = 0 THEN input_tokens // 2 ELSE 0 END,
           CASE WHEN provider = 'anthropic' AND h3 % 3 = 1 THEN input_tokens // 4 ELSE 0 END,
           0,
           50 + CAST(h3 % 1_500 AS BIGINT),
           batch, service_tier,
           CASE WHEN batch THEN 'batch' WHEN service_tier = 'priority' THEN 'priority' ELSE 'standard' END,
           200.0 + CAST(h2 % 5_000 AS DOUBLE),
           CASE WHEN h1 % 100 = 7 THEN 'error' ELSE 'ok' END,
           NULL, NULL, 1
    FROM shaped
    """


def build_store(path: Path, rows: int) -> None:
    """Create the benchmark store: schema, generated rows, catalog pricing."""
    from costhawk_mcp.pricing.catalog import load_catalog
    from costhawk_mcp.store import pricing_sql
    from costhawk_mcp.store.db import Database
    from costhawk_mcp.store.store import Store

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")  # renamed into place only when complete
    for stale in (path, partial, partial.with_name(partial.name + ".wal")):
        stale.unlink(missing_ok=True)
    catalog = load_catalog(None)
    store = Store(Database(str(partial)), catalog)
    store.ensure_ready()
    started = time.perf_counter()
    with store.writing() as conn:
        conn.execute(
            "INSERT INTO imports (import_id, source, format, started_at) VALUES (1, 'bench', 'generated', ?)",
            [datetime(2026, 11, 27)],
        )
        conn.execute(generate_sql(rows))
        pricing_sql.resolve_models(conn, catalog, [m for m, _ in MODELS])
        pricing_sql.reprice_all(conn)
    partial.rename(path)
    print(f"built {rows:,} rows in {time.perf_counter() - started:.1f} s -> {path}", file=sys.stderr)


GOAL = 1.5  # tool p50 ≤ GOAL × bare SQL p50 + the protocol overhead

# The calls measured: the default 30-day window ending where the data ends, like `days=30` would.
WINDOW = {"start": "2026-10-28", "end": "2026-11-27"}
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("top_expensive_keys", {**WINDOW, "limit": 10}),
    ("cost_per_query", {**WINDOW, "limit": 10}),
    ("cost_per_query", {**WINDOW, "query_id": "q-600001"}),
    ("model_swap_savings", {**WINDOW, "from_model": "gpt-4o", "to_model": "claude-haiku-4-5"}),
]


class Recorder:
    """A connection stand-in that records every statement a tool runs, for replaying them bare."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.statements: list[tuple[str, list[object]]] = []

    def execute(self, sql: str, params: list[object] | None = None) -> Any:
        self.statements.append((sql, list(params or [])))
        return self.conn.execute(sql, params or [])


def open_read_only(path: Path) -> Any:
    """A read-only connection opened the way store/db.py opens one."""
    import duckdb

    conn = duckdb.connect(str(path), read_only=True)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def record_statements(path: Path, tool: str, args: dict[str, Any]) -> list[tuple[str, list[object]]]:
    """The SQL statements (with parameters) one call of `tool` runs, captured below the analytics layer."""
    from costhawk_mcp.analytics import usage

    def call(store: Any, catalog: Any) -> None:
        if tool == "top_expensive_keys":
            usage.top_expensive_keys(store, **args)
        elif tool == "cost_per_query":
            usage.cost_per_query(store, catalog, **args)
        else:
            usage.model_swap_savings(store, catalog, **args)

    return record_calls(path, call)


def record_calls(path: Path, call: Callable[[Any, Any], object]) -> list[tuple[str, list[object]]]:
    """The SQL statements (with parameters) `call(store, catalog)` runs on the store file at `path`."""
    from costhawk_mcp.pricing.catalog import load_catalog
    from costhawk_mcp.store.db import Database
    from costhawk_mcp.store.store import Store

    recorder = Recorder(None)

    class RecordingStore(Store):
        @contextmanager
        def reading(self) -> Iterator[Any]:
            conn = open_read_only(path)
            try:
                recorder.conn = conn
                yield recorder
            finally:
                conn.close()

    catalog = load_catalog(None)
    call(RecordingStore(Database(str(path)), catalog), catalog)
    return recorder.statements


def run_statements(conn: Any, statements: list[tuple[str, list[object]]]) -> None:
    for sql, params in statements:
        conn.execute(sql, params).fetchall()


def p50(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def measure(path: Path, rows: int, calls: int) -> float:
    from mcp.client import Client

    from costhawk_mcp.config import Settings
    from costhawk_mcp.server.app import App
    from costhawk_mcp.server.build import build_server

    home = OUT / "bench-home"  # no user catalog here: the packaged one, which priced the rows
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env({"COSTHAWK_HOME": str(home)}, db=str(path))
    mcp = build_server(settings)
    started = time.perf_counter()
    App(settings).store.ensure_ready()  # reprices the cached file if the catalog changed since it was built
    print(f"store ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    @mcp.tool(name="noop")
    def noop() -> dict[str, int]:
        """The protocol round trip alone."""
        return {"ok": 1}

    recorded = [record_statements(path, tool, args) for tool, args in CALLS]
    warm = open_read_only(path)
    results: dict[int, dict[str, list[float]]] = {i: {"tool": [], "sql": [], "sql_warm": []} for i in range(len(CALLS))}
    overhead: list[float] = []
    opens: list[float] = []
    async with Client(mcp) as client:
        for i, (tool, args) in enumerate(CALLS):  # warm-up: first loads, caches
            result = await client.call_tool(tool, args)
            assert not result.is_error, result.content
            run_statements(warm, recorded[i])
        await client.call_tool("noop", {})
        for _ in range(calls):
            for i, (tool, args) in enumerate(CALLS):
                started = time.perf_counter()
                await client.call_tool(tool, args)
                results[i]["tool"].append(time.perf_counter() - started)

                started = time.perf_counter()
                conn = open_read_only(path)
                run_statements(conn, recorded[i])
                conn.close()
                results[i]["sql"].append(time.perf_counter() - started)

                started = time.perf_counter()
                run_statements(warm, recorded[i])
                results[i]["sql_warm"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await client.call_tool("noop", {})
            overhead.append(time.perf_counter() - started)
            started = time.perf_counter()
            open_read_only(path).close()
            opens.append(time.perf_counter() - started)
    warm.close()

    fixed = p50(overhead)
    print(f"rows: {rows:,}   calls per figure: {calls}   (p50, milliseconds)")
    print(f"no-op tool round trip (protocol overhead): {fixed:8.1f}")
    print(f"open + close a read-only connection:      {p50(opens):8.1f}")
    print()
    header = (
        f"{'tool':44s} {'tool':>8s} {'bare SQL':>9s} {'SQL warm':>9s} {'stmts':>5s} {'(tool-ovh)/SQL':>14s}  goal ≤ 1.5"
    )
    print(header)
    worst = 0.0
    for i, (tool, args) in enumerate(CALLS):
        label = tool + (" (query_id)" if "query_id" in args else "")
        t, q, w = p50(results[i]["tool"]), p50(results[i]["sql"]), p50(results[i]["sql_warm"])
        ratio = (t - fixed) / q
        worst = max(worst, ratio)
        print(
            f"{label:44s} {t:8.1f} {q:9.1f} {w:9.1f} {len(recorded[i]):5d} {ratio:14.2f}  "
            f"{'ok' if ratio <= GOAL else 'MISSED'}"
        )
    print()
    print(
        "bare SQL = the same statements on a fresh read-only connection (as the store opens one); "
        "SQL warm = on one kept-open connection (what reusing a connection would save)."
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:,.0f} MiB")
    print(f"worst ratio: {worst:.2f} (goal ≤ {GOAL})")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=21)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    path = OUT / f"usage-{args.rows}.duckdb"
    if args.rebuild or not path.exists():
        build_store(path, args.rows)
    worst = anyio.run(measure, path, args.rows, args.calls)
    return 0 if worst <= GOAL else 1  # non-zero on a miss, as bench/run_all.py expects


if __name__ == "__main__":
    raise SystemExit(main())
