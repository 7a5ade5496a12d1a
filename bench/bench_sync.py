"""Benchmark: a full provider sync against a bare httpx loop fetching the same pages.

The fake provider APIs (tests/fake_providers.py) run in a subprocess with 90 days of hourly usage,
about 50 dimension tuples per hour and provider. Each round times:

* **bare fetch**: plain `httpx.AsyncClient` GETs of exactly the pages a sync requests (same
  endpoints, parameters and cursors, pages of an endpoint one after another, endpoints as
  concurrent as the sync's own bound), decoding each body only to find `next_page`;
* **sync**: `run_sync` into a fresh DuckDB file (parse, validate, normalise, price, upsert);
* **re-sync**: the same sync again over the stored data (every bucket replaced in place).

Prints the median of each and the ratios sync / bare fetch (goal: at most 1.3) and re-sync / bare.
Usage: `python bench/bench_sync.py [--days 90] [--combos 50] [--rounds 3] [--bucket 1h]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

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


def timed(fn: object, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = anyio.run(fn, *args)  # type: ignore[arg-type]
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--combos", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bucket", choices=["1h", "1d"], default="1h")
    args = parser.parse_args()
    proc, info = start_fake(args.days, args.combos)
    since = datetime.fromisoformat(info.pop("start"))
    info.pop("now")
    info.pop("port")
    bare: list[float] = []
    first: list[float] = []
    again: list[float] = []
    try:
        timed(bare_fetch, info, since, args.bucket)  # warm the fake's caches and the OS
        for _ in range(args.rounds):
            seconds, result = timed(bare_fetch, info, since, args.bucket)
            pages, size = result  # type: ignore[misc]
            bare.append(seconds)
            home = Path(tempfile.mkdtemp(prefix="costhawk-bench-"))
            try:
                shutil.copy(ROOT / "tests" / "data" / "test_pricing.json", home / "pricing.json")
                seconds, report = timed(sync_once, info, home, since, args.bucket)
                first.append(seconds)
                assert isinstance(report, SyncReport) and report.complete, report
                seconds, _ = timed(sync_once, info, home, since, args.bucket)
                again.append(seconds)
                db_size = (home / "costhawk.duckdb").stat().st_size
            finally:
                shutil.rmtree(home, ignore_errors=True)
            print(
                f"round: bare {bare[-1]:.2f} s, sync {first[-1]:.2f} s, re-sync {again[-1]:.2f} s "
                f"({pages} pages, {size / 1e6:.1f} MB, {report.usage_rows} usage rows, db {db_size / 1e6:.1f} MB)",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    b, s, r = statistics.median(bare), statistics.median(first), statistics.median(again)
    print(f"{args.days} days of {args.bucket} buckets, ~{args.combos} dimension tuples per bucket and provider")
    print(f"median bare fetch {b:.2f} s | sync {s:.2f} s | re-sync {r:.2f} s")
    print(f"ratio sync / bare fetch = {s / b:.2f} (goal <= 1.30); re-sync / bare fetch = {r / b:.2f}")


if __name__ == "__main__":
    main()
