"""MCP handlers for where usage money goes: top API keys, cost per query, model-swap savings."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from costhawk_mcp.analytics.usage import (
    MAX_LIMIT,
    CostPerQueryResult,
    SwapSavingsResult,
    TopKeysResult,
    cost_per_query,
    model_swap_savings,
    top_expensive_keys,
)
from costhawk_mcp.server.app import App
from costhawk_mcp.server.guard import guard

INSTRUCTIONS = """\
- top_expensive_keys: the API keys with the most spend in a window, each with its share, requests, \
tokens, top model and change against the previous period; spend without a key id is reported apart \
(unattributed_cost_usd). Use it for "which key/service is burning money?".
- cost_per_query: what one query (all calls sharing a query_id; a request without one is a query of \
one call) costs: mean, exact p50/p95/p99, calls per query, per feature, the most expensive queries, \
or with query_id that query's calls one by one. Reads imported request logs only.
- model_swap_savings: what the same traffic would have cost on another model (e.g. gpt-4o → \
gpt-4o-mini or claude-haiku-4-5), with a low/high range when the tokenizers differ, and a 30-day \
projection. Read its caveats to the user: batch, cache, long-context and context-window effects.
- Every usage tool takes start/end (ISO date or datetime, UTC, end exclusive) or days (default 30, \
ending now), echoes the period, and reports unpriced requests and which data sources answered.
"""

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

Start = Annotated[
    str | None, Field(description="window start, ISO date or datetime in UTC (inclusive), e.g. 2026-11-01")
]
End = Annotated[str | None, Field(description="window end, ISO date or datetime in UTC (exclusive); default now")]
Days = Annotated[
    float | None, Field(description="window length in days, counted back from end (default 30); not with start+end")
]
Provider = Annotated[str | None, Field(description="only this provider, e.g. 'openai', 'anthropic'")]
Project = Annotated[str | None, Field(description="only this project (OpenAI project / Anthropic workspace name)")]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="how many rows to list")]


def register(mcp: MCPServer, app: App) -> None:
    """Add the usage tools to `mcp`."""

    @mcp.tool(name="top_expensive_keys", annotations=READ_ONLY)
    @guard
    def top_expensive_keys_tool(
        start: Start = None,
        end: End = None,
        days: Days = None,
        limit: Limit = 10,
        provider: Provider = None,
        project: Project = None,
    ) -> TopKeysResult:
        """The API keys that cost the most in a window, most expensive first.

        Each key: spend, share of all spend, requests, tokens, top model, project, and its spend in the
        previous period of equal length with the change in percent. Spend without a key id is not a row:
        it is in unattributed_cost_usd (and in total_cost_usd). Requests of unpriced models are counted
        in unpriced_requests and left out of every cost.
        """
        return top_expensive_keys(
            app.store, start=start, end=end, days=days, limit=limit, provider=provider, project=project
        )

    @mcp.tool(name="cost_per_query", annotations=READ_ONLY)
    @guard
    def cost_per_query_tool(
        start: Start = None,
        end: End = None,
        days: Days = None,
        query_id: Annotated[str | None, Field(description="drill into one query: its calls one by one")] = None,
        feature: Annotated[str | None, Field(description="only queries of this feature")] = None,
        model: Annotated[
            str | None, Field(description="only queries with at least one call of this model (all their calls count)")
        ] = None,
        limit: Limit = 10,
    ) -> CostPerQueryResult:
        """What a query costs: count, total, mean, exact p50/p95/p99, calls per query, per feature, the most
        expensive queries, and with query_id that query's calls with their costs.

        A query is all calls sharing a query_id; a request without one is a query of one call. A query
        belongs to the window of its first call and counts all its calls. Percentiles are nearest-rank
        over the queries' exact costs. Queries with an unpriced call are counted but in no cost figure.
        Reads imported request logs only (synced provider usage has no query ids).
        """
        return cost_per_query(
            app.store,
            app.catalog,
            start=start,
            end=end,
            days=days,
            query_id=query_id,
            feature=feature,
            model=model,
            limit=limit,
        )

    @mcp.tool(name="model_swap_savings", annotations=READ_ONLY)
    @guard
    def model_swap_savings_tool(
        from_model: Annotated[str, Field(description="the model the traffic ran on, e.g. 'gpt-4o'")],
        to_model: Annotated[str, Field(description="the model to price it on instead, e.g. 'gpt-4o-mini'")],
        start: Start = None,
        end: End = None,
        days: Days = None,
        traffic_share: Annotated[
            float, Field(gt=0, le=1, description="share of the traffic that moves (default all of it)")
        ] = 1.0,
        provider: Provider = None,
        project: Project = None,
        api_key_id: Annotated[str | None, Field(description="only this API key's traffic")] = None,
    ) -> SwapSavingsResult:
        """What the same traffic would have cost on another model, and the savings scaled to 30 days.

        Re-prices the window's requests of from_model at to_model's prices on each day (batch and cache
        reads kept where to_model prices them, its long-context rates for requests above its threshold).
        When the tokenizers differ, token counts are scaled by a stated ratio and the result carries a
        low/high range. caveats says what was assumed: read them to the user.
        """
        return model_swap_savings(
            app.store,
            app.catalog,
            from_model=from_model,
            to_model=to_model,
            start=start,
            end=end,
            days=days,
            traffic_share=traffic_share,
            provider=provider,
            project=project,
            api_key_id=api_key_id,
        )
