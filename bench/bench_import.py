"""Benchmark: `costhawk-mcp import` of canonical JSON Lines against DuckDB's own `read_json`.

Generates N request rows (default 10 million) with DuckDB `COPY ... TO 'requests-N.jsonl'` from
`range()` into bench/out/import/ (git-ignored), then per round times, each in a fresh subprocess:

* **read_json**: `CREATE TABLE t AS SELECT * FROM read_json('requests-N.jsonl')` into a new DuckDB
  file, DuckDB parsing and storing the same file with no validation at all (the baseline);
* **import**: `costhawk-mcp import requests-N.jsonl` into a new database: reading, validation,
  staging (the file is clean, so the fast path), the merge with pricing at the price of each
  row's day, and the import record.

Prints the file size, the median of each, rows/s of both, their ratio (goal: import at least 0.5
of read_json), the same ratio in CPU seconds (steadier than wall time on a shared machine), and
the peak RSS of each process (wait4's ru_maxrss, the per-child figure behind
getrusage(RUSAGE_CHILDREN)). The generated file is named by its row count, so --keep never
mixes sizes up. Deletes the generated files unless --keep.

Usage: `python bench/bench_import.py [--rows 10000000] [--rounds 3] [--keep]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "import"
GOAL = 0.5

BASELINE = """
import sys, duckdb
conn = duckdb.connect(sys.argv[2])
conn.execute("CREATE TABLE t AS SELECT * FROM read_json(?)", [sys.argv[1]])
conn.close()
"""


def generate(path: Path, rows: int) -> None:
    """Canonical lines over 300 days (across catalog price changes), 8 models, a third with cost_usd."""
    conn = duckdb.connect()
    try:
        conn.execute(
            f"""
            COPY (
                SELECT
                    'req_' || lpad(CAST(i AS VARCHAR), 10, '0') AS request_id,
                    replace(CAST(TIMESTAMP '2026-01-01' + to_microseconds((i * 2591731) % 25920000000000)
                        AS VARCHAR), ' ', 'T') || 'Z' AS timestamp,
                    ['openai', 'openai', 'openai', 'anthropic', 'anthropic', 'google', 'openai', 'anthropic'][1 + i % 8]
                        AS provider,
                    ['gpt-4o', 'gpt-4o-mini', 'o3', 'claude-sonnet-4-5', 'claude-haiku-4-5', 'gemini-2.5-pro',
                     'gpt-5', 'claude-opus-4-1'][1 + i % 8] AS model,
                    'key_' || (i % 37) AS api_key_id,
                    'team-' || (i % 37) AS key_name,
                    ['search', 'chat', 'billing', 'ops', 'ml'][1 + i % 5] AS project,
                    'user_' || (i % 1013) AS user,
                    'q_' || (i // 3) AS query_id,
                    ['summarize', 'answer', 'classify', 'extract'][1 + i % 4] AS feature,
                    100 + (i * 7919) % 20000 AS input_tokens,
                    ((i * 7919) % 20000) // 4 AS cached_input_tokens,
                    CASE WHEN i % 8 IN (3, 4, 7) THEN (i * 13) % 50 ELSE 0 END AS cache_write_input_tokens,
                    1 + (i * 104729) % 2000 AS output_tokens,
                    i % 10 = 0 AS batch,
                    50 + (i * 31) % 5000 AS latency_ms,
                    'ok' AS status,
                    CASE WHEN i % 3 = 0 THEN CAST((i % 100000) / 1000000 AS DECIMAL(18, 6)) END AS cost_usd
                FROM range({int(rows)}) AS t(i)
            ) TO '{path}' (FORMAT json)
            """
        )
    finally:
        conn.close()


@dataclass(frozen=True)
class Run:
    """One child process: wall seconds, CPU seconds (user + system), peak RSS (KiB), stdout."""

    wall: float
    cpu: float
    peak_kib: int
    out: str


def run_timed(command: list[str], env: dict[str, str]) -> Run:
    """Run one child process to completion; exits if it fails.

    `os.wait4` reaps the child and returns its own rusage, so ru_maxrss is that process's peak
    (getrusage(RUSAGE_CHILDREN) would give the largest of every child so far) and the CPU times
    are its own (with its children's, e.g. `wc`).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command[:4])} failed ({proc.returncode}): {err.read().strip()}")
        return Run(elapsed, usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss), out.read())


def fresh(*paths: Path) -> None:
    for path in paths:
        for candidate in (path, path.with_name(path.name + ".wal")):
            candidate.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated file and databases")
    args = parser.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"requests-{args.rows}.jsonl"  # per size: --keep never mixes up sizes
    base_db, import_db = OUT / "baseline.duckdb", OUT / "import.duckdb"
    home = OUT / "home"
    env = dict(os.environ, COSTHAWK_HOME=str(home), PYTHONPATH=str(ROOT / "src"))
    env.pop("COSTHAWK_DB", None)
    try:
        if not data.exists():
            start = time.perf_counter()
            generate(data, args.rows)
            print(f"generated {args.rows:,} rows in {time.perf_counter() - start:.0f} s", flush=True)
        size = data.stat().st_size
        print(
            f"file: {data.relative_to(ROOT)}, {size / 1e9:.2f} GB, {args.rows:,} rows, {size / args.rows:.0f} bytes/row"
        )
        imports: list[Run] = []
        baselines: list[Run] = []
        for round_no in range(1, args.rounds + 1):
            fresh(import_db)
            shutil.rmtree(home, ignore_errors=True)
            run = run_timed(
                [sys.executable, "-m", "costhawk_mcp", "import", str(data), "--db", str(import_db), "--json"], env
            )
            (entry,) = json.loads(run.out)["files"]
            if (entry["inserted"], entry["rejected"]) != (args.rows, 0):
                raise SystemExit(f"import stored {entry['inserted']} rows and rejected {entry['rejected']}")
            imports.append(run)
            fresh(base_db)
            base = run_timed([sys.executable, "-c", BASELINE, str(data), str(base_db)], env)
            baselines.append(base)
            print(
                f"round {round_no}: read_json {base.wall:.1f} s ({base.cpu:.1f} s CPU), import {run.wall:.1f} s "
                f"({run.cpu:.1f} s CPU): ratio {base.wall / run.wall:.2f} (CPU {base.cpu / run.cpu:.2f}), "
                f"import peak RSS {run.peak_kib / 1024:.0f} MiB",
                flush=True,
            )
        medians = {
            name: (statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs), runs)
            for name, runs in (("read_json", baselines), ("import", imports))
        }
        for name, (wall, cpu, runs) in medians.items():
            print(
                f"{name + ':':10} median {wall:.1f} s = {args.rows / wall:,.0f} rows/s, {cpu:.1f} s CPU, "
                f"peak RSS {max(r.peak_kib for r in runs) / 1024:.0f} MiB"
            )
        ratio = medians["read_json"][0] / medians["import"][0]
        cpu_ratio = medians["read_json"][1] / medians["import"][1]
        # On a shared machine wall times swing with the neighbours' load; CPU seconds much less.
        print(f"ratio import/read_json rows/s: {ratio:.2f} (goal ≥ {GOAL}); in CPU seconds: {cpu_ratio:.2f}")
        return 0 if ratio >= GOAL else 1
    finally:
        if not args.keep:
            fresh(base_db, import_db)
            data.unlink(missing_ok=True)
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
