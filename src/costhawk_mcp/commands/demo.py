"""`costhawk-mcp demo`: build the demo dataset in its own database, then show the server answering.

The demo never touches the real database: it writes `costhawk-demo.duckdb` beside it (or --db),
marks that file as a demo, and refuses to overwrite a file that is not one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from costhawk_mcp.config import Settings
from costhawk_mcp.errors import InvalidArgument

DEMO_MARK = ("dataset", "costhawk-demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `demo`."""
    parser.add_argument("--db", help="demo database file (default: costhawk-demo.duckdb beside the real database)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the generated data")
    parser.add_argument("--no-session", action="store_true", help="only build the dataset")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Build the dataset, then run the scripted MCP session against it."""
    import anyio

    from costhawk_mcp.demo.session import run_session

    real = Settings.from_env()
    target = Path(args.db).expanduser() if args.db else Path(real.demo_db_path)
    if not args.db and real.db_path == ":memory:":
        target = real.home / "costhawk-demo.duckdb"
    if str(target) == real.db_path:
        raise InvalidArgument("--db", f"{target} is the real costhawk database; the demo needs a file of its own")
    build_dataset(target, settings, seed=args.seed)
    if args.no_session:
        return 0
    print(f"\nStarting `costhawk-mcp serve --db {target}` and calling its tools over stdio, as an assistant would:")
    failures = anyio.run(run_session, str(target))
    if failures:
        print(f"\n{failures} tool call(s) failed", file=sys.stderr)
        return 1
    print(f"\nThe demo database stays at {target}; point an MCP client at `costhawk-mcp serve --db {target}`.")
    return 0


def build_dataset(target: Path, settings: Settings, *, seed: int | None = None) -> None:
    """Regenerate the demo data into `target` (a demo file, or a new one)."""
    from costhawk_mcp.demo.data import SEED, write_jsonl
    from costhawk_mcp.pricing.catalog import load_catalog
    from costhawk_mcp.store.db import Database
    from costhawk_mcp.store.importer import import_file
    from costhawk_mcp.store.store import Store

    catalog = load_catalog(settings.user_catalog_path)
    if target.exists():
        existing = Store(Database(str(target), lock_timeout=settings.lock_timeout_s), catalog)
        if existing.get_meta(DEMO_MARK[0]) != DEMO_MARK[1]:
            raise InvalidArgument(
                "--db", f"refusing to overwrite {target}: it is not a costhawk demo database; choose another path"
            )
        for leftover in (target, target.with_name(target.name + ".wal")):
            leftover.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    store = Store(Database(str(target), lock_timeout=settings.lock_timeout_s), catalog)
    store.set_meta(*DEMO_MARK)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="costhawk-demo-") as tmp:
        source = Path(tmp) / "demo-requests.jsonl"
        count = write_jsonl(source, seed=SEED if seed is None else seed)
        report = import_file(store, source)
    print(
        f"Built the demo dataset in {target}: {count:,} requests over 9 weeks, 8 API keys, 3 providers "
        f"(imported {report.inserted:,}, {report.rejected} rejected) in {time.monotonic() - started:.1f} s"
    )
