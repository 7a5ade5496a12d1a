"""MCP handlers for provider sync: the `sync_usage` and `reconcile` tools, and sync status."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from costhawk_mcp.analytics.reconcile import ReconcileResult, reconcile
from costhawk_mcp.analytics.sync_status import sync_status
from costhawk_mcp.analytics.window import parse_instant
from costhawk_mcp.server.app import App
from costhawk_mcp.server.guard import guard
from costhawk_mcp.sync.runner import SyncReport, raise_for_errors, run_sync

INSTRUCTIONS = """\
- sync_usage: pull usage, costs and API key names from the OpenAI and Anthropic Admin APIs (keys \
from OPENAI_ADMIN_KEY / ANTHROPIC_ADMIN_KEY in the server's environment) into the local store; \
afterwards the usage tools answer from provider data. Safe to repeat (never double counts); by \
default it continues from the last sync. Reports progress.
- reconcile: per provider and UTC day (and OpenAI project / Anthropic workspace), the cost computed \
from synced usage at catalog prices next to what the provider billed, the difference and its likely \
cause (unpriced model, missing tier price, Anthropic priority usage, non-token charges, data not final).
- Resource costhawk://sync-status: per provider, last sync, window covered and last error.
"""

SYNC = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def register(mcp: MCPServer, app: App) -> None:
    """Add the sync tools and the sync-status resource to `mcp`."""

    @mcp.tool(annotations=SYNC)
    @guard
    async def sync_usage(
        ctx: Context[Any, Any],
        provider: Annotated[
            Literal["openai", "anthropic", "all"], Field(description="which provider (default all with a key set)")
        ] = "all",
        since: Annotated[
            str | None,
            Field(
                description="UTC date or datetime to sync from (default: a few days before the last sync, or 30 days)"
            ),
        ] = None,
        until: Annotated[str | None, Field(description="UTC date or datetime to stop before (default: now)")] = None,
    ) -> SyncReport:
        """Sync usage buckets, provider-reported costs and API key names from the OpenAI and Anthropic
        Admin APIs into the local store, page by page (a repeated or interrupted sync never double
        counts and loses nothing). Only providers whose admin key is set are synced."""
        start = parse_instant(since, "since") if since is not None else None
        stop = parse_instant(until, "until") if until is not None else None

        async def progress(done: float, total: float, message: str) -> None:
            await ctx.report_progress(done, total, message)

        report = await run_sync(app.store, app.settings, provider=provider, since=start, until=stop, progress=progress)
        raise_for_errors(report)
        return report

    @mcp.tool(name="reconcile", annotations=READ_ONLY)
    @guard
    def reconcile_tool(
        start: Annotated[
            str | None, Field(description="UTC date or datetime (inclusive); whole days are compared")
        ] = None,
        end: Annotated[str | None, Field(description="UTC date or datetime (exclusive; default now)")] = None,
        days: Annotated[float | None, Field(description="days back from end (default 30)")] = None,
        provider: Annotated[
            Literal["openai", "anthropic"] | None, Field(description="one provider (default both)")
        ] = None,
    ) -> ReconcileResult:
        """Per provider and UTC day (and project or workspace): cost computed from synced usage at
        catalog prices next to the cost the provider reported, the difference and its percentage, and
        the likely cause where one can be named."""
        return reconcile(app.store, app.catalog, start=start, end=end, days=days, provider=provider)

    @mcp.resource(
        "costhawk://sync-status",
        name="sync-status",
        description="Per provider: whether its admin key variable is set, the last sync, the window covered "
        "and the last error (never the key).",
        mime_type="application/json",
    )
    def sync_status_resource() -> dict[str, object]:
        return sync_status(app.store, app.settings).model_dump(mode="json")
