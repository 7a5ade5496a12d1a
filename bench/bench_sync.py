"""Benchmark: a full provider sync against a bare httpx loop fetching the same pages.

The fake provider APIs (tests/fake_providers.py) run in a subprocess with 90 days of hourly usage,
about 50 dimension tuples per hour and provider. Each round times, one right after the other:

* **bare fetch**: plain `httpx.AsyncClient` GETs of exactly the pages a sync requests (same
  endpoints, parameters and cursors, pages of an endpoint one after another, endpoints as
  concurrent as the sync's own bound), decoding each body only to find `next_page`;
* **sync**: `run_sync` into a fresh DuckDB file (validate, normalise, price, upsert);
* **re-sync**: the same sync again over the stored data (every bucket replaced in place).

For each it records wall seconds and CPU seconds, of this process (all its threads, DuckDB's
included) and of the fake server's process. Prints the medians, and the goal's ratio sync / bare
fetch (at most 1.3) as the median of each round's own ratio: a round's two runs are seconds apart,
so a shared machine's load weighs on both alike. The CPU ratio (client + server) says what the sync
costs beyond the fetch whatever the load; on a machine busy with other work, wall time follows it.
Exits 1 when the goal is missed.

Usage: `python bench/bench_sync.py [--days 90] [--combos 50] [--rounds 5] [--bucket 1h]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx

from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.store import Store
from costhawk_mcp.sync.anthropic import AnthropicAdapter
from costhawk_mcp.sync.base import Adapter
from costhawk_mcp.sync.openai import OpenAIAdapter
from costhawk_mcp.sync.runner import SyncReport, run_sync

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 4
GOAL = 1.3


def start_fake(days: int, combos: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The fake APIs in their own process (so serving does not share the benchmark's GIL)."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_providers.py"), "--days", str(days), "--combos", str(combos)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("the fake provider server did not start")
    return proc, json.loads(line)


async def bare_fetch(info: dict[str, str], since: datetime, bucket: str) -> tuple[int, int]:
    """Fetch every page a sync would, with nothing but httpx and json; returns (pages, bytes)."""
    adapters: list[tuple[Adapter, str, str]] = [
        (OpenAIAdapter(), info["OPENAI_ADMIN_KEY"], info["COSTHAWK_OPENAI_BASE_URL"]),
        (AnthropicAdapter(), info["ANTHROPIC_ADMIN_KEY"], info["COSTHAWK_ANTHROPIC_BASE_URL"]),
    ]
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    totals = [0, 0]

    async def one(client: httpx.AsyncClient, url: str, headers: dict[str, str], params: list[tuple[str, str]]) -> None:
        cursor: str | None = None
        while True:
            query = params if cursor is None else [*params, ("page", cursor)]
            async with limiter:
                response = await client.get(url, params=query, headers=headers)
            response.raise_for_status()
            body = response.json()
            totals[0] += 1
            totals[1] += len(response.content)
            if not body.get("has_more"):
                return
            cursor = body["next_page"]

    async with httpx.AsyncClient(timeout=120) as client, anyio.create_task_group() as group:
        for adapter, key, base in adapters:
            headers = adapter.headers(key)
            for endpoint in adapter.endpoints(bucket):
                params = [*endpoint.params, *adapter.window_params(since, None), ("limit", str(endpoint.limit))]
                group.start_soon(one, client, base + endpoint.path, headers, params)
    return totals[0], totals[1]


async def sync_once(info: dict[str, str], home: Path, since: datetime, bucket: str) -> SyncReport:
    settings = Settings.from_env({"COSTHAWK_HOME": str(home), **info})
    store = Store(Database(settings.db_path), load_catalog(settings.user_catalog_path))
    return await run_sync(store, settings, since=since, bucket_width=bucket, concurrency=CONCURRENCY)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    """CPU seconds of another process (Linux /proc; 0 elsewhere, so only client CPU is compared)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    wall: float
    client_cpu: float
    server_cpu: float
    result: Any

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.server_cpu


def measure(server: int, fn: Callable[..., Awaitable[Any]], *args: object) -> Run:
    cpu, served, start = _own_cpu(), _process_cpu(server), time.perf_counter()
    result = anyio.run(fn, *args)
    return Run(time.perf_counter() - start, _own_cpu() - cpu, _process_cpu(server) - served, result)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--combos", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bucket", choices=["1h", "1d"], default="1h")
    args = parser.parse_args()
    proc, info = start_fake(args.days, args.combos)
    since = datetime.fromisoformat(info.pop("start"))
    info.pop("now")
    info.pop("port")
    runs: dict[str, list[Run]] = {"bare fetch": [], "sync": [], "re-sync": []}
    load_before = os.getloadavg()[0]
    try:
        anyio.run(bare_fetch, info, since, args.bucket)  # warm the fake's index and the OS
        for _ in range(args.rounds):
            bare = measure(proc.pid, bare_fetch, info, since, args.bucket)
            pages, size = bare.result
            home = Path(tempfile.mkdtemp(prefix="costhawk-bench-"))
            try:
                shutil.copy(ROOT / "tests" / "data" / "test_pricing.json", home / "pricing.json")
                first = measure(proc.pid, sync_once, info, home, since, args.bucket)
                report = first.result
                if not (isinstance(report, SyncReport) and report.complete and report.pages == pages):
                    raise SystemExit(f"the sync did not complete or fetched other pages: {report}")
                again = measure(proc.pid, sync_once, info, home, since, args.bucket)
                db_size = (home / "costhawk.duckdb").stat().st_size
            finally:
                shutil.rmtree(home, ignore_errors=True)
            for name, run in zip(runs, (bare, first, again), strict=True):
                runs[name].append(run)
            print(
                f"round: bare {bare.wall:.2f} s, sync {first.wall:.2f} s (x{first.wall / bare.wall:.2f}), "
                f"re-sync {again.wall:.2f} s; CPU client+server: bare {bare.client_cpu:.1f}+{bare.server_cpu:.1f}, "
                f"sync {first.client_cpu:.1f}+{first.server_cpu:.1f}, re-sync {again.client_cpu:.1f}+"
                f"{again.server_cpu:.1f} s ({pages} pages, {size / 1e6:.1f} MB, {report.usage_rows} usage rows, "
                f"db {db_size / 1e6:.1f} MB)",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(
        f"{args.days} days of {args.bucket} buckets, ~{args.combos} dimension tuples per bucket and provider; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs"
    )
    for name, measured in runs.items():
        print(
            f"  {name:10s} median wall {statistics.median(r.wall for r in measured):6.2f} s | CPU client "
            f"{statistics.median(r.client_cpu for r in measured):5.2f} s + server "
            f"{statistics.median(r.server_cpu for r in measured):5.2f} s"
        )
    bare_runs = runs["bare fetch"]
    ratios = {
        name: statistics.median(r.wall / b.wall for r, b in zip(runs[name], bare_runs, strict=True))
        for name in ("sync", "re-sync")
    }
    cpu_ratio = statistics.median(r.cpu / b.cpu for r, b in zip(runs["sync"], bare_runs, strict=True))
    met = ratios["sync"] <= GOAL
    print(
        f"ratio sync / bare fetch = {ratios['sync']:.2f} (goal <= {GOAL}: {'met' if met else 'MISSED'}); "
        f"re-sync / bare fetch = {ratios['re-sync']:.2f}; CPU (client + server) sync / bare fetch = {cpu_ratio:.2f}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
