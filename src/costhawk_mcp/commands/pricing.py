"""`costhawk-mcp pricing`: show a model's prices, list models, or update the catalog."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timezone

from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.pricing.views import ModelPricing, model_pricing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands of `pricing`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="one model's prices and history")
    show.add_argument("model")
    show.add_argument("--date", type=date.fromisoformat, help="prices in force on this UTC date (YYYY-MM-DD)")
    show.add_argument("--json", action="store_true", help="print JSON")
    listing = sub.add_parser("list", help="every model with its current prices")
    listing.add_argument("--provider", help="only this provider")
    listing.add_argument("--json", action="store_true", help="print JSON")
    update = sub.add_parser("update", help="rebuild current prices from a LiteLLM-format price file")
    update.add_argument("--from", dest="source", required=True, metavar="PATH_OR_URL")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch to the chosen action."""
    if args.action == "update":
        return _update(args.source, settings)
    catalog = load_catalog(settings.user_catalog_path)
    if args.action == "show":
        entry = catalog.get(args.model)
        view = model_pricing(entry, period=entry.period_at(args.date) if args.date else None, history=True)
        print(view.model_dump_json(indent=2) if args.json else _describe(view))
        return 0
    entries = catalog.by_provider(args.provider) if args.provider else catalog.models
    views = [model_pricing(entry) for entry in entries]
    if args.json:
        print(json.dumps([v.model_dump(mode="json") for v in views], indent=2))
    else:
        print(f"{'model':<45} {'provider':<10} {'input':>9} {'cached':>9} {'output':>9}  $/Mtok")
        for v in views:
            cached = "-" if v.cached_input_per_mtok is None else f"{v.cached_input_per_mtok:g}"
            print(f"{v.model:<45} {v.provider:<10} {v.input_per_mtok:>9g} {cached:>9} {v.output_per_mtok:>9g}")
        print(f"{len(views)} model{'' if len(views) == 1 else 's'} from {catalog.origin}", file=sys.stderr)
    return 0


def _money(value: object) -> str:
    return "-" if value is None else f"${value:g}"


def _describe(view: ModelPricing) -> str:
    lines = [f"{view.model} ({view.provider}, {view.mode})"]
    if view.aliases:
        lines.append(f"  aliases: {', '.join(view.aliases)}")
    lines.append(f"  prices per million tokens, effective {view.effective_from or 'as far back as known'}:")
    lines.append(
        f"    input {_money(view.input_per_mtok)}  cached input {_money(view.cached_input_per_mtok)}  "
        f"output {_money(view.output_per_mtok)}"
    )
    lines.append(f"    cache write 5m {_money(view.cache_write_per_mtok)}  1h {_money(view.cache_write_1h_per_mtok)}")
    lines.append(
        f"    batch input {_money(view.batch_input_per_mtok)}  batch output {_money(view.batch_output_per_mtok)}"
    )
    if view.priority_input_per_mtok is not None:
        lines.append(
            f"    priority input {_money(view.priority_input_per_mtok)}  "
            f"priority output {_money(view.priority_output_per_mtok)}"
        )
    if view.long_context is not None:
        lc = view.long_context
        lines.append(
            f"    above {lc.threshold_tokens:,} input tokens: input {_money(lc.input_per_mtok)}  "
            f"output {_money(lc.output_per_mtok)}"
        )
    lines.append(
        f"  context window {view.context_window or '?'}  max output {view.max_output_tokens or '?'}  "
        f"token counts: {view.token_count_method}"
    )
    if view.deprecation_date:
        lines.append(f"  deprecated {view.deprecation_date}" + (f" → {view.successor}" if view.successor else ""))
    lines.extend(
        f"  history {period.effective_from or '…'} → {period.effective_to or 'now'}: "
        f"input {_money(period.input_per_mtok)} output {_money(period.output_per_mtok)}"
        for period in view.history or []
    )
    if view.source:
        lines.append(f"  source: {view.source}")
    return "\n".join(lines)


def _update(source: str, settings: Settings) -> int:
    """Rebuild the user catalog from a LiteLLM-format file, keeping the installed price history."""
    from costhawk_mcp.pricing import build

    previous = load_catalog(settings.user_catalog_path)
    litellm = build.load_litellm(source)
    catalog = build.build_catalog(
        litellm,
        overrides=build.packaged_overrides(),
        history=None,
        today=datetime.now(timezone.utc).date(),
        previous=previous.data,
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    target = settings.user_catalog_path
    tmp = target.with_suffix(".json.tmp")
    tmp.write_bytes(build.catalog_json(catalog))
    tmp.replace(target)
    print(f"wrote {len(catalog.models)} models to {target}", file=sys.stderr)
    return 0
