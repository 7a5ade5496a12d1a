"""`costhawk-mcp sync`: pull usage, costs and key names from the provider admin APIs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from costhawk_mcp.config import Settings

if TYPE_CHECKING:
    from costhawk_mcp.sync.runner import SyncReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sync`."""
    parser.add_argument("--provider", choices=["openai", "anthropic", "all"], default="all")
    parser.add_argument(
        "--since",
        metavar="DATE",
        help="UTC date or datetime to sync from (default: a few days before the last sync, or 30 days)",
    )
    parser.add_argument("--until", metavar="DATE", help="UTC date or datetime to stop before (exclusive; default now)")
    parser.add_argument("--bucket", choices=["1d", "1h"], default="1d", help="usage bucket width (default 1d)")
    parser.add_argument("--db", help="DuckDB file (default $COSTHAWK_DB or ~/.costhawk/costhawk.duckdb)")
    parser.add_argument("--json", action="store_true", help="print the sync report as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Sync, print what was stored, and fail (exit 1) if any endpoint could not be synced."""
    import anyio

    from costhawk_mcp.analytics.window import parse_instant
    from costhawk_mcp.pricing.catalog import load_catalog
    from costhawk_mcp.store.db import Database
    from costhawk_mcp.store.store import Store
    from costhawk_mcp.sync.runner import raise_for_errors, run_sync

    since = parse_instant(args.since, "since") if args.since else None
    until = parse_instant(args.until, "until") if args.until else None
    store = Store(
        Database(settings.db_path, lock_timeout=settings.lock_timeout_s), load_catalog(settings.user_catalog_path)
    )
    live = sys.stderr.isatty()

    async def progress(done: float, total: float, message: str) -> None:
        if live:
            print(f"\r\033[K[{done:.0f}/{total:.0f}] {message}", end="", file=sys.stderr, flush=True)

    async def main() -> SyncReport:
        return await run_sync(
            store,
            settings,
            provider=args.provider,
            since=since,
            until=until,
            bucket_width=args.bucket,
            progress=progress,
        )

    report = anyio.run(main)
    if live:
        print(file=sys.stderr)
    print(report.model_dump_json(indent=2) if args.json else _describe(report))
    raise_for_errors(report)
    return 0


def _describe(report: SyncReport) -> str:
    lines = []
    for p in report.providers:
        usage = [e for e in p.endpoints if e.endpoint not in ("costs", "cost_report")]
        rows = sum(e.rows for e in usage)
        costs = sum(e.rows for e in p.endpoints if e.endpoint in ("costs", "cost_report"))
        start = min(e.window_start for e in p.endpoints)
        ends = [e.window_end for e in p.endpoints]
        end = "now" if any(x is None for x in ends) else max(x for x in ends if x is not None).isoformat(sep=" ")
        failed = [e.endpoint for e in p.endpoints if e.error]
        lines.append(
            f"{p.provider}: {sum(e.pages for e in p.endpoints)} pages, {rows:,} usage rows from {len(usage)} endpoints, "
            f"{costs:,} cost rows, {p.api_keys} API key names, {p.projects} "
            f"{'workspaces' if p.provider == 'anthropic' else 'projects'} ({start.isoformat(sep=' ')} to {end}, "
            f"{report.bucket_width} buckets)" + (f"; failed: {', '.join(failed)}" if failed else "")
        )
    lines.extend(f"skipped {s}" for s in report.skipped)
    return "\n".join(lines)
