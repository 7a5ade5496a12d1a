"""MCP handlers for the analyst tools: savings opportunities, self-hosting break-even, spend chart."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Image
from mcp.types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import Field

from costhawk_mcp.analytics.chart import MAX_TOP, ChartSummary, spend_chart
from costhawk_mcp.analytics.savings import SavingsResult, savings_opportunities
from costhawk_mcp.analytics.selfhost import SelfhostResult, selfhost_breakeven
from costhawk_mcp.server.app import App
from costhawk_mcp.server.guard import guard

INSTRUCTIONS = """\
- savings_opportunities: where the team leaves money on the table, largest first: Batch API moves for \
latency-tolerant workloads, prompt caching for large repeated prompts, right-sizing short work to a \
cheaper sibling model, and long-context surcharges. Each has $/month, the evidence and a confidence \
with its reason; kinds overlap, so quote conservative_total_savings_usd_per_month as the safe total.
- selfhost_breakeven: API cost of a model's volume (the team's own last 30 days by default) against \
rented GPUs serving an open model, with the break-even tokens/day; every default is listed in \
assumptions. Say that it ignores engineering cost and quality differences.
- spend_chart: a PNG of daily spend stacked by model, API key, provider or project, with a text \
summary (total, top group, peak day). Show the image to the user.
"""

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

Start = Annotated[str | None, Field(description="window start, ISO date or datetime (UTC), inclusive")]
End = Annotated[str | None, Field(description="window end, ISO date or datetime (UTC), exclusive (default: now)")]
Days = Annotated[float | None, Field(gt=0, le=3660, description="window length in days (default 30)")]


def register(mcp: MCPServer, app: App) -> None:
    """Add the analyst tools to `mcp`."""

    @mcp.tool(name="savings_opportunities", annotations=READ_ONLY)
    @guard
    def savings_opportunities_tool(start: Start = None, end: End = None, days: Days = None) -> SavingsResult:
        """Money not yet saved on LLM spend, largest first, each with $/month, evidence and confidence.

        Checks four kinds: Batch API for latency-tolerant workloads (already partly batch, scheduled-job hour
        patterns, non-interactive names, round-the-clock pipelines), prompt caching for large prompts with a
        low cache-read share, right-sizing short outputs to a cheaper sibling model of the same family, and
        long-context surcharges. Every figure re-prices the window's own tokens with the price catalog;
        monthly figures scale the window to 30 days. The heuristics are listed in the result.
        """
        return savings_opportunities(app.store, app.catalog, start=start, end=end, days=days)

    @mcp.tool(name="selfhost_breakeven", annotations=READ_ONLY)
    @guard
    def selfhost_breakeven_tool(
        model: Annotated[str, Field(description="the API model to compare, e.g. 'gpt-4o' or 'claude-sonnet-4-5'")],
        tokens_per_day: Annotated[
            int | None,
            Field(
                ge=1, le=10**15, description="input + output tokens per day (default: your last 30 days on this model)"
            ),
        ] = None,
        gpu_hourly_usd: Annotated[
            float | None, Field(gt=0, le=1000, description="USD per GPU-hour (default 2.50, an on-demand H100)")
        ] = None,
        tokens_per_second: Annotated[
            float | None,
            Field(ge=1, le=10_000_000, description="tokens/s one deployment serves at full load (default 5000)"),
        ] = None,
        gpus: Annotated[int | None, Field(ge=1, le=1024, description="GPUs per deployment (default 2)")] = None,
    ) -> SelfhostResult:
        """API cost versus self-hosting an open model on rented GPUs, with the break-even volume.

        Uses the team's own volume and token mix for the model (last 30 days) unless tokens_per_day is given,
        prices it at today's API prices, and compares it with GPUs rented around the clock. Returns the
        break-even tokens/day, the utilisation it needs, and every assumption (GPU price, throughput, GPUs);
        ignores engineering/ops cost and quality differences.
        """
        return selfhost_breakeven(
            app.store,
            app.catalog,
            model=model,
            tokens_per_day=tokens_per_day,
            gpu_hourly_usd=gpu_hourly_usd,
            tokens_per_second=tokens_per_second,
            gpus=gpus,
        )

    @mcp.tool(name="spend_chart", annotations=READ_ONLY)
    @guard
    def spend_chart_tool(
        start: Start = None,
        end: End = None,
        days: Days = None,
        group_by: Annotated[
            Literal["model", "api_key", "provider", "project"], Field(description="what each stacked colour is")
        ] = "model",
        top: Annotated[int, Field(ge=1, le=MAX_TOP, description="groups shown; the rest are stacked as 'other'")] = 5,
    ) -> Annotated[CallToolResult, ChartSummary]:
        """A PNG chart of daily spend stacked by model, API key, provider or project, with a text summary.

        The summary gives the total, the top group and the peak day; structured content carries the same
        numbers (and every day's total). An empty window returns the message and no image.
        """
        summary, png = spend_chart(app.store, start=start, end=end, days=days, group_by=group_by, top=top)
        content: list[ContentBlock] = [TextContent(type="text", text=summary.summary)]
        if png is not None:
            content.append(Image(data=png, format="png").to_image_content())
        return CallToolResult(content=content, structured_content=summary.model_dump(mode="json"))
