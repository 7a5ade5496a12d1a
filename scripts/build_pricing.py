"""Regenerate data/pricing.json from a LiteLLM price file, genai-prices history and the overrides.

    python scripts/build_pricing.py --from data/sources/litellm_model_prices.json

Build time only (genai-prices is the `build-pricing` extra). The logic lives in
`costhawk_mcp.pricing.build` so `costhawk-mcp pricing update` can reuse it without genai-prices.
A summary for review goes to stderr; the output is byte-identical for identical inputs and date.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from costhawk_mcp.errors import CatalogError
from costhawk_mcp.pricing.build import (
    BuildReport,
    build_catalog,
    catalog_json,
    genai_prices_history,
    litellm_sources,
    load_litellm,
    load_overrides,
    summarize,
)
from costhawk_mcp.pricing.catalog import Catalog

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build, validate the bytes as the server will, write, summarize."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", required=True, help="LiteLLM price file: path or URL")
    parser.add_argument("--overrides", type=Path, default=ROOT / "data" / "pricing_overrides.json")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "pricing.json")
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=datetime.now(timezone.utc).date(),
        help="build date YYYY-MM-DD (default: today, UTC); deprecations and price changes are judged by it",
    )
    args = parser.parse_args(argv)
    try:
        litellm = load_litellm(args.source)
        overrides = load_overrides(args.overrides)
        history = genai_prices_history()
        sources = litellm_sources(args.source, litellm, args.today)
        digest = hashlib.sha256(args.overrides.read_bytes()).hexdigest()[:16]
        sources["overrides"] = f"{args.overrides.name} (sha256:{digest})"
        report = BuildReport()
        catalog = build_catalog(
            litellm, overrides=overrides, history=history, today=args.today, sources=sources, report=report
        )
        raw = catalog_json(catalog)
        Catalog.from_bytes(raw, origin=str(args.out))  # what the server will load must validate
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.write_bytes(raw)
    print(summarize(catalog, args.today, report), file=sys.stderr)
    print(f"wrote {args.out} ({len(raw)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
